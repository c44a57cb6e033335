"""tfxfer: transfer learning for TensorFlow and Keras 3.

Pretrained extractors (TF Hub, keras.applications or KerasHub presets) split into freezable blocks, a dense head per
task, the three regimes of transfer, Keras Tuner search over freeze depth, and versioned exports that TF Serving
loads as they are.

The packages follow the flow of the work: `data` → `extractors` → `training` → `search` → `serving`, with `reports`,
the command line (`cli`) and the offline `demo` on top. Every public name is listed here, by the package it comes
from; each is imported when first used, so `import tfxfer` (and `tfxfer --help`) does not wait for TensorFlow.
"""

from tfxfer import _lazy

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "data": ["DataError", "DataSplits", "Objective", "Skipped", "Task", "decode_image", "load_images", "load_text"],
    "extractors": ["Block", "Extractor", "HubExtractor", "KerasExtractor", "KerasHubExtractor", "KerasHubTextExtractor",
                   "application_names", "extract_archive", "handle_cache_folder", "load_extractor", "save_hub_format"],
    "training": ["REGIMES", "FeatureCache", "Head", "LearningRateFinding", "OneCycle", "Phase", "TransferModel",
                 "block_scales", "build_model", "distill", "flip_averaged", "pick_precision",
                 "pick_strategy", "with_block_rates"],
    "search": ["SearchSpace", "TransferHyperModel", "TransferSearch", "probe", "search_results"],
    "serving": ["ExportedModel", "LiteRTModel", "export", "load_exported", "write_models_config"],
    "reports": ["plot_confusion", "plot_history", "plot_probe", "plot_search", "write_report"],
})
