"""Serving: `export` writes versioned SavedModels that TF Serving loads as they are (`savedmodel`, with the
signatures of `signatures` and the crash-safe versions of `versioning`); `load_exported` runs one as a client does.
`export(..., format="litert")` writes verified, optionally quantized `.tflite` files instead (`litert`), which
`load_exported` runs in the LiteRT interpreter (`litert_client`)."""

from tfxfer import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "client": ["ExportedModel", "load_exported"],
    "litert": ["export_litert"],
    "litert_client": ["LiteRTModel", "LiteRTRunner"],
    "savedmodel": ["export"],
    "signatures": ["signature_table"],
    "versioning": ["versions", "write_models_config"],
})
