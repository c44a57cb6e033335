"""tfxfer: transfer learning for TensorFlow and Keras 3.

Pretrained extractors (TF Hub or keras.applications) split into freezable blocks, a dense head per task, the three
regimes of transfer, Keras Tuner search over freeze depth, and versioned exports that TF Serving loads as they are.

The packages follow the flow of the work: `data` → `extractors` → `training` → `search` → `serving`, with `reports`,
the command line (`cli`) and the offline `demo` on top. Every public name is listed here, by the package it comes
from; each is imported when first used, so `import tfxfer` (and `tfxfer --help`) does not wait for TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "tfxfer.data": ["DataError", "DataSplits", "Objective", "Skipped", "Task", "decode_image", "load_images",
                    "load_text"],
    "tfxfer.extractors": ["Block", "Extractor", "HubExtractor", "KerasExtractor", "application_names",
                          "extract_archive", "handle_cache_folder", "load_extractor", "save_hub_format"],
    "tfxfer.training": ["REGIMES", "FeatureCache", "Head", "Phase", "TransferModel", "build_model", "pick_strategy"],
    "tfxfer.search": ["SearchSpace", "TransferHyperModel", "TransferSearch", "search_results"],
    "tfxfer.serving": ["ExportedModel", "export", "load_exported", "write_models_config"],
    "tfxfer.reports": ["plot_confusion", "plot_history", "plot_search", "write_report"],
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module 'tfxfer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
