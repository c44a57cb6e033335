"""Pretrained feature extractors as Keras 3 layers with ordered, freezable blocks.

`load_extractor` turns any source into an `Extractor`: `resolve` finds and loads SavedModels (TF Hub handles,
archives, GCS, folders), `hub` wraps them as a layer, `keras_model` splits Keras models at true cuts, `kerashub`
loads KerasHub presets (`kerashub_vision`, `kerashub_text`), `blocks` holds the grouping rules, and `hub_format`
writes a Keras model in TF Hub's format.
"""

from tfxfer.extractors.archive import extract_archive
from tfxfer.extractors.base import Extractor
from tfxfer.extractors.blocks import Block
from tfxfer.extractors.hub import HubExtractor
from tfxfer.extractors.hub_format import save_hub_format
from tfxfer.extractors.keras_model import KerasExtractor, application_names, split_blocks
from tfxfer.extractors.kerashub_text import KerasHubTextExtractor
from tfxfer.extractors.kerashub_vision import KerasHubExtractor
from tfxfer.extractors.loading import load_extractor
from tfxfer.extractors.resolve import handle_cache_folder, resolve_source

__all__ = ["Block", "Extractor", "HubExtractor", "KerasExtractor", "KerasHubExtractor", "KerasHubTextExtractor",
           "application_names", "extract_archive", "handle_cache_folder", "load_extractor", "resolve_source",
           "save_hub_format", "split_blocks"]
