"""Dense heads per task: the output layer, loss and metrics follow from the task type."""

import dataclasses

import keras

from tfxfer.data.task import TASK_TYPES


@dataclasses.dataclass
class Head:
    """A dense head: optional hidden layers, dropout and L1/L2 regularisation, then the task's output layer.

    Attributes:
        hidden_units: Sizes of hidden Dense layers, input side first; `()` for a linear head.
        activation: Activation of the hidden layers.
        dropout: Dropout rate before each hidden layer and before the output layer.
        l1: L1 penalty on the head's kernels.
        l2: L2 penalty on the head's kernels.

    Example:
        >>> Head(hidden_units=(128,), dropout=0.2).hidden_units
        (128,)
    """

    hidden_units: tuple = ()
    activation: str = "relu"
    dropout: float = 0.2
    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self):
        self.hidden_units = tuple(int(u) for u in (self.hidden_units or ()))
        if any(u <= 0 for u in self.hidden_units):
            raise ValueError(f"Head hidden_units must be positive; got {self.hidden_units}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Head dropout must be in [0, 1); got {self.dropout}.")
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"Head l1 and l2 must be >= 0; got l1={self.l1}, l2={self.l2}.")

    def __call__(self, features, task):
        """Stacks the head on a feature tensor (pooling a feature map or a sequence first).

        Args:
            features: A Keras tensor: `[b, d]`, `[b, t, d]` or `[b, h, w, d]`.
            task: An object with `task_type` and `num_outputs` (the data layer's `Task`).

        Returns:
            The output Keras tensor.
        """
        check_task(task)
        x = features
        if len(x.shape) == 4:
            x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
        elif len(x.shape) == 3:
            x = keras.layers.GlobalAveragePooling1D(name="head_pool")(x)
        regularizer = keras.regularizers.L1L2(self.l1, self.l2) if (self.l1 or self.l2) else None
        for index, units in enumerate(self.hidden_units):
            if self.dropout:
                x = keras.layers.Dropout(self.dropout, name=f"head_dropout_{index}")(x)
            x = keras.layers.Dense(units, self.activation, kernel_regularizer=regularizer, name=f"head_dense_{index}")(x)
        if self.dropout:
            x = keras.layers.Dropout(self.dropout, name="head_dropout")(x)
        activation = {"multiclass": "softmax", "multilabel": "sigmoid", "regression": None}[task.task_type]
        return keras.layers.Dense(task.num_outputs, activation, kernel_regularizer=regularizer, name="output")(x)


def check_task(task):
    """Raises a clear error when `task` cannot drive a head."""
    task_type = getattr(task, "task_type", None)
    if task_type not in TASK_TYPES:
        raise ValueError(f"task.task_type must be one of {TASK_TYPES}; got {task_type!r}.")
    outputs = getattr(task, "num_outputs", 0)
    if not isinstance(outputs, int) or outputs < 1 or (task_type == "multiclass" and outputs < 2):
        raise ValueError(f"A {task_type} task needs num_outputs >= {2 if task_type == 'multiclass' else 1}; "
                         f"got {outputs!r}.")


def loss_and_metrics(task):
    """The loss and metrics for a task type.

    Multiclass: sparse categorical cross-entropy and accuracy (labels are class indices). Multilabel: binary
    cross-entropy, AUC and macro F1 at 0.5 (labels are multi-hot). Regression: mean squared error and mean absolute
    error.

    Returns:
        `(loss, metrics, objective)`, the objective being the validation metric to maximise or minimise, as Keras
        Tuner names it (`"val_accuracy"`, `"val_auc"`, `"val_loss"`).
    """
    check_task(task)
    if task.task_type == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(), ["accuracy"], "val_accuracy"
    if task.task_type == "multilabel":
        metrics = [keras.metrics.AUC(multi_label=True, name="auc"),
                   keras.metrics.F1Score(average="macro", threshold=0.5, name="f1")]
        return keras.losses.BinaryCrossentropy(), metrics, "val_auc"
    return keras.losses.MeanSquaredError(), [keras.metrics.MeanAbsoluteError(name="mae")], "val_loss"
