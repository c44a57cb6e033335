"""Writing a Keras model in TF Hub's Reusable SavedModel format, so it loads like any tfhub.dev model."""

import tensorflow as tf

from tfxfer import _compat


def _regularization_losses(model):
    """One argument-free tf.function per regularizer on a layer's weights, as the Reusable SavedModel API asks."""
    losses = []
    for layer in _compat.sublayers(model):
        for attribute in ("kernel", "bias", "depthwise_kernel", "embeddings"):
            regularizer = getattr(layer, f"{attribute}_regularizer", None)
            weight = getattr(layer, attribute, None)
            if regularizer is not None and weight is not None:
                losses.append(_loss_function(regularizer, weight))
    return losses


def _loss_function(regularizer, weight):
    return tf.function(lambda: regularizer(weight), input_signature=[])


def save_hub_format(model, path):
    """Saves a Keras model as a TF Hub Reusable SavedModel.

    The SavedModel's root object has `__call__(inputs, training)` traced for both values of `training`,
    `variables`, `trainable_variables` (named by their Keras paths, e.g. `block_1_conv/kernel`, so
    blocks can be derived from them), `regularization_losses`, and a `serving_default` signature returning
    `{"output": ...}`. `tfxfer.load_extractor(path)` and `tensorflow_hub.load(path)` load it.

    Args:
        model: A built Keras model with one input and one output.
        path: The folder to write.

    Returns:
        `path`.

    Example:
        >>> path = save_hub_format(extractor.model, f"{tmp_dir}/tiny_hub")
        >>> sorted(v.name.split("/")[0] for v in tf.saved_model.load(path).variables)[:2]
        ['block_1_bn', 'block_1_bn']
    """
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], model.inputs[0].dtype, name="inputs")

    @tf.function
    def call(inputs, training=False):
        return model(inputs, training=training)

    for training in (False, True):
        call.get_concrete_function(spec, training)
    root = tf.train.Checkpoint()
    root.__call__ = call
    root.variables = [v.value for v in model.variables]
    root.trainable_variables = [v.value for v in model.trainable_variables]
    root.regularization_losses = _regularization_losses(model)
    serving = tf.function(lambda inputs: {"output": call(inputs, training=False)}, input_signature=[spec])
    tf.saved_model.save(root, str(path), signatures={"serving_default": serving})
    return path
