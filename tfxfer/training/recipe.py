"""The optimizer of each phase (its schedule, rates per block and weight decay) and test-time augmentation."""

import math

import keras
import tensorflow as tf

from tfxfer.training.rates import block_scales, variable_scales, with_block_rates
from tfxfer.training.schedules import learning_rate


def phase_optimizer(phase, extractor, steps_per_epoch, weight_decay=None):
    """Adam for one phase: its rate following its schedule over its epochs, each trainable block at its multiple of
    that rate (`Phase.layer_decay` or `Phase.block_rates`), the head at the rate itself.

    Args:
        phase: The `Phase`.
        extractor: The `Extractor` whose blocks get the rates.
        steps_per_epoch: Optimizer steps in one epoch of the phase's training data.
        weight_decay: Decoupled weight decay (AdamW's), applied at each variable's own rate; None for none.

    Returns:
        A Keras optimizer, not built.

    Example:
        >>> phase = tfxfer.Phase("fine-tune", 2, epochs=3, learning_rate=1e-3, schedule="cosine", layer_decay=0.5)
        >>> optimizer = phase_optimizer(phase, extractor, steps_per_epoch=10)
        >>> type(optimizer).__name__, sorted(set(optimizer.rate_scales.values()))  # blocks 2 and 3 of 4
        ('AdamWithBlockRates', [0.25, 0.5])
    """
    rate = learning_rate(phase.schedule, phase.learning_rate, steps_per_epoch * phase.epochs)
    optimizer = keras.optimizers.Adam(rate, weight_decay=weight_decay)
    scales = block_scales(extractor.n_blocks, phase.frozen_blocks, layer_decay=phase.layer_decay,
                          rates=phase.block_rates)
    return with_block_rates(optimizer, variable_scales(extractor, scales)) if scales else optimizer


def steps_per_epoch(fit_kwargs):
    """Batches in one epoch of Keras `fit` arguments (`x` a dataset of batches, or arrays with `batch_size`).

    Raises:
        ValueError: a dataset of unknown length (repeated, or filtered): a schedule needs its steps.
    """
    x = fit_kwargs["x"]
    if isinstance(x, tf.data.Dataset):
        count = int(x.cardinality())
        if count < 0:
            raise ValueError("A schedule needs the number of batches per epoch, but the training dataset's length is "
                             "unknown (repeated or filtered); pass schedule='constant', or data of known length.")
        return max(count, 1)
    return max(math.ceil(len(x) / fit_kwargs.get("batch_size", 32)), 1)


@keras.saving.register_keras_serializable(package="tfxfer")
class HorizontalFlip(keras.layers.Layer):
    """Mirrors a batch of images left to right (every time: a fixed transform, not a random augmentation)."""

    def call(self, images):
        return keras.ops.flip(images, axis=2)


def flip_averaged(model):
    """Test-time augmentation: a model whose output is the mean of `model`'s on the images and on their mirror
    images (the same weights, so it needs no training).

    Example:
        >>> averaged = flip_averaged(fitted.model_)
        >>> averaged.predict(np.zeros((1, 16, 16, 3)), verbose=0).shape
        (1, 3)
    """
    inputs = keras.Input(model.inputs[0].shape[1:], name="image")
    # One call of `model` on the images and their mirrors stacked: two calls would count its weights' penalties
    # (L2) twice in the loss that `evaluate` reports.
    both = keras.ops.concatenate([inputs, HorizontalFlip(name="horizontal_flip")(inputs)], axis=0)
    outputs = keras.layers.Average(name="flip_average", dtype="float32")(keras.ops.split(model(both), 2, axis=0))
    return keras.Model(inputs, outputs, name=f"{model.name}_flip_averaged")
