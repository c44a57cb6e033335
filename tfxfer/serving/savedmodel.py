"""Exports for TF Serving: versioned SavedModels with preprocessing, class names and metadata inside.

`export` writes `<root>/<name>/<version>/` (see `tfxfer.serving.versioning`), a SavedModel that TF Serving,
`saved_model_cli` and any TensorFlow client load with TensorFlow alone (no tfxfer, no Keras, no Python
preprocessing):

```
saved_models/ants_bees/1/
  saved_model.pb  variables/  assets/  fingerprint.pb
  assets.extra/tfxfer.json      the metadata (TF Serving ignores assets.extra)
```

Its signatures are described in `tfxfer.serving.signatures`.
"""

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfxfer.data.task import Task
from tfxfer.extractors import Extractor
from tfxfer.serving.signatures import serving_module, signature_table
from tfxfer.serving.versioning import (METADATA_FILE, check_base_path, check_format, check_name, write_models_config,
                                      write_version)
from tfxfer.training.inputs import check_trained_on
from tfxfer.training.recipe import flip_averaged

FORMAT_VERSION = 1


def export(model, name, root="saved_models", *, extractor=None, task_type=None, class_names=None, threshold=0.5,
           metrics=None, data_summary=None, interpolation=None, models_config=False, test_time_augmentation=False,
           format="savedmodel", quantize=None, **litert_options):
    """Exports a trained model as the next version of `<root>/<name>`, for TF Serving and bare TensorFlow clients,
    or (`format="litert"`) as a verified `.tflite` file for phones and boards.

    The version is one more than the highest present. The SavedModel is written to a temporary folder beside the
    versions and renamed into place, so a version appears whole or not at all, an existing version is never
    touched, and exports running at the same time (threads or processes) get different versions. This relies on
    POSIX rename semantics (renaming a folder onto a non-empty one fails), as local Linux file systems give; `root`
    must be a local path, not `gs://`. Temporary folders left by killed exports on this machine are removed by
    later exports.

    The signatures, input names and output keys are described in this module's docstring and `signature_table`.
    Exports of BERT-style text models (a TF Hub preprocessor, or a KerasHub text preset's tokenizer) use
    TensorFlow Text ops: clients `import tensorflow_text` before loading (TF Serving ships the ops); the metadata
    lists such modules under `client_imports`.

    Args:
        model: A Keras model taking what its extractor takes (float32 images `[batch, height, width, 3]` in the
            extractor's value range, or strings `[batch]`) and returning the head's output `[batch, outputs]`; or
            a fitted `tfxfer.TransferModel` (any object with `model_`, `extractor_`, `task_` and `history_`), whose
            extractor, task type, class names and training history are used.
        name: The model's name under `root`, as TF Serving will serve it: letters, digits, `.`, `_`, `-`.
        root: The export root, created if needed.
        extractor: The `Extractor` inside `model`; by default the one among its layers.
        task_type: `"multiclass"`, `"multilabel"` or `"regression"`.
        class_names: Names of the model's outputs, in order: classes, or regression targets (default
            `target_0`, `target_1`...).
        threshold: Multilabel: scores above it name a label in the `labels` output.
        metrics: Evaluation metrics to store, e.g. `fitted.evaluate(test)` (a dict of numbers); by default, a
            fitted `TransferModel`'s validation metrics at the epoch whose weights it kept (with
            `test_time_augmentation`, named `<metric>_without_tta`: the served model's are
            `fitted.evaluate(data.validation, test_time_augmentation=True)`).
        data_summary: What the model was trained on: the `DataSplits` from `tfxfer.load_images`/`load_text` (its
            sizes, counts, origins and summary are stored), a dict, or a string.
        interpolation: The `tf.image.resize` method of the served preprocessing; by default the one a fitted
            `TransferModel` trained with, else the data's (`data_summary.interpolation`), else `"bilinear"`.
        models_config: True to also write `<root>/models.config` listing every model under `root` (see
            `write_models_config`), or a path: where TF Serving sees `root` (its `base_path`, e.g. `"/models"` in a
            container started with `-v $PWD/saved_models:/models`), written into the file.
        format: `"savedmodel"`, or `"litert"` (also called `"tflite"`): see `tfxfer.serving.litert.export_litert`.
        quantize: LiteRT exports: `"none"` (the default), `"float16"`, `"dynamic"` or `"int8"`.
        **litert_options: LiteRT exports: the other arguments of `export_litert` (`input_type`, `output_type`,
            `calibration_data`, `calibration_size`, `verification_size`, `select_tf_ops`, `seed`).
        test_time_augmentation: Image models: serve the mean of the scores of each image and its mirror image
            (`tfxfer.training.recipe.flip_averaged`); twice the compute per request.

    Returns:
        The `pathlib.Path` of the new version folder, e.g. `saved_models/ants_bees/3`.

    Raises:
        ValueError: The name, task type, class names, threshold or model do not fit (the message says which).
        TypeError: `model` is neither a Keras model nor a fitted TransferModel.
        OSError: `<root>/<name>` cannot be written (full, read-only, not a folder): the message names it and the
            reason. Nothing of the failed export is left, and the versions already there are unchanged.

    Example:
        >>> path = export(fitted, "ants_bees", root=tmp_dir)
        >>> path.name, sorted(p.name for p in path.iterdir())
        ('1', ['assets', 'assets.extra', 'fingerprint.pb', 'saved_model.pb', 'variables'])
    """
    if hasattr(model, "extractor_") and hasattr(data_summary, "for_extractor"):
        # As the model took it: a search's best of several extractors took the search's data decoded its own way
        data_summary = data_summary.for_extractor(model.extractor_)
    if format in ("litert", "tflite"):
        if models_config:
            raise ValueError("models_config=True lists SavedModels for TF Serving, which does not serve LiteRT "
                             "files; leave it out with format='litert'.")
        if test_time_augmentation:
            raise ValueError("test_time_augmentation applies to SavedModel exports; leave it out with "
                             "format='litert' (a phone can flip and average itself).")
        from tfxfer.serving.litert import export_litert

        return export_litert(model, name, root, quantize=quantize or "none", extractor=extractor,
                             task_type=task_type, class_names=class_names, threshold=threshold, metrics=metrics,
                             data_summary=data_summary, interpolation=interpolation, **litert_options)
    if format != "savedmodel":
        raise ValueError(f"format must be 'savedmodel', 'litert' or 'tflite'; got {format!r}.")
    given = ["quantize"] * (quantize is not None) + sorted(litert_options)
    if given:
        verb, them = ("applies", "it") if len(given) == 1 else ("apply", "them")
        raise ValueError(f"{' and '.join(given)} {verb} to LiteRT exports; pass format='litert' with {them}, or leave "
                         f"{them} out.")
    check_base_path(None if models_config in (True, False) else models_config)  # before the export, not after
    model, extractor, task, training = export_pieces(model, extractor, task_type, class_names)
    check_trained_on(task, data_summary, "export's data_summary")
    check_name(name)
    if test_time_augmentation:
        if extractor.input_kind != "image":
            raise ValueError("test_time_augmentation flips images; this model takes text: leave it out.")
        model = flip_averaged(model)
    spec = serving_spec(model, extractor, task, threshold, data_summary, interpolation or trained_with(training))
    spec["test_time_augmentation"] = bool(test_time_augmentation)
    metadata = export_metadata(spec, training, metrics, data_summary)
    check_format(Path(root) / name, "savedmodel")

    def write(folder):
        module, signatures = serving_module(model, spec, json.dumps(metadata, sort_keys=True))
        tf.saved_model.save(module, str(folder), signatures=signatures)
        write_metadata(folder, metadata)

    path = write_version(root, name, write)
    if models_config:
        write_models_config(root, base_path=None if models_config is True else models_config)
    return path


def write_metadata(folder, metadata):
    """Writes the export's metadata to `<folder>/assets.extra/tfxfer.json`."""
    (folder / METADATA_FILE).parent.mkdir(parents=True, exist_ok=True)
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def export_pieces(model, extractor, task_type, class_names):
    """The Keras model, extractor, `Task` and training record, from either form of `model` (see `export`)."""
    training = None
    if not isinstance(model, keras.Model):
        if not hasattr(model, "model_"):
            fitted = "; call fit() first" if hasattr(model, "fit") else ""
            raise TypeError(f"export takes a keras.Model or a fitted TransferModel; got {type(model).__name__}"
                            f"{fitted}.")
        fitted = model
        model = fitted.model_
        extractor = extractor if extractor is not None else fitted.extractor_
        task_type = task_type or fitted.task_.task_type
        class_names = class_names if class_names is not None else list(fitted.task_.class_names)
        training = {"history": getattr(fitted, "history_", None)}
        if hasattr(fitted, "phases_"):
            training["phases"] = [dataclasses.asdict(phase) for phase in fitted.phases_]
        for attribute in ("regime", "frozen_blocks_", "fine_tune_epoch_", "learning_rates_", "cached_phases_",
                          "trainable_params_", "fit_seconds_", "distillation_", "interpolation_", "kept_epoch_",
                          "label_smoothing", "precision_"):
            if hasattr(fitted, attribute):
                training[attribute.rstrip("_")] = getattr(fitted, attribute)
    if extractor is None:
        found = [layer for layer in model.layers if isinstance(layer, Extractor)]
        if len(found) != 1:
            raise ValueError(f"Model {model.name!r} has {len(found)} tfxfer extractors among its layers; pass the "
                             "one whose inputs it takes as extractor=.")
        extractor = found[0]
    return model, extractor, Task(task_type, class_names or []), training


def trained_with(training):
    """The resize method of the images a fitted model trained on (`TransferModel.interpolation_`), or None."""
    return (training or {}).get("interpolation")


def serving_spec(model, extractor, task, threshold, data_summary, interpolation):
    """What the served graph needs to know, checked against the model."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"Model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "export takes one input (what the extractor takes) and one output (the head's).")
    outputs = model.outputs[0].shape
    if len(outputs) != 2 or outputs[-1] is None:
        raise ValueError(f"Model {model.name!r} outputs shape {tuple(outputs)}; export takes [batch, outputs].")
    task = task.for_outputs(int(outputs[-1]), f"model {model.name!r}")
    if task.uses_threshold and not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 for a {task.task_type} export; got {threshold!r}.")
    spec = {
        "task_type": task.task_type,
        "class_names": task.class_names,
        "threshold": float(threshold) if task.uses_threshold else None,
        "input_kind": extractor.input_kind,
        "extractor_source": extractor.source,
        "client_imports": list(extractor.client_imports),
    }
    inputs = model.inputs[0]
    if extractor.input_kind == "text":
        if inputs.dtype != "string" or len(inputs.shape) != 1:
            raise ValueError(f"Model {model.name!r} takes {inputs.dtype} {tuple(inputs.shape)}, but its extractor "
                             f"{extractor.source!r} takes strings [batch]; build the model on keras.Input((), "
                             "dtype='string').")
        return spec
    image_size, value_range = tuple(extractor.image_size), tuple(extractor.value_range)
    if tuple(inputs.shape[1:]) != (*image_size, 3):
        raise ValueError(f"Model {model.name!r} takes images {tuple(inputs.shape[1:])} but its extractor "
                         f"{extractor.source!r} takes {(*image_size, 3)}; build the model on "
                         "keras.Input((*extractor.image_size, 3)).")
    data_geometry = (getattr(data_summary, "image_size", None), getattr(data_summary, "value_range", None))
    if data_geometry[0] is not None and (tuple(data_geometry[0]), tuple(data_geometry[1])) != (image_size,
                                                                                               value_range):
        raise ValueError(f"The data was decoded to {data_geometry[0]} in {data_geometry[1]} but the extractor takes "
                         f"{image_size} in {value_range}; the served preprocessing would differ from training.")
    interpolation = interpolation or getattr(data_summary, "interpolation", None) or "bilinear"
    spec.update(image_size=[int(side) for side in image_size], value_range=[float(v) for v in value_range],
                interpolation=interpolation)
    return spec


def export_metadata(spec, training, metrics, data_summary):
    """The metadata of an export: its spec, signatures, versions, metrics (by default the training's validation
    metrics at the epoch whose weights it kept), training record and data summary."""
    import tfxfer

    if metrics is None and training and training.get("history") and training.get("kept_epoch") is not None:
        metrics = {key: values[training["kept_epoch"]] for key, values in training["history"].items()
                   if key.startswith("val_")} or None  # they were null in every export (a tester's find)
        if metrics and spec.get("test_time_augmentation"):  # the fit's scores, not the flip-averaged model's
            metrics = {f"{key}_without_tta": value for key, value in metrics.items()}

    metadata = {
        "format": "tfxfer-export",
        "format_version": FORMAT_VERSION,
        **spec,
        "signatures": signature_table(spec["input_kind"], spec["task_type"]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"tfxfer": tfxfer.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "metrics": metrics,
        "training": training,
        "data_summary": _describe_data(data_summary),
        "joined_columns": getattr(data_summary, "joined_columns", None),
    }
    return json.loads(json.dumps(metadata, default=_plain))


def _describe_data(data_summary):
    if data_summary is None or isinstance(data_summary, (str, dict)):
        return data_summary
    if hasattr(data_summary, "summary") and hasattr(data_summary, "sizes"):
        return {"summary": data_summary.summary(), "sizes": data_summary.sizes,
                "counts": getattr(data_summary, "counts", None), "origins": getattr(data_summary, "origins", None)}
    raise TypeError(f"data_summary takes a DataSplits, a dict or a string; got {type(data_summary).__name__}.")


def _plain(value):
    """JSON for NumPy and TensorFlow scalars and arrays in metrics and histories."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, tf.Tensor):
        return value.numpy().tolist()
    raise TypeError(f"{type(value).__name__} value {value!r} in the export metadata is not JSON; pass numbers, "
                    "strings, lists or dicts.")
