"""What each task type implies: label encoding, output activation, loss, metrics, objective, strata, served
outputs. `tfxfer.data.Task` reads these; nothing else does."""

import dataclasses

import keras
import numpy as np

from tfxfer.data import labels as label_encoders

TASK_TYPES = ("multiclass", "multilabel", "regression")


@dataclasses.dataclass(frozen=True)
class Objective:
    """The validation metric a search optimises, as Keras Tuner names it, and whether higher is better."""

    name: str
    direction: str


@keras.saving.register_keras_serializable(package="tfxfer")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing on integer labels (Keras' sparse loss has no smoothing):
    the true class gets `1 - label_smoothing + label_smoothing / classes`, every other `label_smoothing / classes`.

    Example:
        >>> loss = SmoothedSparseCrossentropy(2, 0.2)
        >>> round(float(loss(np.array([0]), np.array([[0.9, 0.1]]))), 4)  # -(0.9 log 0.9 + 0.1 log 0.1)
        0.3251
    """

    def __init__(self, classes, label_smoothing, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.classes, self.label_smoothing = int(classes), float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = keras.ops.one_hot(keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,)), self.classes)
        return keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "label_smoothing": self.label_smoothing}


class _MultiClass:
    title = "multi-class"
    label_encoding = "sparse"
    activation = "softmax"
    objective = Objective("val_accuracy", "max")
    evaluation_plot = "confusion"
    nouns = ("class", "classes")
    stratified_by = "label"
    uses_threshold = False
    exclusive = True
    takes_class_names = True
    outputs = {"scores": "float32 [batch, n_classes]", "classes": "string [batch, n_classes]",
               "ranked_scores": "float32 [batch, n_classes]"}
    encode = staticmethod(label_encoders.encode_multiclass)

    @staticmethod
    def loss(task, label_smoothing=0.0):
        if label_smoothing:
            return SmoothedSparseCrossentropy(task.num_outputs, label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy()

    @staticmethod
    def metrics():
        return ["accuracy"]

    @staticmethod
    def strata(labels):
        return np.asarray(labels)

    @staticmethod
    def count(labels, num_outputs):
        return np.bincount(labels, minlength=num_outputs)

    @staticmethod
    def min_outputs():
        return 2


class _MultiLabel(_MultiClass):
    title = "multi-label"
    label_encoding = "multi_hot"
    activation = "sigmoid"
    objective = Objective("val_auc", "max")
    evaluation_plot = "label_scores"
    uses_threshold = True
    exclusive = False
    outputs = dict(_MultiClass.outputs, labels="string [batch, n_classes]")
    encode = staticmethod(label_encoders.encode_multilabel)

    @staticmethod
    def loss(task, label_smoothing=0.0):
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)

    @staticmethod
    def metrics():
        return [keras.metrics.AUC(multi_label=True, name="auc"),
                keras.metrics.F1Score(average="macro", threshold=0.5, name="f1")]

    @staticmethod
    def strata(labels):
        # The example's set of labels where at least 5 examples share it, so that common labels are balanced too (a
        # label that every validation example has leaves its AUC undefined); else its rarest label (examples with
        # none form a group), which keeps rare labels in every split.
        positives = labels.sum(axis=0)
        rarity = np.where(labels > 0, positives[None, :], np.inf)
        rarest = np.where(np.isfinite(rarity.min(axis=1)), rarity.argmin(axis=1), labels.shape[1])
        _, sets, counts = np.unique(labels > 0, axis=0, return_inverse=True, return_counts=True)
        sets = sets.reshape(-1)
        return np.where(counts[sets] >= 5, labels.shape[1] + 1 + sets, rarest)

    @staticmethod
    def count(labels, num_outputs):
        return labels.sum(axis=0).astype(int)

    @staticmethod
    def min_outputs():
        return 1


class _Regression(_MultiLabel):
    title = "regression"
    label_encoding = "float"
    activation = None
    objective = Objective("val_loss", "min")
    evaluation_plot = "predicted_vs_true"
    nouns = ("target", "targets")
    stratified_by = "target"
    uses_threshold = False
    takes_class_names = False
    outputs = {"predictions": "float32 [batch, n_targets]"}
    encode = staticmethod(label_encoders.encode_regression)

    @staticmethod
    def loss(task, label_smoothing=0.0):
        if label_smoothing:
            raise ValueError(f"label_smoothing={label_smoothing} is for classes; a regression head has none: leave "
                             "it out.")
        return keras.losses.MeanSquaredError()

    @staticmethod
    def metrics():
        return [keras.metrics.MeanAbsoluteError(name="mae")]

    @staticmethod
    def strata(labels):
        # The decile of the (first) target, fewer bins for small sets.
        targets = labels if labels.ndim == 1 else labels[:, 0]
        bins = max(1, min(10, len(targets) // 10))
        rank = np.argsort(np.argsort(targets, kind="stable"), kind="stable")
        return rank * bins // max(len(targets), 1)

    @staticmethod
    def count(labels, num_outputs):
        return [len(labels)] * num_outputs


#: The behaviour of each task type, by name.
KINDS = {"multiclass": _MultiClass, "multilabel": _MultiLabel, "regression": _Regression}
