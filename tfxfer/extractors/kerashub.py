"""KerasHub backbones and presets as extractors: the model zoo of Keras 3.

KerasHub (`pip install 'tfxfer[kerashub]'`) publishes backbones with their preprocessing as *presets*: a folder
holding `config.json` (a `keras_hub>` class and its arguments), `model.weights.h5`, and the preprocessing
(`image_converter.json`, or `tokenizer.json`, `preprocessor.json` and a vocabulary). A built-in name such as
`"resnet_50_imagenet"`, a `kaggle://{org}/{model}/keras/{variant}[/{version}]` or an `hf://{org}/{model}` handle
names one to download; KerasHub caches downloads (`KAGGLEHUB_CACHE`, `HF_HOME`), so a second load is offline.
A local folder loads through the very same `from_preset` calls as a download, once it is fetched.

Vision backbones become a `tfxfer.extractors.kerashub_vision.KerasHubExtractor` (pixels in `[0, 255]`, the preset's
image converter inside, the pooling of its image classifier on the output), text backbones a
`tfxfer.extractors.kerashub_text.KerasHubTextExtractor` (strings in, the preset's tokenizer and packer inside).

This module imports `keras_hub` only when a KerasHub source is loaded, so `import tfxfer` works without it.
"""

import json
import os
import sys

from tfxfer.extractors.kerashub_text import KerasHubTextExtractor, text_graph
from tfxfer.extractors.kerashub_vision import KerasHubExtractor, classifier_pooling, pooled, vision_graph
from tfxfer.extractors.keras_model import APPLICATIONS_VALUE_RANGE
from tfxfer.extractors.resolve import keras_hub_module

#: Handle schemes that KerasHub downloads from (Kaggle Models, Hugging Face, ModelScope).
HANDLE_SCHEMES = ("kaggle://", "hf://", "modelscope://")


def is_preset_folder(path):
    """Whether `path` is a local KerasHub preset folder: its `config.json` names a `keras_hub>` class.

    Example:
        >>> is_preset_folder(hub_folder), is_preset_folder(tmp_dir + "/nothing_here")
        (False, False)
    """
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and str(config.get("registered_name", "")).startswith("keras_hub>")


def is_kerashub_source(source):
    """Whether `source` is a KerasHub Backbone or Task object, a preset handle or a local preset folder.

    Built-in preset names are recognised by `is_builtin_preset`, which needs `keras_hub` itself.

    Example:
        >>> is_kerashub_source("kaggle://keras/resnetv1/keras/resnet_50_imagenet/3"), is_kerashub_source(hub_folder)
        (True, False)
    """
    hub = sys.modules.get("keras_hub")
    if hub is not None and isinstance(source, (hub.models.Backbone, hub.models.Task)):
        return True
    if not isinstance(source, (str, os.PathLike)):
        return False
    source = os.fspath(source)
    return source.startswith(HANDLE_SCHEMES) or (os.path.isdir(source) and is_preset_folder(source))


def is_builtin_preset(name):
    """Whether `name` is one of KerasHub's built-in preset names; False where keras-hub is not installed."""
    try:
        return name in keras_hub_module().models.Backbone.presets
    except ImportError:
        return False


def from_preset(cls, source, **kwargs):
    """`cls.from_preset(source)`, with errors that name the preset and what to do."""
    remote = not os.path.isdir(source)
    try:
        return cls.from_preset(source, **kwargs)
    except (OSError, ValueError) as error:
        if not remote:
            raise ValueError(f"Cannot load {cls.__name__} from the KerasHub preset folder {source!r}: "
                             f"{str(error).splitlines()[0]}") from None
        if isinstance(error, ValueError) and "no config.json" not in str(error):
            raise ValueError(f"KerasHub preset handle {source!r} is malformed: {str(error).splitlines()[0]}") from None
        handle = keras_hub_module().models.Backbone.presets.get(source, {}).get("kaggle_handle")
        raise OSError(
            f"Could not fetch the KerasHub preset {source!r}{f' ({handle})' if handle else ''}: "
            f"{str(error).splitlines()[0][:300].rstrip('.')}. "
            "Without network access, download the preset folder where there is network (kagglehub.model_download "
            "for kaggle:// handles, huggingface_hub.snapshot_download for hf://), copy it here and pass the local "
            "folder instead of the handle."
        ) from None


def _image_converter(hub, preprocessor, source, label, task):
    """The ImageConverter to use: the one given (or its preset's), the task's, the preset's, or None."""
    if isinstance(preprocessor, (str, os.PathLike)):
        return from_preset(hub.layers.ImageConverter, os.fspath(preprocessor))
    if preprocessor is None and task is not None:
        preprocessor = task.preprocessor
    if preprocessor is not None:
        converter = getattr(preprocessor, "image_converter", preprocessor)
        if not isinstance(converter, hub.layers.ImageConverter):
            raise ValueError(f"preprocessor= for the KerasHub image backbone {label!r} takes an ImageConverter, an "
                             f"image preprocessor or a preset; got {type(preprocessor).__name__}.")
        return converter
    if not isinstance(source, str):
        return None
    if os.path.isdir(source) and not os.path.isfile(os.path.join(source, "image_converter.json")):
        raise ValueError(f"The KerasHub preset {label!r} has no image converter (image_converter.json), so tfxfer "
                         "does not know how its backbone wants pixels scaled. Save the converter into the folder "
                         "(converter.save_to_preset(folder)) or pass preprocessor=ImageConverter(...).")
    return from_preset(hub.layers.ImageConverter, source)


def _text_preprocessor(hub, preprocessor, source, label, task, sequence_length):
    """The TextClassifierPreprocessor to use: the one given (or its preset's), the task's, or the preset's."""
    if isinstance(preprocessor, (str, os.PathLike)):
        source_of_preprocessor = os.fspath(preprocessor)
    elif preprocessor is not None or task is not None:
        preprocessor = preprocessor if preprocessor is not None else task.preprocessor
        if not isinstance(preprocessor, hub.models.Preprocessor) or not hasattr(preprocessor, "tokenizer"):
            raise ValueError(f"preprocessor= for the KerasHub text backbone {label!r} takes a text preprocessor "
                             "(such as BertTextClassifierPreprocessor) or a preset; got "
                             f"{type(preprocessor).__name__}.")
        if sequence_length:
            preprocessor.sequence_length = int(sequence_length)
        return preprocessor
    elif isinstance(source, str):
        source_of_preprocessor = source
    else:
        raise ValueError(f"The KerasHub text backbone {label!r} needs its tokenizer and packer: pass "
                         "preprocessor=TextClassifierPreprocessor.from_preset(...) (or the preset's name or folder).")
    options = {"sequence_length": int(sequence_length)} if sequence_length else {}
    return from_preset(hub.models.TextClassifierPreprocessor, source_of_preprocessor, **options)


def load_kerashub(source, *, weights="imagenet", preprocessor=None, pooling=None, sequence_length=None,
                  image_size=None, value_range=None, granularity="stage", block_pattern=None, train_batchnorm=False,
                  name=None):
    """Loads a KerasHub backbone with its preset's preprocessing as an extractor (see `tfxfer.load_extractor`).

    Args:
        source: A built-in preset name, a `kaggle://`/`hf://` handle, a local preset folder, or a
            `keras_hub.models.Backbone` or task (ImageClassifier, TextClassifier) object.
        weights: `"imagenet"` (any value but None: the preset's weights) or None (random weights of its shape).
        preprocessor: An ImageConverter or text preprocessor (or a preset to load it from) instead of the source's.
        pooling: For vision: `"avg"`, `"max"` (feature maps), `"token"`, `"gap"` (token sequences) or `"none"`;
            by default the one the preset's image classifier uses.
        sequence_length: For text: the packer's length, instead of the preset's (often 512); a preprocessor object
            given gets it set.
        image_size: For vision: `(height, width)`, instead of the converter's.
        value_range: For vision, only `(0, 255)`: KerasHub converters take pixels in that range.
        granularity, block_pattern, train_batchnorm, name: See `tfxfer.load_extractor`.

    Returns:
        A `KerasHubExtractor` (vision) or a `KerasHubTextExtractor` (text).

    Raises:
        ImportError: keras-hub is not installed.
        OSError: A handle or built-in name cannot be fetched (the message says how to load it from a folder).
        ValueError: The preset, its preprocessing or an argument does not fit (the message says which).

    Example:
        >>> load_kerashub("kaggle://keras/resnetv1/keras/resnet_50_imagenet/3")  # doctest: +SKIP
    """
    hub = keras_hub_module()
    task = source if isinstance(source, hub.models.Task) else None
    if task is not None:
        backbone, label = task.backbone, f"a {type(task).__name__} object"
    elif isinstance(source, hub.models.Backbone):
        backbone, label = source, f"a {type(source).__name__} object"
    else:
        source = label = os.fspath(source)
        backbone = from_preset(hub.models.Backbone, source, load_weights=weights is not None)
    preset = source if isinstance(source, str) and os.path.isdir(source) else None
    common = dict(granularity=granularity, block_pattern=block_pattern, train_batchnorm=train_batchnorm, name=name)
    if isinstance(backbone.input, dict) and "token_ids" in backbone.input:
        if pooling not in (None, "default"):
            raise ValueError(f"pooling= applies to image backbones; the text backbone {label!r} gives the output "
                             "its text classifier reads.")
        text = _text_preprocessor(hub, preprocessor, source, label, task, sequence_length)
        model, output = text_graph(backbone)
        return KerasHubTextExtractor(model, text, source=label, output=output, **common)
    if sequence_length is not None:
        raise ValueError(f"sequence_length= applies to text backbones; {label!r} is an image backbone.")
    if value_range is not None and tuple(float(v) for v in value_range) != APPLICATIONS_VALUE_RANGE:
        raise ValueError(f"KerasHub image converters take pixels in [0, 255]; got value_range={value_range!r} for "
                         f"{label!r}. Load the images with value_range=(0, 255) (load_images(..., extractor=...)).")
    converter = _image_converter(hub, preprocessor, source, label, task)
    graph, layout = vision_graph(backbone)
    fixed = tuple(graph.inputs[0].shape[1:3])
    size = tuple(image_size or (converter.image_size if converter is not None else None) or fixed)
    if None in size:
        size = (224, 224)
    if None not in fixed and size != fixed:
        raise ValueError(f"{label!r} takes images of {fixed}; it cannot take image_size={size}.")
    if converter is not None and converter.image_size is not None and tuple(converter.image_size) != size:
        converter = type(converter).from_config({**converter.get_config(), "image_size": size})  # theirs unchanged
    if pooling in (None, "default"):
        pooling = getattr(task, "pooling", None) or classifier_pooling(backbone, preset)
    return KerasHubExtractor(pooled(graph, pooling, label), converter, pooling=pooling, layout=layout,
                             source=label, image_size=size,
                             value_range=APPLICATIONS_VALUE_RANGE if converter is not None else (0.0, 1.0), **common)
