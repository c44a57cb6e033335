"""Serving: `export` writes versioned SavedModels that TF Serving loads as they are (`savedmodel`, with the
signatures of `signatures` and the crash-safe versions of `versioning`); `load_exported` runs one as a client does."""

from tfxfer.serving.client import ExportedModel, load_exported
from tfxfer.serving.savedmodel import export
from tfxfer.serving.signatures import signature_table
from tfxfer.serving.versioning import versions, write_models_config

__all__ = ["ExportedModel", "export", "load_exported", "signature_table", "versions", "write_models_config"]
