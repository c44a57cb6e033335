"""tfxfer: transfer learning for TensorFlow and Keras 3.

Pretrained extractors (TF Hub, keras.applications or KerasHub presets) split into freezable blocks, a dense head per
task, the three regimes of transfer, Keras Tuner search over freeze depth, and versioned exports that TF Serving
loads as they are.

The packages follow the flow of the work: `data` → `extractors` → `training` → `search` → `serving`, with `reports`,
the command line (`cli`) and the offline `demo` on top. Every public name is here.
"""

from tfxfer.data import DataError, DataSplits, Objective, Skipped, Task, decode_image, load_images, load_text
from tfxfer.extractors import (
    Block,
    Extractor,
    HubExtractor,
    KerasExtractor,
    KerasHubExtractor,
    KerasHubTextExtractor,
    application_names,
    extract_archive,
    handle_cache_folder,
    load_extractor,
    save_hub_format,
)
from tfxfer.reports import plot_confusion, plot_history, plot_search, write_report
from tfxfer.search import SearchSpace, TransferHyperModel, TransferSearch, search_results
from tfxfer.serving import ExportedModel, export, load_exported, write_models_config
from tfxfer.training import REGIMES, FeatureCache, Head, Phase, TransferModel, build_model, pick_strategy

__version__ = "0.1.0"

__all__ = ["Block", "DataError", "DataSplits", "ExportedModel", "Extractor", "FeatureCache", "Head", "HubExtractor",
           "KerasExtractor", "KerasHubExtractor", "KerasHubTextExtractor", "Objective", "Phase", "REGIMES",
           "SearchSpace", "Skipped", "Task", "TransferHyperModel", "TransferModel", "TransferSearch",
           "application_names", "build_model", "decode_image", "export", "extract_archive", "handle_cache_folder",
           "load_exported", "load_extractor", "load_images", "load_text", "pick_strategy", "plot_confusion",
           "plot_history", "plot_search", "save_hub_format", "search_results", "write_models_config", "write_report"]
