"""Pretrained feature extractors as Keras 3 layers with ordered, freezable blocks."""

from tfxfer.extractors.archive import extract_archive
from tfxfer.extractors.base import Extractor
from tfxfer.extractors.blocks import Block
from tfxfer.extractors.hub import HubExtractor, handle_cache_folder, resolve_source
from tfxfer.extractors.keras_model import KerasExtractor, application_names, split_blocks
from tfxfer.extractors.loading import load_extractor
