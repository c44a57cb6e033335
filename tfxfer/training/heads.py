"""Dense heads: optional hidden layers, dropout and L1/L2, then the output layer the task asks for (in float32,
whatever the dtype policy); and `build_model`, the extractor under a head."""

import dataclasses

import keras
import numpy as np


#: The hidden layers of `Head(hidden_units="auto")` under text extractors (none under image extractors).
TEXT_HIDDEN_UNITS = (128,)


@keras.saving.register_keras_serializable(package="tfxfer")
class HeadBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that, while training, normalises a batch of one example with its moving statistics and
    leaves them as they were, as it does in inference.

    One example's own statistics are itself and a variance of zero: Keras' layer maps it to zero and pulls the moving
    variance that serving uses towards zero. A training split of 33 examples in batches of 32 ends every epoch with
    such a batch.

    Example:
        >>> layer = HeadBatchNormalization()
        >>> lone = np.array([[3.0, -1.0]], "float32")
        >>> bool(np.allclose(layer(lone, training=True), layer(lone, training=False)))
        True
        >>> layer.moving_variance.numpy().tolist()
        [1.0, 1.0]
    """

    def call(self, inputs, training=None, mask=None):
        parent = super().call
        if not training:
            return parent(inputs, training=training, mask=mask)
        if inputs.shape[0] is not None:  # a batch size known when traced
            return parent(inputs, training=inputs.shape[0] > 1, mask=mask)
        return keras.ops.cond(keras.ops.shape(inputs)[0] > 1, lambda: parent(inputs, training=True, mask=mask),
                              lambda: parent(inputs, training=False, mask=mask))


@dataclasses.dataclass
class Head:
    """A dense head: optional input normalisation and hidden layers, dropout and L1/L2 regularisation, then the task's
    output layer.

    Attributes:
        hidden_units: Sizes of hidden Dense layers, input side first (one size for one layer); `()`, 0 or None
            for a linear head; `"auto"` (the default): one layer of 128 under text extractors, none under image
            extractors. Measured (`bench/RESULTS.md`, "The frozen head: a hidden layer for text"): spam F1 on SMS
            spam 0.946 -> 0.965 with MiniLM and 0.706 -> 0.767 with GloVe.
        batch_norm: Normalise the head's input features with BatchNormalization, as fastai's heads start, so that
            features of any scale train at the head's one learning rate: True, False, or `"auto"` (the default):
            on for text extractors, off for image extractors. Measured (`bench/RESULTS.md`, "The frozen head"):
            spam F1 on SMS spam 0.838 -> 0.942 with MiniLM (whose L2-normalised units are about 0.05 each) and
            0.610 -> 0.710 with GloVe; hymenoptera level in float (0.937 -> 0.943), but its int8 LiteRT file fell
            to 0.902 against the linear head's 0.922.
        activation: Activation of the hidden layers.
        dropout: Dropout rate before each hidden layer and before the output layer.
        l1: L1 penalty on the head's kernels.
        l2: L2 penalty on the head's kernels.

    Example:
        >>> Head(hidden_units=(128,), dropout=0.2).hidden_units
        (128,)
        >>> Head().normalises("text"), Head().normalises("image"), Head(batch_norm=True).normalises("image")
        (True, False, True)
        >>> Head().units("text"), Head().units("image"), Head(hidden_units=()).units("text")
        ((128,), (), ())
    """

    hidden_units: tuple | str = "auto"
    batch_norm: bool | str = "auto"
    activation: str = "relu"
    dropout: float = 0.2
    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self):
        units = self.hidden_units
        if isinstance(units, str):
            if units != "auto":
                raise ValueError(f"Head hidden_units must be sizes of layers or 'auto'; got {units!r}.")
        else:
            if units is None or isinstance(units, (int, np.integer)):  # None or 0: none; one size: one layer
                units = (units,) if units else ()
            units = tuple(units)
            if any(isinstance(u, bool) or not isinstance(u, (int, np.integer)) or u <= 0 for u in units):
                raise ValueError(f"Head hidden_units must be whole numbers > 0 (sizes of layers), () or 0 for none, "
                                 f"or 'auto'; got {self.hidden_units!r}.")
            self.hidden_units = tuple(int(u) for u in units)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Head dropout must be in [0, 1); got {self.dropout}.")
        if not (isinstance(self.batch_norm, bool) or self.batch_norm == "auto"):
            raise ValueError(f"Head batch_norm must be True, False or 'auto'; got {self.batch_norm!r}.")
        if not (self.l1 >= 0 and self.l2 >= 0):  # NaN too
            raise ValueError(f"Head l1 and l2 must be >= 0; got l1={self.l1}, l2={self.l2}.")

    def normalises(self, input_kind):
        """Whether the head normalises its input under an extractor of `input_kind` (`"image"` or `"text"`)."""
        return input_kind == "text" if self.batch_norm == "auto" else self.batch_norm

    def units(self, input_kind):
        """The hidden layers' sizes under an extractor of `input_kind` (`"image"` or `"text"`)."""
        if self.hidden_units == "auto":
            return TEXT_HIDDEN_UNITS if input_kind == "text" else ()
        return self.hidden_units

    def __call__(self, features, task, input_kind="image"):
        """Stacks the head on a feature tensor (pooling a feature map or a sequence first).

        Args:
            features: A Keras tensor: `[b, d]`, `[b, t, d]` or `[b, h, w, d]`.
            task: The `tfxfer.data.Task`; its output activation and width make the output layer.
            input_kind: What the extractor takes, `"image"` or `"text"` (for the `"auto"` settings).

        Returns:
            The output Keras tensor.
        """
        task.check()
        x = features
        if len(x.shape) == 4:
            x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
        elif len(x.shape) == 3:
            x = keras.layers.GlobalAveragePooling1D(name="head_pool")(x)
        if self.normalises(input_kind):
            # Momentum 0.9 (PyTorch's 0.1): with Keras' 0.99 the moving statistics that validation and serving use
            # are still half their initial (0, 1) after an epoch of 70 steps.
            x = HeadBatchNormalization(momentum=0.9, name="head_batch_norm")(x)
        regularizer = keras.regularizers.L1L2(self.l1, self.l2) if (self.l1 or self.l2) else None
        for index, units in enumerate(self.units(input_kind)):
            if self.dropout:
                x = keras.layers.Dropout(self.dropout, name=f"head_dropout_{index}")(x)
            x = keras.layers.Dense(units, self.activation, kernel_regularizer=regularizer, name=f"head_dense_{index}")(x)
        if self.dropout:
            x = keras.layers.Dropout(self.dropout, name="head_dropout")(x)
        outputs = keras.layers.Dense(task.num_outputs, task.output_activation, kernel_regularizer=regularizer,
                                     dtype="float32", name="output")(x)
        if task.target_mean is not None:  # regression targets at their training split's mean and spread
            outputs = keras.layers.Rescaling(task.target_scale, task.target_mean, dtype="float32",
                                             name="output_scale")(outputs)
        return outputs


def build_model(extractor, task, head=None):
    """The extractor under a dense head, as a functional Keras model (not compiled).

    The head is a nested model named `"head"` (`model.get_layer("head")`), so the same head can also train on cached
    activations (see `tfxfer.training.feature_cache`) and stay part of this model.

    Args:
        extractor: An `Extractor`.
        task: The `tfxfer.data.Task`.
        head: A `Head`; by default `Head()` (dropout 0.2; BatchNorm and a hidden layer of 128 under text
            extractors, linear under image extractors).

    Returns:
        A `keras.Model` taking what the extractor takes (float images in its value range, or strings).
    """
    if extractor.input_kind == "text":
        inputs = keras.Input(shape=(), dtype="string", name="text")
    else:
        inputs = keras.Input((*extractor.image_size, 3), name="image")
    features = extractor(inputs)
    if len(features.shape) not in (2, 3, 4):
        raise ValueError(f"{extractor.source!r} outputs shape {tuple(features.shape)}; a head takes features "
                         "[batch, d], a sequence [batch, t, d] or a feature map [batch, h, w, d]. For a SavedModel "
                         "that returns a dict, choose the output with output_key=.")
    head_inputs = keras.Input(features.shape[1:], name="features")
    head_model = keras.Model(head_inputs, (head or Head())(head_inputs, task, extractor.input_kind), name="head")
    return keras.Model(inputs, head_model(features), name="transfer")
