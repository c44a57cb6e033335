"""One entry point that turns any extractor source into an `Extractor`."""

import os

import keras

from tfxfer.extractors.hub import HubExtractor
from tfxfer.extractors.keras_model import KerasExtractor, build_application
from tfxfer.extractors.kerashub import is_builtin_preset, is_kerashub_source, load_kerashub
from tfxfer.extractors.sources import is_application_name, looks_like_path

#: Arguments that KerasHub sources take beside load_extractor's own.
_KERASHUB_OPTIONS = ("pooling", "sequence_length")


def load_extractor(source, *, weights="imagenet", preprocessor=None, output_key=None, image_size=None,
                   value_range=None, granularity="stage", block_pattern=None, train_batchnorm=False, name=None,
                   **application_kwargs):
    """Loads a pretrained feature extractor as a Keras 3 layer with ordered, freezable blocks.

    Args:
        source: One of
            - a TF Hub handle, `https://tfhub.dev/...` or `https://www.kaggle.com/models/...`, resolved and cached by
              `tensorflow_hub` (`TFHUB_CACHE_DIR`);
            - a local SavedModel folder (TF Hub's Reusable SavedModel format, or one written by `model.export`);
            - a `.tar.gz`/`.tgz` of such a folder (TF Hub's compressed format), extracted safely;
            - a `gs://` path;
            - a `keras.applications` name such as `"MobileNetV2"`, `"EfficientNetB0"`, `"ResNet50"`;
            - a KerasHub preset (`pip install 'tfxfer[kerashub]'`): a built-in name such as `"resnet_50_imagenet"`
              or `"bert_tiny_en_uncased"`, a `kaggle://` or `hf://` handle, or a local preset folder; or a
              `keras_hub` Backbone or task object (see `tfxfer.extractors.kerashub`);
            - a functional `keras.Model` of your own.
        weights: For applications: `"imagenet"`, a local weights file, or None. For KerasHub: None for random
            weights of the preset's shape.
        preprocessor: For BERT-style TF Hub encoders, the matching preprocessing SavedModel. For KerasHub, an
            ImageConverter or text preprocessor (or a preset) instead of the source's own.
        output_key: For SavedModels that return a dict, the output to use (default `pooled_output`/`default`).
        image_size: `(height, width)` the extractor takes (one number for a square); by default its own.
        value_range: Pixel range the extractor takes; by default its own (`[0, 1]` for TF Hub, `[0, 255]` for
            applications, which run their `preprocess_input` inside).
        granularity: For Keras models, `"stage"` (named stages) or `"cut"` (every true cut) blocks.
        block_pattern: A regular expression whose first group is a name's block key, to override the grouping.
        train_batchnorm: Let BatchNorm run in training mode when no block is frozen (default: never).
        name: The Keras layer name.
        **application_kwargs: Further arguments of a keras.applications constructor, e.g. `alpha=0.35`. KerasHub
            sources take `pooling=` (vision: `"avg"`, `"max"`, `"token"`, `"gap"`, `"none"`; by default their
            image classifier's) and `sequence_length=` (text; by default the preset's, often 512). TF Hub
            BERT-style encoders take `cache_sequences=True` to cache between transformer layers (see `HubExtractor`).

    Returns:
        An `Extractor`: `HubExtractor`, `KerasExtractor`, `KerasHubExtractor` or `KerasHubTextExtractor`.

    Raises:
        FileNotFoundError, ValueError, OSError: with the source named and what to do.

    Example:
        >>> extractor = tfxfer.load_extractor("MobileNetV2", weights=None)
        >>> extractor.freeze(5).frozen_blocks
        5
    """
    hub_options = {k: application_kwargs.pop(k) for k in ("cache_sequences",) if k in application_kwargs}
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)  # one side: a square, as the command line's image_size=96 means

    def no_application_arguments(kind):  # they were dropped without a word (a tester's find: alpha=, bogus=)
        given = sorted(application_kwargs) + ["weights"] * (weights != "imagenet")
        if given:
            raise ValueError(f"load_extractor got {', '.join(f'{name}=' for name in given)} for {source!r}, {kind}, "
                             "which brings its own weights and size: they are keras.applications arguments; leave "
                             f"{'it' if len(given) == 1 else 'them'} out.")

    def not_for(kind, **given):  # each was dropped without a word (a tester's find)
        named = [f"{option}=" for option, (value, default) in given.items() if value != default]
        if named:
            one = len(named) == 1
            raise ValueError(f"{' and '.join(named)} do{'es' if one else ''} nothing for {source!r}, {kind}: leave "
                             f"{'it' if one else 'them'} out.")

    def not_hub(kind):
        if any(hub_options.values()):  # cache_sequences=False asks for nothing
            raise ValueError(f"cache_sequences= is for TF Hub BERT-style encoders (a SavedModel with preprocessor=); "
                             f"{source!r} is {kind}: leave cache_sequences out.")

    def kerashub():
        not_hub("a KerasHub preset (its text backbones cache between layers without asking)")
        not_for("a KerasHub preset", output_key=(output_key, None))
        unknown = sorted(set(application_kwargs) - set(_KERASHUB_OPTIONS))
        if unknown:
            raise ValueError(f"load_extractor got {unknown} for the KerasHub source {source!r}, which takes "
                             f"{list(_KERASHUB_OPTIONS)} beside load_extractor's own arguments.")
        return load_kerashub(source, weights=weights, preprocessor=preprocessor, image_size=image_size,
                             value_range=value_range, granularity=granularity, block_pattern=block_pattern,
                             train_batchnorm=train_batchnorm, name=name, **application_kwargs)

    if is_kerashub_source(source):
        return kerashub()
    if isinstance(source, keras.Model):
        not_hub("a Keras model")
        no_application_arguments("a Keras model")
        not_for("a Keras model", preprocessor=(preprocessor, None), output_key=(output_key, None))
        return KerasExtractor(source, image_size=image_size, value_range=value_range, granularity=granularity,
                              block_pattern=block_pattern, train_batchnorm=train_batchnorm, name=name)
    source = os.fspath(source)
    if is_application_name(source):
        not_hub("a keras.applications name")
        not_for("a keras.applications name", preprocessor=(preprocessor, None), output_key=(output_key, None))
        model = build_application(source, weights=weights, image_size=image_size, **application_kwargs)
        return KerasExtractor(model, application=source, value_range=value_range, granularity=granularity,
                              block_pattern=block_pattern, train_batchnorm=train_batchnorm, name=name)
    if not looks_like_path(source) and is_builtin_preset(source):
        return kerashub()
    no_application_arguments("a TF Hub model or SavedModel")
    not_for("a TF Hub model or SavedModel, whose blocks its variable scopes give", granularity=(granularity, "stage"))
    return HubExtractor(source, preprocessor=preprocessor, output_key=output_key, image_size=image_size,
                        value_range=value_range, block_pattern=block_pattern, train_batchnorm=train_batchnorm,
                        name=name, **hub_options)
