"""The task a data set poses, and everything that follows from it: labels, loss, metrics, objective, served outputs.

A `Task` is multi-class (one class per example), multi-label (any subset of classes) or regression. Every module
that behaves differently per task asks the task (keras-hub's `compile(loss="auto")` is the model: the task decides),
so the task type is compared with a string here and nowhere else.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfxfer.data import labels as label_encoders
from tfxfer.data.errors import DataError
from tfxfer.data.task_types import KINDS as _KINDS
from tfxfer.data.task_types import TASK_TYPES


def check_task_argument(task):
    """Raises for a `task=` value that is not a task type."""
    if task is not None and task not in TASK_TYPES:
        raise ValueError(f"task must be one of {TASK_TYPES} or None (inferred); got {task!r}.")


@dataclasses.dataclass
class Task:
    """What the model has to predict, and what follows from it.

    Attributes:
        task_type: `"multiclass"` (one class per example), `"multilabel"` (any subset of classes) or `"regression"`.
        class_names: Class names in the order of the outputs: sorted for classes found in the data (numerically
            when the labels are numbers), the caller's order when `class_names=` or several 0/1 label columns were
            given; for regression, the target column name(s).
        num_outputs: Width of the model's output: the number of classes, or of regression targets (default: the
            number of class names).
        label_encoding: `"sparse"` (int32 class index), `"multi_hot"` (float32 0/1 vector of length `num_outputs`)
            or `"float"` (float32 target, a vector when there are several target columns); set by the task type.
        class_weights: Multi-class only: `{class index: weight}` with weight `n / (num_classes * n_class)` over the
            training split ("balanced"), as `keras.Model.fit(class_weight=...)` takes it; all 1.0 when balanced.
            None for multi-label (Keras' `class_weight` assumes one class per example) and regression.
        target_mean, target_scale: Regression only: each target's mean and standard deviation (1 where it is 0)
            over the training split; the head's output is scaled by them, so that targets in the thousands train as
            those near 0 do (a Dense layer that starts near 0 took a million steps to reach 1000). None otherwise.

    Example:
        >>> task = Task("multilabel", ["cat", "dog"])
        >>> task.num_outputs, task.label_encoding, task.output_activation, task.objective.name
        (2, 'multi_hot', 'sigmoid', 'val_auc')
    """

    task_type: str
    class_names: list
    num_outputs: int = None
    label_encoding: str = None
    class_weights: dict = None
    target_mean: list = None
    target_scale: list = None

    def __post_init__(self):
        if self.task_type not in _KINDS:
            raise ValueError(f"task_type must be one of {TASK_TYPES}; got {self.task_type!r}.")
        self.class_names = list(self.class_names)
        if self.num_outputs is None:
            self.num_outputs = len(self.class_names)
        if self.label_encoding is None:
            self.label_encoding = self._kind.label_encoding

    @property
    def _kind(self):
        return _KINDS[self.task_type]

    @classmethod
    def from_labels(cls, frame, label_columns, *, task, class_names, delimiter, source, bad):
        """Infers the task of a table's label columns (unless `task` is given) and encodes them.

        Args:
            frame: The table.
            label_columns: The label column names.
            task: A task type, or None to infer it (see `tfxfer.data.labels.infer_task_type`).
            class_names: The caller's class names (their order is the output order), or None to take them from data.
            delimiter: Separator of several labels in one string, for multi-label.
            source: The file or "DataFrame", for messages.
            bad: The `BadInputs` policy.

        Returns:
            `(task, labels, keep)`: the `Task` without weights, the encoded labels of the kept rows (int32 `[n]`,
            float32 `[n, k]` or float32 `[n]`/`[n, k]`) and a boolean mask over the rows of `frame` that were kept.

        Raises:
            DataError: Labels that fit no task, a bad row under `on_bad="error"`, or fewer than two classes.
        """
        frame = label_encoders.normalise_labels(frame, label_columns, source)
        task_type = task or label_encoders.infer_task_type(frame, label_columns, delimiter, source)
        kind = _KINDS[task_type]
        if class_names is not None and not kind.takes_class_names:
            raise ValueError(f"class_names does not apply to {task_type}; the target column names are used.")
        names, labels, keep = kind.encode(frame, label_columns, class_names, delimiter, source, bad)
        if len(set(names)) < kind.min_outputs():
            found = sorted(set(names))
            raise DataError(
                f"{source}: found {len(found)} {kind.nouns[len(found) != 1]} ({found}) in {label_columns[0]!r}; a "
                f"{kind.title} task needs at least {('one', 'two')[kind.min_outputs() - 1]} "
                f"{kind.nouns[kind.min_outputs() != 1]}."
            )
        return cls(task_type, list(names)), labels, keep

    def check(self):
        """Raises a clear error when the task cannot drive a head (too few outputs)."""
        least = self._kind.min_outputs()
        if not isinstance(self.num_outputs, int) or self.num_outputs < least:
            raise ValueError(f"A {self.task_type} task needs num_outputs >= {least}; got {self.num_outputs!r}.")
        return self

    # Training.

    @property
    def output_activation(self):
        """The head's output activation: softmax, sigmoid, or None (linear)."""
        return self._kind.activation

    def loss(self, label_smoothing=0.0):
        """The Keras loss: sparse categorical cross-entropy, binary cross-entropy, or mean squared error; with
        `label_smoothing` (classes only), each label's share spread over the others."""
        return self._kind.loss(self, label_smoothing)

    def metrics(self):
        """Fresh Keras metrics: accuracy; AUC and macro F1 at 0.5; mean absolute error."""
        return self._kind.metrics()

    @property
    def objective(self):
        """The validation metric to optimise (`val_accuracy`, `val_auc`, `val_loss`) and its direction."""
        return self._kind.objective

    def fit_class_weight(self):
        """The `class_weight` for `keras.Model.fit`: the balanced weights of a multi-class task, else None."""
        return (self.class_weights or None) if self._kind.exclusive else None

    def check_labels(self, labels):
        """Raises when encoded labels cannot be class indices of this multi-class task's head."""
        if not self._kind.exclusive:
            return
        labels = np.asarray(labels)
        bad = np.flatnonzero((labels < 0) | (labels >= self.num_outputs) | (labels != np.round(labels)))
        if bad.size:
            raise ValueError(f"label {labels[bad[0]].item()!r} at row {bad[0]} is not a class index of the head's "
                             f"{self.num_outputs} classes {self.class_names} (0 to {self.num_outputs - 1}).")

    # Data.

    def strata(self, labels):
        """Groups examples so that each split gets its share of every group (see `tfxfer.data.stratify`)."""
        return self._kind.strata(labels)

    @property
    def stratified_by(self):
        """What a stratified split balances: `"label"` or `"target"`."""
        return self._kind.stratified_by

    @property
    def strict_classes(self):
        """The class names that every split must hold (multi-class), else None."""
        return self.class_names if self._kind.exclusive else None

    def count(self, labels):
        """`{class name: examples}` (multi-label: examples with the label; regression: examples per target)."""
        if not len(labels):
            return {}
        return {name: int(count) for name, count in zip(self.class_names, self._kind.count(labels, self.num_outputs))}

    def missing_from_training(self, train_labels):
        """The name of a class without training examples (multi-label: a label no training example has), or None:
        nothing could teach the model that output."""
        if not self.has_classes:
            return None
        present = self._kind.count(train_labels, self.num_outputs)
        return None if all(present) else self.class_names[int(np.flatnonzero(np.asarray(present) == 0)[0])]

    def held_out_notes(self, split, labels):
        """What a held-out split (named `split`, its encoded `labels`) cannot score, in words: a class it lacks
        (multi-class), a label that every example or none has (multi-label), a target that never varies there
        (regression).

        Example:
            >>> Task("regression", ["price"]).held_out_notes("validation", np.array([2.0, 2.0]))
            ["every validation example has 'price' 2: its R² there is undefined (a probe scores the other targets)"]
        """
        if not len(labels):
            return []
        if not self.has_classes:
            targets = np.asarray(labels, np.float64).reshape(len(labels), -1)
            return [f"every {split} example has {name!r} {targets[0, index]:g}: its R² there is undefined (a probe "
                    "scores the other targets)" for index, name in enumerate(self.class_names)
                    if np.all(targets[:, index] == targets[0, index])]
        if not self.uses_threshold:  # one class per example: each class, present
            absent = [name for index, name in enumerate(self.class_names) if not np.any(labels == index)]
            return [f"the {split} split has no {', '.join(map(repr, absent))}: its scores say nothing of "
                    + ("that class" if len(absent) == 1 else "those classes")] if absent else []
        return [f"{'every' if labels[0, index] > 0 else 'no'} {split} example has {name!r}: its AUC there is "
                "undefined, and Keras counts it 0 in the mean AUC" for index, name in enumerate(self.class_names)
                if np.all(labels[:, index] > 0) or not np.any(labels[:, index] > 0)]

    def fill_weights(self, train_labels):
        """Fills `class_weights` (multi-class) or the targets' mean and scale (regression) from the training
        labels."""
        n = len(train_labels)
        if n and not self.has_classes:
            targets = np.asarray(train_labels, np.float64).reshape(n, -1)
            spread = targets.std(axis=0)
            self.target_mean = targets.mean(axis=0).tolist()
            self.target_scale = np.where(spread > 0, spread, 1).tolist()
        if n and self._kind.exclusive:
            counts = self._kind.count(train_labels, self.num_outputs)
            self.class_weights = {index: float(n / (self.num_outputs * count)) for index, count in enumerate(counts)}
        return self

    @property
    def has_classes(self):
        """Whether the outputs are classes (multi-class, multi-label) rather than regression targets."""
        return self._kind.takes_class_names

    def noun(self, count=2):
        """What the outputs are called: class/classes, or target/targets."""
        return self._kind.nouns[count != 1]

    @property
    def evaluation_plot(self):
        """Which plot shows how a model does: `"confusion"`, `"label_scores"` or `"predicted_vs_true"`."""
        return self._kind.evaluation_plot

    # Serving.

    def for_outputs(self, width, model="the model"):
        """This task for a model with `width` outputs: its names checked against them; regression targets without
        names are called `target_0`, `target_1`...

        Raises:
            ValueError: The names do not match the outputs, or classes have no names.
        """
        names = [str(name) for name in self.class_names]
        if not names:
            if self._kind.takes_class_names:
                raise ValueError(f"A {self.task_type} export needs class_names=[...] ({width} names, in output "
                                 "order).")
            names = [f"target_{index}" for index in range(width)]
        if len(names) != width:
            raise ValueError(f"class_names has {len(names)} names but {model} has {width} outputs.")
        return dataclasses.replace(self, class_names=names, num_outputs=width)

    @property
    def uses_threshold(self):
        """Whether predictions name labels above a threshold (multi-label)."""
        return self._kind.uses_threshold

    @property
    def served_outputs(self):
        """`{output key: "dtype shape"}` of an export's prediction signatures."""
        return dict(self._kind.outputs)

    def serve(self, scores, threshold=None):
        """The served outputs, as tensors, of the model's output `scores` `[batch, outputs]`.

        Multi-class and multi-label: `scores`, `classes` (names ranked by score), `ranked_scores`; multi-label also
        `labels` (names above `threshold`, best first, padded with `""`). Regression: `predictions`.
        """
        if not self._kind.takes_class_names:
            return {"predictions": scores}
        order = tf.argsort(scores, axis=-1, direction="DESCENDING", stable=True)
        ranked_scores = tf.gather(scores, order, batch_dims=1)
        classes = tf.gather(tf.constant(self.class_names), order)
        result = {"scores": scores, "classes": classes, "ranked_scores": ranked_scores}
        if self.uses_threshold:
            result["labels"] = tf.where(ranked_scores > threshold, classes, "")
        return result

    def prediction_columns(self, outputs, taken=()):
        """Table columns of served outputs (NumPy arrays by key): best class and score, labels, per-class scores.

        Args:
            outputs: The served outputs.
            taken: The table's input columns (`file`, `text`...), which a regression target of the same name
                would replace: such a target's column is `predicted_<name>`.

        Returns:
            `{column: values}`: for multi-class `class` and `score`; for multi-label `labels` (`;`-separated);
            for both `score_<class>` per class; for regression one column per target.
        """
        if not self._kind.takes_class_names:
            return {f"predicted_{name}" if name in taken else name: outputs["predictions"][:, index]
                    for index, name in enumerate(self.class_names)}
        scores = outputs["scores"]
        columns = {}
        if self.uses_threshold:
            columns["labels"] = [";".join(name.decode() for name in row if name) for row in outputs["labels"]]
        else:
            best = scores.argmax(axis=1)
            columns["class"] = [self.class_names[index] for index in best]
            columns["score"] = scores[np.arange(len(best)), best]
        columns.update({f"score_{name}": scores[:, index] for index, name in enumerate(self.class_names)})
        return columns
