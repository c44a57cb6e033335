"""Dense heads: optional hidden layers, dropout and L1/L2, then the output layer the task asks for."""

import dataclasses

import keras



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
            task: The `tfxfer.data.Task`; its output activation and width make the output layer.

        Returns:
            The output Keras tensor.
        """
        task.check()
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
        return keras.layers.Dense(task.num_outputs, task.output_activation, kernel_regularizer=regularizer,
                                  name="output")(x)
