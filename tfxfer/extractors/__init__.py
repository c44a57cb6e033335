"""Pretrained feature extractors as Keras 3 layers with ordered, freezable blocks.

`load_extractor` turns any source into an `Extractor`: `resolve` finds and loads SavedModels (TF Hub handles,
archives, GCS, folders), `hub` wraps them as a layer, `keras_model` splits Keras models at true cuts, `kerashub`
loads KerasHub presets (`kerashub_vision`, `kerashub_text`), `blocks` holds the grouping rules, and `hub_format`
writes a Keras model in TF Hub's format.
"""

from tfxfer import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "archive": ["extract_archive"],
    "base": ["Extractor"],
    "blocks": ["Block"],
    "hub": ["HubExtractor"],
    "hub_format": ["save_hub_format"],
    "keras_model": ["KerasExtractor", "application_names", "split_blocks"],
    "kerashub_text": ["KerasHubTextExtractor"],
    "kerashub_vision": ["KerasHubExtractor"],
    "loading": ["load_extractor"],
    "resolve": ["handle_cache_folder", "resolve_source"],
})
