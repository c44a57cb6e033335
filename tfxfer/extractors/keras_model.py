"""Keras extractors: `keras.applications` models by name, or any functional Keras model, split at true cuts."""

import inspect
import os

import keras
import tensorflow as tf

from tfxfer import _compat
from tfxfer.extractors.base import Extractor
from tfxfer.extractors.blocks import Block, block_label, name_keys, true_cuts

GRANULARITIES = ("stage", "cut")

#: keras.applications' preprocess_input functions take pixels in [0, 255].
APPLICATIONS_VALUE_RANGE = (0.0, 255.0)


def application_names():
    """The model constructors that `keras.applications` offers, e.g. `MobileNetV2`, `ResNet50`."""
    return sorted(
        name for name, value in vars(keras.applications).items() if inspect.isfunction(value) and name[0].isupper()
    )


def _application_module(name):
    """The `keras.applications` submodule that holds `name` and its `preprocess_input`."""
    for value in vars(keras.applications).values():
        if inspect.ismodule(value) and hasattr(value, name) and hasattr(value, "preprocess_input"):
            return value
    raise ValueError(f"keras.applications has no preprocess_input for {name!r}.")


def build_application(name, *, weights="imagenet", image_size=None, **application_kwargs):
    """Builds a `keras.applications` model without its top, with pretrained or local weights.

    Args:
        name: A constructor name such as `"MobileNetV2"`, `"EfficientNetB0"`, `"ResNet50"`.
        weights: `"imagenet"` (downloaded by Keras into `~/.keras/models`), the path of a weights file
            (`.weights.h5` or a legacy `.h5`), or None for random weights.
        image_size: `(height, width)`; defaults to 224x224.
        **application_kwargs: Further constructor arguments, such as `alpha=0.35` for MobileNets.

    Returns:
        The functional Keras model.

    Raises:
        ValueError: `name` is not a keras.applications model.
        FileNotFoundError: a weights path does not exist.
        OSError: ImageNet weights are not cached and cannot be downloaded.
    """
    names = application_names()
    if name not in names:
        close = [n for n in names if n.lower().startswith(name.lower()[:5])] or names[:8]
        raise ValueError(
            f"Extractor source {name!r} is neither a path that exists nor a keras.applications model. "
            f"Applications include {', '.join(close)} (see tfxfer.extractors.application_names())."
        )
    constructor = getattr(keras.applications, name)
    takes = [option for option in inspect.signature(constructor).parameters if option not in (  # tfxfer's, or the top's
        "include_top", "weights", "input_tensor", "input_shape", "classes", "classifier_activation")]
    unknown = sorted(set(application_kwargs) - set(takes))
    if unknown:  # a TypeError, or with weights="imagenet" "Could not get the ImageNet weights" (a tester's find)
        instead = "; the image size is image_size=" if "input_shape" in unknown else ""
        raise ValueError(f"{name} takes no {' or '.join(f'{option}=' for option in unknown)} here: leave "
                         f"{'it' if len(unknown) == 1 else 'them'} out ({name} takes {', '.join(takes)}{instead}).")
    if application_kwargs.get("pooling") == "none":  # KerasHub's word (and the command line's) for None
        application_kwargs["pooling"] = None
    if application_kwargs.get("pooling") not in (None, "avg", "max"):  # any other did nothing (a tester's find)
        raise ValueError(f"{name} pools its output with pooling='avg' or pooling='max', or not at all (the "
                         f"default); got pooling={application_kwargs['pooling']!r}.")
    height, width = image_size or (224, 224)
    local = weights not in (None, "imagenet")
    if local and not os.path.isfile(weights):
        raise FileNotFoundError(f"Weights file {weights!r} for {name} does not exist.")
    try:
        model = constructor(include_top=False, weights=None if local else weights, input_shape=(height, width, 3),
                            **application_kwargs)
    except Exception as error:  # Keras raises bare Exceptions from its downloader.
        if weights != "imagenet":
            raise
        raise OSError(
            f"Could not get the ImageNet weights of {name} ({error}). Without network access, pass a local weights "
            f"file: load_extractor({name!r}, weights='path/to/{name.lower()}_no_top.weights.h5'), or put the file in "
            "~/.keras/models where Keras looks first."
        ) from None
    if local:
        try:
            model.load_weights(weights)
        except ValueError as error:
            raise ValueError(
                f"Weights file {weights!r} does not fit {name}({application_kwargs or ''}): {error}. Pass the "
                "constructor arguments the weights were saved with, e.g. alpha=0.25 for a MobileNet 0.25."
            ) from None
    return model


def split_blocks(model, granularity="stage", block_pattern=None, side_inputs=False):
    """Splits a functional Keras model into ordered blocks whose boundaries are true cuts.

    Args:
        model: A functional Keras model with one output, and one input unless `side_inputs`.
        granularity: `"stage"` groups the cut segments by the running number in layer names (MobileNetV2: stem, its
            17 inverted-residual blocks, the head conv; ResNet50: stem and 4 stages; EfficientNet: stem, 7 stages,
            top); `"cut"` makes every true cut a boundary.
        block_pattern: A regular expression whose first group is a layer name's block key (overrides the default).
        side_inputs: Model inputs (a transformer's padding mask) may cross a boundary; see `true_cuts`.

    Returns:
        A list of `Block`, input side first. Segments without trainable weights join a neighbour.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}; got {granularity!r}.")
    operations, cuts = true_cuts(model, side_inputs)
    keys = name_keys([op.name for op in operations], block_pattern)
    segments, start = [], 0
    for cut in cuts:
        if granularity == "cut" or cut + 1 >= len(operations) or keys[cut] != keys[cut + 1]:
            segments.append(operations[start : cut + 1])
            start = cut + 1
    groups, pending = [], []
    for segment in segments:
        pending.extend(segment)
        if any(_compat.learnable_variables(op) for op in pending):
            groups.append(pending)
            pending = []
    if pending:
        if groups:
            groups[-1].extend(pending)
        else:
            groups.append(pending)
    blocks = []
    for layers in groups:
        learnable = [v for layer in layers for v in _compat.learnable_variables(layer)]
        named = next((layer for layer in layers if _compat.learnable_variables(layer)), layers[0])
        output = _compat.node_output(layers[-1])
        blocks.append(
            Block(
                name=block_label(named.name),
                weights=[w for layer in layers for w in getattr(layer, "weights", [])],
                learnable=learnable,
                layers=layers,
                output_shape=tuple(output.shape),
            )
        )
    return blocks


class _Suffix(keras.layers.Layer):
    """The blocks after a cut, run with the `training` flag the whole extractor would give them."""

    def __init__(self, model, batchnorm_training, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self._batchnorm_training = batchnorm_training

    def call(self, inputs, training=None):
        return self.model(inputs, training=self._batchnorm_training(training))


@keras.saving.register_keras_serializable(package="tfxfer")
class KerasExtractor(Extractor):
    """A functional Keras model (a `keras.applications` one, or your own) as an extractor with blocks at true cuts.

    Freezing sets `layer.trainable` per block; Keras runs frozen BatchNorm layers in inference mode. The whole
    model runs with `training=False` unless no block is frozen and `train_batchnorm` is set.

    Args:
        model: A functional `keras.Model` with one image input and one output, without a classification top.
        application: The `keras.applications` name whose `preprocess_input` runs inside the layer (then the layer
            takes pixels in `[0, 255]`), or None when the model takes its inputs as they come.
        source: A description of where the model came from, for messages and exports.
        value_range: Pixel range the layer takes; `(0, 255)` for applications, `(0, 1)` by default otherwise.
        granularity: `"stage"` or `"cut"`, see `split_blocks`.
        block_pattern: See `split_blocks`.
        train_batchnorm: Let BatchNorm run in training mode when no block is frozen.
        **kwargs: Keras layer arguments.

    Example:
        >>> extractor = KerasExtractor(keras.applications.MobileNetV2(include_top=False, weights=None),
        ...                            application="MobileNetV2")
        >>> extractor.n_blocks
        19
    """

    def __init__(self, model, *, application=None, source=None, image_size=None, value_range=None,
                 granularity="stage", block_pattern=None, train_batchnorm=False, **kwargs):
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError("KerasExtractor takes a functional keras.Model with one input and one output.")
        if value_range is None:
            value_range = APPLICATIONS_VALUE_RANGE if application else (0.0, 1.0)
        shape = tuple(model.inputs[0].shape)
        super().__init__(
            source=source or application or model.name,
            input_kind="image",
            image_size=image_size or shape[1:3],
            value_range=value_range,
            train_batchnorm=train_batchnorm,
            **kwargs,
        )
        self.model = model
        self.application = application
        self.granularity = granularity
        self.block_pattern = block_pattern
        self._preprocess_input = _application_module(application).preprocess_input if application else None
        self.blocks = split_blocks(model, granularity, block_pattern)

    def _set_block_trainable(self, block, trainable):
        for layer in block.layers:
            if isinstance(layer, keras.layers.Layer):
                layer.trainable = trainable

    def _block_frozen(self, block):
        return not self.trainable or all(not layer.trainable for layer in block.layers
                                         if _compat.learnable_variables(layer))

    def call(self, inputs, training=None):
        x = inputs if self._preprocess_input is None else self._preprocess_input(inputs)
        return self.model(x, training=self._batchnorm_training(training))

    @property
    def cache_cuts(self):
        return list(range(1, self.n_blocks + 1))

    def _graph_layers(self):
        return [self, self.model, *self.model.layers]

    def _preprocessed(self, inputs):
        return inputs if self._preprocess_input is None else self._preprocess_input(inputs)

    def _prefix_function(self, k):
        cut = _compat.node_output(self.blocks[k - 1].layers[-1])
        head_cut = keras.Model(self.model.inputs, cut)
        return lambda inputs: head_cut(self._preprocessed(inputs), training=False)

    def cut_outputs(self, cuts):
        for k in cuts:
            self.check_cut(k)
        model = keras.Model(self.model.inputs, [_compat.node_output(self.blocks[k - 1].layers[-1]) for k in cuts])

        def run(inputs):
            outputs = model(self._preprocessed(inputs), training=False)
            return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]  # one output comes bare

        return tf.function(run, reduce_retracing=True)

    def suffix(self, k):
        self.check_cut(k)
        if k == self.n_blocks:
            return super().suffix(k)
        cut = _compat.node_output(self.blocks[k - 1].layers[-1])
        inputs = keras.Input(cut.shape[1:])
        outputs = _compat.run_graph_from(cut, self.model.outputs[0], inputs)
        return _Suffix(keras.Model(inputs, outputs), self._batchnorm_training, name=f"{self.name}_after_{k}")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:1]) + tuple(self.model.outputs[0].shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(
            model=keras.saving.serialize_keras_object(self.model),
            application=self.application,
            granularity=self.granularity,
            block_pattern=self.block_pattern,
        )
        return config
