"""Distillation: a small student extractor under a new head learns a tuned teacher's soft predictions (Hinton et al.,
2015), on the student's frozen features computed once (`FeatureCache`) and the teacher's scores computed once.

The loss of one example, with the student's and teacher's scores `s`, `t`, temperature `T` and mixing weight `alpha`:

    alpha * T**2 * KL(softmax(log t / T) || softmax(log s / T)) + (1 - alpha) * crossentropy(label, s)

(`log` of softmax scores gives logits up to a constant, which softmax ignores; the `T**2` keeps the soft term's
gradients on the scale of the hard term's). Unlabelled examples carry the soft term only. Keras 3's
`keras.distillation.Distiller` runs the teacher beside the student on every batch of every epoch, on the same
inputs; here the teacher runs once per example and the student trains on cached features, so the same loss is written
out instead.
"""

import os
import time
from types import SimpleNamespace

import keras
import numpy as np
import tensorflow as tf

from tfxfer.data.decoding import IMAGE_EXTENSIONS, decodable, decode_file
from tfxfer.data.errors import BadInputs
from tfxfer.data.folders import list_files
from tfxfer.data.loading import example_identities
from tfxfer.data.task import Task
from tfxfer.serving.formats import check_not_litert
from tfxfer.training.feature_cache import FeatureCache
from tfxfer.training.model import TransferModel

_EPSILON = 1e-7


def distill(teacher, student_extractor, data, *, temperature=4.0, alpha=0.7, unlabeled=None, head=None, epochs=40,
            learning_rate=1e-3, patience=5, seed=0, extractor_options=None, verbose=0, on_bad="error"):
    """Trains `student_extractor` (frozen) under a new head on `teacher`'s soft predictions and the true labels.

    Args:
        teacher: A fitted `TransferModel`, or the folder of a tfxfer SavedModel export of an image model (its
            `serving_images` signature is run), trained on the same classes as `data`.
        student_extractor: An `Extractor`, or a source for `tfxfer.load_extractor`.
        data: The `DataSplits` from `tfxfer.load_images` for the student (multi-class).
        temperature: Softens both distributions (above 1); 2 to 5 is usual, at most 1000.
        alpha: Weight of the soft (teacher) term, from 0 (labels only) to 1 (teacher only).
        unlabeled: A folder of unlabelled images (searched recursively) the teacher labels softly; they add to the
            training split with the soft term only. A copy of a validation or test image in it is an error (the
            student would train on what it is scored on).
        head: A `Head`, default `Head()`.
        epochs: Most epochs; early stopping on the validation loss (best weights restored) may end sooner.
        learning_rate: Adam's learning rate.
        patience: Epochs without improvement before stopping; None trains every epoch.
        seed: Seeds the head's initialisation and the shuffling.
        extractor_options: `load_extractor` options when `student_extractor` is a source.
        verbose: Keras' verbosity.
        on_bad: What an `unlabeled` file that does not decode is: `"error"` (default) or `"skip"` (left out, listed in
            `distillation_["unlabeled_skipped"]`).

    Returns:
        A fitted `TransferModel` (feature extraction: every block frozen) that exports like any other, with
        `distillation_`: the temperature, alpha, teacher, the number of unlabelled images used and those skipped.

    Raises:
        ValueError: An argument is out of range, the task is not multi-class, or the teacher's classes differ.

    Example:
        >>> inputs = keras.Input((16, 16, 3))
        >>> small = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs)))
        >>> student = distill(fitted, tfxfer.load_extractor(small), data, epochs=2)
        >>> student.distillation_["temperature"], student.frozen_blocks_ == student.extractor_.n_blocks
        (4.0, True)
    """
    if not 0 < temperature <= 1000:  # float32 keeps the teacher's differences of log(p) / T up to about 1e5
        raise ValueError(f"temperature={temperature!r} is out of range: it must be > 0 and at most 1000 (2 to 5 is "
                         "usual; from about 100 up the soft term already matches the teacher's log scores, Hinton et "
                         "al.'s high-temperature limit).")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be from 0 to 1; got alpha={alpha!r}.")
    if not data.task.has_classes or data.task.uses_threshold:
        raise ValueError(f"distill takes multi-class data (soft class predictions); this data is "
                         f"{data.task.task_type}.")
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    scores = _teacher(teacher, data.task.class_names)
    student = TransferModel(student_extractor, regime="feature-extraction", head=head, learning_rate=learning_rate,
                            epochs=epochs, patience=patience, seed=seed, extractor_options=extractor_options,
                            verbose=verbose)
    student.build(data.task)
    extractor, cache = student.extractor_, FeatureCache(progress=False)
    data = data.for_extractor(extractor)
    n_classes = len(data.task.class_names)

    def split_arrays(split):
        features, labels = cache.features(extractor, data, extractor.n_blocks, split)
        targets = np.concatenate([np.eye(n_classes, dtype=np.float32)[labels], scores(data, split),
                                  np.ones((len(labels), 1), np.float32)], axis=1)
        return np.asarray(features), targets

    features, targets = split_arrays("train")
    used, bad = 0, BadInputs(on_bad)
    if unlabeled is not None:
        extra_features, extra_scores = _unlabeled(unlabeled, extractor, scores, data, bad)
        used = len(extra_features)
        extra = np.concatenate([np.zeros((used, n_classes), np.float32), extra_scores,
                                np.zeros((used, 1), np.float32)], axis=1)
        features, targets = np.concatenate([features, extra_features]), np.concatenate([targets, extra])
    head_model = student.model_.get_layer("head")
    head_model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                       loss=distillation_loss(n_classes, temperature, alpha), metrics=[_label_accuracy(n_classes)])
    fit = {"x": features, "y": targets, "batch_size": data.batch_size, "epochs": epochs, "verbose": verbose,
           "shuffle": True}
    callbacks = []
    if data.sizes.get("validation"):
        fit["validation_data"] = split_arrays("validation")
        if patience is not None:
            callbacks.append(keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True))
    result = head_model.fit(**fit, callbacks=callbacks)
    student._compile(student.model_, data.task, keras.optimizers.Adam(learning_rate))
    student.history_ = {key.replace("label_accuracy", "accuracy"): values for key, values in result.history.items()}
    student.phase_starts_, student.learning_rates_, student.cached_phases_ = [0], [learning_rate], [True]
    student.fine_tune_epoch_, student.frozen_blocks_ = None, extractor.frozen_blocks
    student.trainable_params_ = int(sum(np.prod(w.shape) for w in head_model.trainable_weights))
    student.fit_seconds_ = time.perf_counter() - started
    student.distillation_ = {"temperature": float(temperature), "alpha": float(alpha), "unlabeled_images": used,
                             "unlabeled_skipped": [str(record) for record in bad.skipped],
                             "teacher": str(teacher) if isinstance(teacher, (str, bytes)) or hasattr(
                                 teacher, "__fspath__") else type(teacher).__name__}
    return student


def distillation_loss(n_classes, temperature, alpha):
    """The loss of the module docstring, on targets packed as `[one-hot label, teacher scores, labelled flag]`.

    Example:
        >>> loss = distillation_loss(2, temperature=2.0, alpha=0.5)
        >>> packed = tf.constant([[1.0, 0.0, 0.9, 0.1, 1.0], [0.0, 0.0, 0.9, 0.1, 0.0]])  # labelled, unlabelled
        >>> [round(float(value), 3) for value in loss(packed, tf.constant([[0.9, 0.1], [0.9, 0.1]]))]
        [0.053, 0.0]
    """
    def loss(packed, scores):
        labels, teacher, labelled = packed[:, :n_classes], packed[:, n_classes:2 * n_classes], packed[:, -1]
        soft_teacher = tf.nn.softmax(tf.math.log(teacher + _EPSILON) / temperature)
        log_soft_student = tf.nn.log_softmax(tf.math.log(scores + _EPSILON) / temperature)
        soft = tf.reduce_sum(soft_teacher * (tf.math.log(soft_teacher + _EPSILON) - log_soft_student), axis=-1)
        hard = -tf.reduce_sum(labels * tf.math.log(scores + _EPSILON), axis=-1)
        return alpha * temperature**2 * soft + (1 - alpha) * labelled * hard

    return loss


def _label_accuracy(n_classes):
    def label_accuracy(packed, scores):
        return tf.cast(tf.argmax(packed[:, :n_classes], -1) == tf.argmax(scores, -1), tf.float32)

    return label_accuracy


def _teacher(teacher, class_names):
    """`scores(data, split)`: the teacher's class scores for a split's examples, in order; or `scores(images)` for
    a batch of pixels in [0, 255] at the teacher's size."""
    if hasattr(teacher, "model_"):
        names, extractor, task_type = list(teacher.task_.class_names), teacher.extractor_, teacher.task_.task_type

        def run(pixels):
            low, high = extractor.value_range
            return teacher.model_(pixels * ((high - low) / 255.0) + low, training=False).numpy()
    else:
        from tfxfer.serving.client import ExportedModel

        check_not_litert(teacher, "teacher")
        exported = ExportedModel(teacher)
        if exported.input_kind != "image" or "serving_images" not in exported.signatures:
            raise ValueError(f"teacher {teacher} is not the SavedModel export of an image model (it takes "
                             f"{exported.input_kind}); distillation here teaches image students: pass an image "
                             "model's export.")
        names, signature, task_type = exported.class_names, exported.signatures["serving_images"], exported.task_type
        extractor = SimpleNamespace(input_kind="image", image_size=tuple(exported.metadata["image_size"]),
                                    value_range=(0.0, 255.0))

        def run(pixels):
            return signature(images=tf.convert_to_tensor(pixels, tf.float32))["scores"].numpy()
    task = Task(task_type, names)
    if not task.has_classes or task.uses_threshold:
        raise ValueError(f"teacher {_name(teacher)} is a {task_type} model; distill needs a multi-class teacher, "
                         "whose scores are class probabilities.")
    if names != list(class_names):
        raise ValueError(f"The teacher's classes {names} differ from the data's {list(class_names)}; distill needs a "
                         "teacher trained on the same classes in the same order.")
    pixels = SimpleNamespace(input_kind="image", image_size=tuple(extractor.image_size), value_range=(0.0, 255.0))

    def scores(data, split=None):
        if split is None:
            return run(data)
        batches = data.for_extractor(pixels).unbatched(split).map(lambda x, _: x).batch(data.batch_size)
        return np.concatenate([run(batch) for batch in batches])

    scores.image_size = pixels.image_size
    return scores


def _refuse_held_out_copies(files, data):
    """Raises if one of `files` has the contents of a validation or test example of `data` (the loader's identity
    of an example, `example_identities`)."""
    held_out = {}
    for split in ("validation", "test"):
        if data.sizes.get(split):
            paths = data.examples(split)[0]
            held_out.update(zip(example_identities("image", paths), ((split, path) for path in paths)))
    for path, key in zip(files, example_identities("image", files)):
        if key in held_out:
            split, example = held_out[key]
            raise ValueError(f"unlabeled image {path} is a copy of {split} example {example}: the student would "
                             f"train on the images it is scored on. Remove it from the unlabeled folder.")


def _name(teacher):
    return type(teacher).__name__ if hasattr(teacher, "model_") else str(teacher)


def _unlabeled(folder, extractor, scores, data, bad):
    """The student's features and the teacher's scores of every image in `folder` that decodes (`bad` decides
    about the others); a copy of a validation or test example is an error."""
    files = decodable(list_files(folder, IMAGE_EXTENSIONS, bad), bad, where=f" in unlabeled={str(folder)!r}")
    if not files:
        raise ValueError(f"unlabeled={str(folder)!r} holds no image files that decode "
                         f"({', '.join(IMAGE_EXTENSIONS)}).")
    _refuse_held_out_copies(files, data)
    student_features, teacher_scores = [], []
    for start in range(0, len(files), 32):
        batch = [(path, tf.io.read_file(os.fsencode(path))) for path in files[start:start + 32]]  # each read once
        student_features.append(extractor(tf.stack([
            decode_file(path, extractor.image_size, extractor.value_range, contents=contents)
            for path, contents in batch]), training=False).numpy())
        teacher_scores.append(scores(tf.stack([decode_file(path, scores.image_size, (0.0, 255.0), contents=contents)
                                               for path, contents in batch])))
    return np.concatenate(student_features), np.concatenate(teacher_scores)
