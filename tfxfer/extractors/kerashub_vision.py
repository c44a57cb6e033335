"""KerasHub vision backbones as extractors: the backbone's graph split at true cuts, the preset's image converter
before the first block, and the pooling of the preset's image classifier after the last.

ViT and DINOv2 run their whole encoder as one Keras layer, so their graph has three cuts (embeddings, encoder,
norm). Their transformer layers are laid out here in a graph of their own, from copies of the layers with the same
weights, so that each one is a block. Any other backbone keeps its own graph and gets the blocks its true cuts give
(`describe()` shows them).
"""

import hashlib
import inspect
import json
import os

import keras

from tfxfer.extractors.keras_model import APPLICATIONS_VALUE_RANGE, KerasExtractor
from tfxfer.extractors.resolve import keras_hub_module

#: Poolings by the rank of the backbone's output: feature maps `[b, h, w, c]` and token sequences `[b, t, d]`.
POOLINGS = {4: ("avg", "max", "none"), 3: ("token", "gap", "none")}

_POOLING_WORDS = {"avg": "global average pooling", "max": "global max pooling", "token": "the class token",
                  "gap": "the mean over tokens", "none": "no pooling (the feature map)"}


def converter_description(converter):
    """What an ImageConverter does to pixels in `[0, 255]`, in words."""
    if converter is None:
        return "no preprocessing: the backbone sees the pixels as given"

    def numbers(value):
        values = value if isinstance(value, (list, tuple)) else [value]
        text = ", ".join(f"{float(v):.4g}" for v in values)
        return f"[{text}]" if len(values) > 1 else text

    size = converter.image_size
    resize = (f"resize to {size[0]}x{size[1]} ({converter.interpolation}"
              f"{', cropped to the aspect ratio' if converter.crop_to_aspect_ratio else ''})" if size else "no resize")
    scale = "" if converter.scale is None else f", times {numbers(converter.scale)}"
    offset = "" if converter.offset is None else f", plus {numbers(converter.offset)}"
    return f"{type(converter).__name__}: {resize}, pixels in [0, 255]{scale}{offset}"


def classifier_pooling(backbone, preset=None):
    """The pooling the preset's image classifier applies to `backbone`'s output, by tfxfer's names.

    A preset's `task.json` says it; else the default of the KerasHub classifier made for this backbone class; else
    global average pooling of a feature map and the class token of a sequence.
    """
    if preset is not None and os.path.isfile(os.path.join(preset, "task.json")):
        with open(os.path.join(preset, "task.json"), encoding="utf-8") as file:
            pooling = json.load(file).get("config", {}).get("pooling")
        if pooling:
            return pooling
    hub = keras_hub_module()
    classes, found = [hub.models.ImageClassifier], []
    while classes:
        task = classes.pop()
        classes.extend(task.__subclasses__())
        if getattr(task, "backbone_cls", None) is not None and isinstance(backbone, task.backbone_cls):
            found.append(task)
    for task in found:
        parameter = inspect.signature(task.__init__).parameters.get("pooling")
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return "avg" if len(backbone.outputs[0].shape) == 4 else "token"


def _copied(layer, inputs):
    """A copy of `layer` (same configuration and weights) called on `inputs`: a layer in no other graph.

    Sharing the backbone's own layers would leave the embeddings and the final norm with a first graph node in the
    backbone's graph, where block boundaries are looked up. Some KerasHub layers put derived values in their
    configuration (ViTPatchingAndEmbedding's `num_patches`) that their constructor refuses; those are dropped.
    """
    config = layer.get_config()
    try:
        copy = type(layer).from_config(config)
    except (TypeError, ValueError):
        accepted = inspect.signature(type(layer).__init__).parameters
        copy = type(layer).from_config({key: value for key, value in config.items()
                                        if key in accepted or key in ("name", "trainable", "dtype")})
    outputs = copy(inputs)
    copy.set_weights(layer.get_weights())
    return outputs


def _vit_layers(backbone):
    encoder = backbone.get_layer("vit_encoder")
    return [backbone.get_layer("vit_patching_and_embedding"), encoder.dropout], encoder.encoder_layers, [
        encoder.layer_norm]


def _dinov2_layers(backbone):
    return [backbone.embeddings], backbone.encoder.layers, [backbone.layernorm]


#: Backbones whose encoder is one Keras layer: the layers they run before, in and after it, input side first.
TRANSFORMER_LAYOUTS = {"ViTBackbone": _vit_layers, "DINOV2Backbone": _dinov2_layers}


def vision_graph(backbone):
    """The backbone as a functional model with one image input, its transformer layers laid out one by one.

    Returns:
        `(model, layout)`: the model, and a sentence on how it relates to the backbone.
    """
    image = backbone.inputs[0]
    layout = TRANSFORMER_LAYOUTS.get(type(backbone).__name__)
    if layout is None:
        if len(backbone.inputs) != 1 or len(backbone.outputs) != 1 or len(image.shape) != 4:
            raise ValueError(f"{type(backbone).__name__} takes {[tuple(t.shape) for t in backbone.inputs]} and gives "
                             f"{len(backbone.outputs)} outputs; tfxfer's image extractors take one batch of images "
                             "[batch, height, width, 3] to one output.")
        return keras.Model(image, backbone.outputs[0], name=backbone.name), "the backbone's own graph"
    before, transformer_layers, after = layout(backbone)
    inputs = keras.Input(image.shape[1:], name="images")
    outputs = inputs
    for layer in [*before, *transformer_layers, *after]:
        outputs = _copied(layer, outputs)
    return (keras.Model(inputs, outputs, name=backbone.name), f"its encoder laid out as {len(transformer_layers)} "
            "transformer layers (copies with the backbone's weights)")


def pooled(model, pooling, source):
    """`model` followed by `pooling` on its output, over the same graph (no layer is called again)."""
    features = model.outputs[0]
    allowed = POOLINGS.get(len(features.shape), ("none",))
    if pooling not in allowed:
        raise ValueError(f"pooling={pooling!r} does not fit {source!r}, whose output has shape "
                         f"{tuple(features.shape)}; use one of {allowed}.")
    if pooling == "none":
        return model
    if pooling == "token":
        outputs = features[:, 0]
    else:
        layer = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
                 "gap": keras.layers.GlobalAveragePooling1D}[pooling]
        outputs = layer(name=f"{pooling}_pooling")(features)
    return keras.Model(model.inputs[0], outputs, name=f"{model.name}_{pooling}")


def config_digest(*layers):
    """A digest of preprocessing layers' configurations, for cache keys."""
    return hashlib.sha256(json.dumps([None if layer is None else layer.get_config() for layer in layers],
                                     sort_keys=True, default=repr).encode()).hexdigest()


@keras.saving.register_keras_serializable(package="tfxfer")
class KerasHubExtractor(KerasExtractor):
    """A KerasHub vision backbone with its preset's image converter and its classifier's pooling.

    The converter runs inside the layer before the first block (as a `keras.applications` model's
    `preprocess_input`), so the layer takes pixels in `[0, 255]` and an export serves image bytes with TensorFlow
    alone. `describe()` says what the converter does and which pooling follows (`attrs["preprocessing"]`,
    `attrs["output"]`). Build it with `tfxfer.load_extractor`.

    Args:
        model: The backbone as a functional model with the pooling on its output (see `vision_graph`, `pooled`).
        converter: The preset's `keras_hub.layers.ImageConverter`, or None for pixels as given.
        pooling: The pooling on the output: `"avg"`, `"max"`, `"token"`, `"gap"` or `"none"`.
        layout: How `model` relates to the backbone, for `describe()`.
        **kwargs: `KerasExtractor` arguments (`source`, `image_size`, `value_range`, `granularity`...).

    Example:
        >>> import keras_hub
        >>> backbone = keras_hub.models.ResNetBackbone(
        ...     input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 16],
        ...     stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        ...     use_pre_activation=False, image_shape=(32, 32, 3))
        >>> converter = keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255)
        >>> extractor = tfxfer.load_extractor(backbone, preprocessor=converter)
        >>> extractor.n_blocks, extractor.value_range, extractor(np.zeros((1, 32, 32, 3))).shape
        (3, (0.0, 255.0), TensorShape([1, 16]))
    """

    def __init__(self, model, converter=None, *, pooling="none", layout="the backbone's own graph", **kwargs):
        if isinstance(model, dict) or isinstance(converter, dict):
            keras_hub_module()  # registers the classes that the configurations name
        if isinstance(converter, dict):
            converter = keras.saving.deserialize_keras_object(converter)
        if converter is not None:
            kwargs.setdefault("value_range", APPLICATIONS_VALUE_RANGE)
        super().__init__(model, **kwargs)
        self.converter = converter
        self.pooling = pooling
        self.layout = layout
        self._preprocess_input = converter

    @property
    def preprocessing(self):
        """What happens to the pixels before the first block, in words."""
        return converter_description(self.converter)

    def fingerprint(self, k):
        return hashlib.sha256((super().fingerprint(k) + config_digest(self.converter)).encode()).hexdigest()

    def describe(self):
        table = super().describe()
        table.attrs["preprocessing"] = self.preprocessing
        table.attrs["output"] = f"{_POOLING_WORDS[self.pooling]} of the backbone's output; blocks from {self.layout}"
        return table

    def get_config(self):
        config = super().get_config()
        config.update(converter=None if self.converter is None else keras.saving.serialize_keras_object(
            self.converter), pooling=self.pooling, layout=self.layout)
        return config
