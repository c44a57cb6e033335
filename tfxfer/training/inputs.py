"""What `fit` accepts: the data forms, checked against the extractor and the task before anything trains."""

import os

import numpy as np
import tensorflow as tf


def check_trained_on(task, data, what):
    """Raises when `data` (a `DataSplits`, or anything with a `task`) poses another task than the model's `task`:
    `what` (a report, an export's data summary) would describe one model with another's data."""
    theirs = getattr(data, "task", None)
    if theirs is not None and (theirs.task_type, [str(name) for name in theirs.class_names]) != (
            task.task_type, [str(name) for name in task.class_names]):
        raise ValueError(f"{what}: the data pose {theirs.task_type} of {list(theirs.class_names)}, but the model was "
                         f"trained for {task.task_type} of {list(task.class_names)}: pass the data it was trained "
                         "on.")


def predict_inputs(extractor, task, inputs):
    """What `TransferModel.predict` passes to Keras: lists as arrays (texts as objects), arrays checked against the
    extractor; image files, a single image or pixels of the wrong scale refused with what to pass instead."""
    import pandas as pd

    if extractor.input_kind == "image" and (isinstance(inputs, (str, os.PathLike, pd.DataFrame, pd.Series)) or (
            isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], (str, os.PathLike)))):
        raise TypeError("TransferModel.predict takes decoded images (a float32 array [n, height, width, 3] or a "
                        "dataset, as tfxfer.load_images gives them); for image files, export the model and run "
                        "tfxfer.load_exported(path).predict(files), which decodes them as training did.")
    text = extractor.input_kind == "text"
    if text and isinstance(inputs, pd.DataFrame):
        raise TypeError("TransferModel.predict takes texts: pass the DataFrame's column of texts, e.g. frame['text'].")
    if isinstance(inputs, (list, tuple, pd.Series)) or (text and isinstance(inputs, np.ndarray)):  # str5152: objects
        inputs = np.asarray(inputs, dtype=object if text else None)
    if isinstance(inputs, np.ndarray):
        if extractor.input_kind == "image" and inputs.ndim == 3:
            raise ValueError(f"predict takes a batch of images; got one image of shape {inputs.shape}: pass "
                             "image[None] (a batch of one).")
        check_data_fits(extractor, inputs, None, task)
        low, high = extractor.value_range or (None, None)
        if inputs.dtype.kind == "f" and high is not None and high <= 1 and inputs.size and inputs.max() > 1.5 * high:
            raise ValueError(f"The images hold values up to {inputs.max():g}, but {extractor.source!r} takes pixels in "
                             f"[{low:g}, {high:g}]: divide pixels in 0 to 255 by 255 (an export takes 0 to 255 "
                             "itself).")
    return inputs


def check_data_fits(extractor, inputs, labels, task):
    """Raises a clear error when data does not fit the extractor or the head.

    Args:
        extractor: The `Extractor`.
        inputs: A `DataSplits`, a `tf.data.Dataset` of `(inputs, labels)` batches, or an array of inputs.
        labels: The labels when `inputs` is an array, else None.
        task: The task the head is built for.
    """
    if hasattr(inputs, "modality"):  # DataSplits: what it was loaded as
        shape = (None, *inputs.image_size, 3) if inputs.modality == "image" else (None,)
        dtype = tf.float32 if inputs.modality == "image" else tf.string
    elif isinstance(inputs, tf.data.Dataset):
        spec = inputs.element_spec[0]
        shape, dtype = tuple(spec.shape), spec.dtype
    else:
        inputs = np.asarray(inputs)
        shape, dtype = inputs.shape, tf.as_dtype(tf.string if inputs.dtype.kind in "OUS" else inputs.dtype)
    if extractor.input_kind == "text" and dtype != tf.string:
        raise ValueError(f"{extractor.source!r} is a text extractor, but the data holds {dtype.name} of shape "
                         f"{shape}, not text. Load texts with tfxfer.load_text, or use an image extractor.")
    if extractor.input_kind == "image":
        if dtype == tf.string:
            raise ValueError(f"{extractor.source!r} is an image extractor, but the data holds text. Load images "
                             "with tfxfer.load_images, or use a text extractor.")
        if len(shape) != 4 or shape[-1] != 3 or (None not in shape[1:3] and tuple(shape[1:3]) != extractor.image_size):
            raise ValueError(f"The data's images are of size {tuple(shape[1:3])} (shape {shape}), but "
                             f"{extractor.source!r} takes images of size {extractor.image_size} with 3 channels. Load "
                             "them at its size with load_images(..., extractor=extractor) and no image_size=, or "
                             f"load the extractor at theirs: load_extractor(..., image_size={tuple(shape[1:3])}).")
        data_range = getattr(inputs, "value_range", None)
        if dtype == tf.uint8 and extractor.value_range and extractor.value_range[1] <= 1:
            raise ValueError(f"The images are uint8 pixels (0 to 255), but {extractor.source!r} takes pixels in "
                             f"[{extractor.value_range[0]:g}, {extractor.value_range[1]:g}]: pass them as float32 "
                             "divided by 255 (an export takes 0 to 255 itself).")
        if data_range is not None and extractor.value_range and tuple(data_range) != tuple(extractor.value_range):
            # A model trained on pixels of the wrong scale still trains, to chance: say it before it starts.
            raise ValueError(f"The data's images are in [{data_range[0]:g}, {data_range[1]:g}], but "
                             f"{extractor.source!r} takes pixels in [{extractor.value_range[0]:g}, "
                             f"{extractor.value_range[1]:g}]. Load them with load_images(..., extractor=extractor), "
                             "or pass data.for_extractor(extractor).")
    if labels is not None:
        task.check_labels(labels)


def check_fit_arguments(extractor, fit_kwargs, splits, task):
    """Raises a clear error when the training data of Keras `fit` arguments (or `splits`), or validation data passed
    apart from them, does not fit the extractor or the head; errors about the latter begin with "validation:"."""
    check_data_fits(extractor, splits or fit_kwargs["x"], fit_kwargs.get("y"), task)
    _check_one_label_each(fit_kwargs["x"], fit_kwargs.get("y"))
    validation = fit_kwargs.get("validation_data")
    if validation is None or splits is not None:
        return
    inputs, labels = validation[:2] if isinstance(validation, (tuple, list)) else (validation, None)
    try:
        check_data_fits(extractor, inputs, labels, task)
        _check_one_label_each(inputs, labels)
    except ValueError as error:
        raise ValueError(f"validation: {error}") from None


def check_batch_size(head, extractor, batch_size):
    """Refuses one example per batch under a head that normalises its input: BatchNormalization has no statistics to
    learn from a lone example (the head's keeps its initial ones, see `HeadBatchNormalization`), so the features
    would go unnormalised while the user asked for it."""
    if batch_size == 1 and head.normalises(extractor.input_kind):
        raise ValueError("batch_size=1 under a head that normalises its input (BatchNormalization, on by default for "
                         "text extractors): BatchNormalization learns no statistics from one example at a time, so "
                         "the features would go unnormalised. Use batch_size=2 or more (16 or more trains best), or "
                         "a head with batch_norm=False.")


def _check_one_label_each(inputs, labels):
    if labels is not None and len(inputs) != len(labels):
        raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels: give one label per input, in the same "
                         "order.")


def fit_arguments(data, validation, task):
    """Splits the accepted data forms into Keras `fit` arguments and the task."""
    if hasattr(data, "train") and hasattr(data, "task"):
        validation = data.validation if validation is None else validation
        task = task or data.task
        data = data.train
    if task is None:
        raise ValueError("fit needs a task: pass data from tfxfer.load_images/load_text, or task=tfxfer.data.Task(...).")
    if isinstance(data, tuple):
        kwargs = {"x": data[0], "y": data[1]}
    else:
        kwargs = {"x": data}
    if validation is not None:
        kwargs["validation_data"] = validation
    return kwargs, task


def batch_spec(fit_kwargs):
    """`(inputs, labels)` tensor specs of a training batch of Keras `fit` arguments, or None where Keras must find
    them (text arrays, datasets of other structures).

    Example:
        >>> batch_spec({"x": np.zeros((4, 8, 8, 3), "float32"), "y": np.zeros(4, "int64")})[0].shape
        TensorShape([None, 8, 8, 3])
    """
    x = fit_kwargs["x"]
    if isinstance(x, np.ndarray):
        arrays = (x, np.asarray(fit_kwargs["y"]))
        if all(array.dtype.kind in "biuf" for array in arrays):
            return tuple(tf.TensorSpec((None, *array.shape[1:]), array.dtype) for array in arrays)
        return None
    spec = getattr(x, "element_spec", None)
    return spec if isinstance(spec, tuple) and len(spec) == 2 else None
