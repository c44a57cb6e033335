"""What an export holds, read without TensorFlow (the command line's refusals come before it loads): its format,
and what it takes."""

import json
import warnings
from pathlib import Path

from tfxfer.serving.versioning import (FORMAT_FILES, LITERT_FILES, METADATA_FILE, SAVEDMODEL_FILES, resolve_export,
                                       versions)


def is_litert_export(path):
    """Whether `path` is a LiteRT export: a `.tflite` file, a version folder holding one, or a folder of versions
    whose highest version with a model file holds one (a folder named `x.tflite` may hold SavedModels)."""
    path = Path(path)
    if (path.suffix == ".tflite" and path.is_file()) or (path / FORMAT_FILES["litert"]).is_file():
        return True
    # The highest version holding either format's model file: a newer one half copied, or empty, says nothing.
    held = [version for version in versions(path)
            if any((path / str(version) / name).is_file() for name in FORMAT_FILES.values())]
    return bool(held) and (path / str(held[-1]) / FORMAT_FILES["litert"]).is_file()


def check_not_litert(path, argument):
    """Refuses a LiteRT export given as `argument` where a SavedModel export is needed (the teacher of `distill`)."""
    if is_litert_export(path):
        raise ValueError(f"{argument}={str(path)!r} is a LiteRT export; the {argument} runs as a SavedModel: pass the "
                         "SavedModel export of the same model (export it without format='litert').")


def recorded_input_kind(path):
    """What the export at `path` takes ("image" or "text"), read from its metadata without TensorFlow; None where
    `path` is not a whole tfxfer export (loading it says why)."""
    files = LITERT_FILES if is_litert_export(path) else SAVEDMODEL_FILES
    try:
        with warnings.catch_warnings():  # versions passed over: said when the export loads
            warnings.simplefilter("ignore")
            metadata = json.loads((resolve_export(path, files) / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metadata.get("input_kind") if isinstance(metadata, dict) else None  # damaged: loading says so
