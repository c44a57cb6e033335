"""tfxfer: transfer learning for TensorFlow and Keras 3.

Pretrained extractors (TF Hub or keras.applications) split into freezable blocks, a dense head per task, the three
regimes of transfer, Keras Tuner search over freeze depth, and versioned exports that TF Serving loads as they are.
"""

from tfxfer.extractors import (
    Block,
    Extractor,
    HubExtractor,
    KerasExtractor,
    application_names,
    extract_archive,
    handle_cache_folder,
    load_extractor,
)
from tfxfer.cache import FeatureCache
from tfxfer.data import DataError, DataSplits, Skipped, Task, decode_image, load_images, load_text
from tfxfer.export import export, write_models_config
from tfxfer.heads import Head
from tfxfer.hub_format import save_hub_format
from tfxfer.regimes import REGIMES, TransferModel, build_model
from tfxfer.reports import plot_confusion, plot_history, plot_search, write_report
from tfxfer.serving import ExportedModel, load_exported
from tfxfer.tuning import SearchSpace, TransferHyperModel, TransferSearch, pick_strategy, search_results

__version__ = "0.1.0"
