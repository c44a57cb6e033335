"""Finding and loading SavedModels: TF Hub handles through `tensorflow_hub`'s resolver and cache, archives, GCS
paths and folders, with the TensorFlow Text ops that BERT preprocessors need registered first.

TF Hub keeps `resolver.py` apart from `keras_layer.py` in the same way: this module knows where a model comes from,
`tfxfer.extractors.hub` what to do with it once loaded.
"""

import hashlib
import os
import re

import tensorflow as tf
import tensorflow_hub as hub

from tfxfer.extractors.archive import extract_archive, is_archive
from tfxfer.extractors.sources import is_handle

_SOURCE_KINDS = (
    "a TF Hub handle (https://tfhub.dev/... or https://www.kaggle.com/models/...), a SavedModel folder, a .tar.gz of "
    "one, a gs:// path, a keras.applications name such as 'MobileNetV2', or a KerasHub preset (a name such as "
    "'resnet_50_imagenet', a kaggle:// or hf:// handle, or a preset folder; these need pip install "
    "'tfxfer[kerashub]')"
)


def handle_cache_folder(handle):
    """The folder where tensorflow_hub caches `handle`: `$TFHUB_CACHE_DIR/<sha1 of the handle>`.

    Copying a model's SavedModel folder there makes the handle load with no network, which is how a machine
    without internet access is prepared.

    Example:
        >>> import os
        >>> os.path.basename(handle_cache_folder("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"))
        '...'
    """
    cache_dir = hub.resolver.tfhub_cache_dir(use_temp=True)
    return os.path.join(cache_dir, hashlib.sha1(str(handle).encode("utf8")).hexdigest())


def resolve_source(source):
    """Turns a handle, archive, GCS path or folder into the path of a SavedModel folder.

    Handles and `gs://` archives go through `tensorflow_hub.resolve`, so TF Hub's cache (`TFHUB_CACHE_DIR`) and
    download logic are the real ones; local archives are extracted safely (see `extract_archive`).

    Args:
        source: The extractor's source.

    Returns:
        The path of a folder holding `saved_model.pb`.

    Raises:
        OSError: A handle is neither cached nor downloadable.
        FileNotFoundError: A path does not exist.
        ValueError: A folder is not a SavedModel.
    """
    source = os.path.expanduser(os.fspath(source))
    if is_handle(source):
        try:
            path = hub.resolve(source)
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise OSError(
                f"Could not load TF Hub handle {source!r}: it is not in the cache and downloading failed ({error}). "
                f"Without network access, copy the model's SavedModel folder to {handle_cache_folder(source)} "
                "(TFHUB_CACHE_DIR/<sha1 of the handle>), or download it elsewhere and pass its local folder or "
                ".tar.gz path instead of the handle."
            ) from None
    elif source.startswith("gs://"):
        if not tf.io.gfile.exists(source):
            raise FileNotFoundError(f"Extractor source {source!r} does not exist (or is not readable from here).")
        path = hub.resolve(source)
    elif is_archive(source) and os.path.isfile(source):
        path = extract_archive(source)
    else:
        path = source
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Extractor source {source!r} does not exist. Pass {_SOURCE_KINDS}.")
    if tf.io.gfile.exists(tf.io.gfile.join(path, "assets.extra", "tfxfer.json")):
        raise ValueError(
            f"{source!r} is a tfxfer export (a trained model with its head and preprocessing), not a feature "
            "extractor: run it with tfxfer.load_exported (tfxfer predict), or load the extractor it was trained from "
            "(its assets.extra/tfxfer.json names it under extractor_source)."
        )
    if not tf.io.gfile.isdir(path):
        name = os.path.basename(path)
        advice = _FILE_ADVICE.get(name if name == "saved_model.pb" else os.path.splitext(name)[1].lower(),
                                  "pass the folder that holds saved_model.pb and variables/ (or a .tar.gz of it)")
        raise ValueError(f"Extractor source {source!r} is a file, not a SavedModel folder: {advice}.")
    if not tf.io.gfile.exists(tf.io.gfile.join(path, "saved_model.pb")):
        raise ValueError(
            f"Extractor source {source!r} is not a SavedModel folder: it has no saved_model.pb. Pass the folder that "
            "holds saved_model.pb and variables/ (or a .tar.gz of it)."
        )
    if not tf.io.gfile.exists(tf.io.gfile.join(path, "variables", "variables.index")):
        raise ValueError(f"Extractor source {source!r} holds saved_model.pb but no variables/variables.index: the "
                         "SavedModel was copied in part. Copy its whole folder (saved_model.pb and variables/).")
    return path


#: What to pass instead of a file that is not a SavedModel folder or an archive of one, by its name or suffix.
_FILE_ADVICE = {
    "saved_model.pb": "pass the folder that holds it (with variables/)",
    ".keras": "a Keras model file, which is not read as a source: in Python, load it with keras.saving.load_model "
              "and pass the model",
    ".h5": "Keras weights: pass the keras.applications name they belong to, with weights= this file",
    ".zip": "tfxfer reads .tar.gz, .tgz and .tar archives (TF Hub's); unzip it and pass the folder",
}


def keras_hub_module():
    """Imports `keras_hub` (KerasHub backbones and presets), or says how to install it."""
    try:
        import keras_hub
    except ImportError:
        raise ImportError("KerasHub backbones and presets need the keras-hub package: pip install "
                          "'tfxfer[kerashub]'") from None
    return keras_hub


def register_text_ops():
    """BERT preprocessors call TF Text ops, which must be registered before a model using them is traced."""
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass  # load_saved_model says what to install if the SavedModel needs them.


def load_saved_model(source):
    """Resolves `source` and loads it with `tensorflow_hub.load`, registering TF Text ops when the model needs them.

    Raises:
        ImportError: The model uses TensorFlow Text ops and `tensorflow-text` is not installed (see
            `load_with_text_ops`).
    """
    return load_with_text_ops(hub.load, resolve_source(source), source)


def load_with_text_ops(load, path, source):
    """`load(path)`, registering the TensorFlow Text ops first when the SavedModel at `path` needs them.

    Raises:
        ImportError: The model uses TensorFlow Text ops and `tensorflow-text` is not installed; the message names
            `source`, the op, and the package to install.
    """
    try:
        return load(path)
    except (tf.errors.NotFoundError, RuntimeError) as error:
        missing = re.search(r"Op type not registered '([\w>]+)'", str(error))
        if missing is None:
            raise
        try:
            import tensorflow_text  # noqa: F401  (registers the ops BERT preprocessors use)
        except ImportError:
            raise ImportError(
                f"{source!r} uses the TensorFlow Text op {missing.group(1)}, and tensorflow-text is not installed. "
                "Install it with pip install 'tfxfer[text]' (tensorflow-text matching your TensorFlow version)."
            ) from None
        return load(path)
