"""Exports for TF Serving: versioned SavedModels with preprocessing, class names and metadata inside.

`export` writes `<root>/<name>/<version>/`, a SavedModel that TF Serving, `saved_model_cli` and any TensorFlow client
load with TensorFlow alone (no tfxfer, no Keras, no Python preprocessing):

```
saved_models/
  models.config                 TF Serving's model_config_list (write_models_config, or export(models_config=True))
  ants_bees/
    1/                          versions 1, 2, 3... (TF Serving serves the highest); never overwritten
      saved_model.pb  variables/  assets/  fingerprint.pb
      assets.extra/tfxfer.json  the metadata (TF Serving ignores assets.extra)
    .tmp-<host>-<pid>-<hex>/    an export being written; not all digits, so no reader takes it for a version
```

Signatures (the input names and output keys are stable; `signature_table` lists them with dtypes):

- `serving_default`, image models: `image_bytes` (tf.string `[batch]`: JPEG, PNG, GIF or BMP file contents; REST
  clients send `{"b64": "..."}` and TF Serving decodes the base64) → decoded, resized (bilinear by default) and
  scaled as the training pipeline does (`tfxfer.data.decode_image`), then the model.
- `serving_images`, image models: `images` (float32 `[batch, height, width, 3]`, decoded pixel values in [0, 255],
  any size) → resized and scaled the same way, then the model.
- `serving_default`, text models: `texts` (tf.string `[batch]`).
- `metadata`, no inputs: `class_names`, `task_type`, `input_kind`, `extractor_source`, `threshold`, `image_size`,
  `value_range` and `metadata_json` (the whole of `tfxfer.json`), for TensorFlow clients.

Outputs of the prediction signatures, by task type:

- multiclass and multilabel: `scores` float32 `[batch, n_classes]`, column j the score of `class_names[j]` (what the
  model outputs); `classes` string `[batch, n_classes]`, the class names ranked by score, best first;
  `ranked_scores` float32 `[batch, n_classes]`, the scores in the order of `classes`.
- multilabel, also: `labels` string `[batch, n_classes]`, the names whose score is above the threshold, best first,
  padded with `""`.
- regression: `predictions` float32 `[batch, n_targets]`, column j the target `class_names[j]`.
"""

import errno
import fcntl
import json
import os
import re
import shutil
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfxfer.data.decoding import decode_image
from tfxfer.data.task import TASK_TYPES
from tfxfer.extractors import Extractor

_OUTPUTS = {
    "multiclass": {"scores": "float32 [batch, n_classes]", "classes": "string [batch, n_classes]",
                   "ranked_scores": "float32 [batch, n_classes]"},
    "multilabel": {"scores": "float32 [batch, n_classes]", "classes": "string [batch, n_classes]",
                   "ranked_scores": "float32 [batch, n_classes]", "labels": "string [batch, n_classes]"},
    "regression": {"predictions": "float32 [batch, n_targets]"},
}
_INPUTS = {
    "image": {"serving_default": {"image_bytes": "string [batch]"},
              "serving_images": {"images": "float32 [batch, height, width, 3]"}},
    "text": {"serving_default": {"texts": "string [batch]"}},
}
_METADATA_OUTPUTS = {"class_names": "string [n_classes]", "task_type": "string []", "input_kind": "string []",
                     "extractor_source": "string []", "threshold": "float32 []", "metadata_json": "string []"}
_IMAGE_METADATA_OUTPUTS = {"image_size": "int32 [2]", "value_range": "float32 [2]"}
METADATA_FILE = Path("assets.extra") / "tfxfer.json"
MODELS_CONFIG = "models.config"
TEMPORARY_PREFIX = ".tmp-"
FORMAT_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def is_version(name):
    """Whether a folder name is a version, as TF Serving reads them: all ASCII digits."""
    return name.isascii() and name.isdigit()


def versions(model_folder):
    """The versions under `<root>/<name>`, ascending; `[]` when the folder does not exist."""
    try:
        names = os.listdir(model_folder)
    except FileNotFoundError:
        return []
    return sorted(int(name) for name in names if is_version(name))


def signature_table(input_kind, task_type):
    """The signatures of an export: `{signature key: {"inputs": {name: "dtype shape"}, "outputs": {...}}}`.

    Example:
        >>> signature_table("text", "regression")["serving_default"]
        {'inputs': {'texts': 'string [batch]'}, 'outputs': {'predictions': 'float32 [batch, n_targets]'}}
    """
    table = {key: {"inputs": inputs, "outputs": _OUTPUTS[task_type]} for key, inputs in _INPUTS[input_kind].items()}
    metadata = dict(_METADATA_OUTPUTS, **(_IMAGE_METADATA_OUTPUTS if input_kind == "image" else {}))
    table["metadata"] = {"inputs": {}, "outputs": metadata}
    return table


def export(model, name, root="saved_models", *, extractor=None, task_type=None, class_names=None, threshold=0.5,
           metrics=None, data_summary=None, interpolation=None, models_config=False):
    """Exports a trained model as the next version of `<root>/<name>`, for TF Serving and bare TensorFlow clients.

    The version is one more than the highest present. The SavedModel is written to a temporary folder beside the
    versions and renamed into place, so a version appears whole or not at all, an existing version is never
    touched, and exports running at the same time (threads or processes) get different versions. This relies on
    POSIX rename semantics (renaming a folder onto a non-empty one fails), as local Linux file systems give; `root`
    must be a local path, not `gs://`. Temporary folders left by killed exports on this machine are removed by
    later exports.

    The signatures, input names and output keys are described in this module's docstring and `signature_table`.
    Exports of BERT-style text models (a TF Hub preprocessor) use TensorFlow Text ops: clients `import
    tensorflow_text` before loading (TF Serving ships the ops).

    Args:
        model: A Keras model taking what its extractor takes (float32 images `[batch, height, width, 3]` in the
            extractor's value range, or strings `[batch]`) and returning the head's output `[batch, outputs]`; or
            a fitted `tfxfer.TransferModel` (any object with `model_`, `extractor_`, `task_` and `history_`), whose
            extractor, task type, class names and training history are used.
        name: The model's name under `root`, as TF Serving will serve it: letters, digits, `.`, `_`, `-`.
        root: The export root, created if needed.
        extractor: The `Extractor` inside `model`; by default the one among its layers.
        task_type: `"multiclass"`, `"multilabel"` or `"regression"`.
        class_names: Names of the model's outputs, in order: classes, or regression targets (default
            `target_0`, `target_1`...).
        threshold: Multilabel: scores above it name a label in the `labels` output.
        metrics: Evaluation metrics to store, e.g. `fitted.evaluate(test)` (a dict of numbers).
        data_summary: What the model was trained on: the `DataSplits` from `tfxfer.load_images`/`load_text` (its
            sizes, counts, origins and summary are stored), a dict, or a string.
        interpolation: The `tf.image.resize` method of the served preprocessing; by default the data's
            (`data_summary.interpolation`), else `"bilinear"`, as in training.
        models_config: Also write `<root>/models.config` listing every model under `root` (see
            `write_models_config`).

    Returns:
        The `pathlib.Path` of the new version folder, e.g. `saved_models/ants_bees/3`.

    Raises:
        ValueError: The name, task type, class names, threshold or model do not fit (the message says which).
        TypeError: `model` is neither a Keras model nor a fitted TransferModel.
        OSError: `<root>/<name>` cannot be written (full, read-only, not a folder): the message names it and the
            reason. Nothing of the failed export is left, and the versions already there are unchanged.

    Example:
        >>> path = tfxfer.export(fitted, "ants_bees", "saved_models")  # doctest: +SKIP
        >>> path.name  # doctest: +SKIP
        '1'
    """
    model, extractor, task_type, class_names, training = _pieces(model, extractor, task_type, class_names)
    _check_name(name)
    spec = _serving_spec(model, extractor, task_type, class_names, threshold, data_summary, interpolation)
    metadata = _metadata(spec, training, metrics, data_summary)
    model_folder = Path(root) / name
    try:
        model_folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _write_failure(error, model_folder) from None
    remove_stale_temporaries(model_folder)
    temporary = model_folder / f"{TEMPORARY_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        module, signatures = _serving_module(model, spec, json.dumps(metadata, sort_keys=True))
        tf.saved_model.save(module, str(temporary), signatures=signatures)
        (temporary / METADATA_FILE).parent.mkdir()
        (temporary / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        _sync_tree(temporary)
        version = _claim_version(temporary, model_folder)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        failure = _write_failure(error, model_folder)
        if failure is None:
            raise
        raise failure from None
    if models_config:
        write_models_config(root)
    return model_folder / str(version)


#: File-system failures that TensorFlow's file writers raise as `tf.errors`, and the errno each stands for.
_TF_WRITE_ERRORS = ((tf.errors.ResourceExhaustedError, errno.ENOSPC), (tf.errors.PermissionDeniedError, errno.EACCES),
                    (tf.errors.FailedPreconditionError, errno.ENOTDIR))


def _write_failure(error, model_folder):
    """An OSError naming `model_folder` and why it could not be written, or None when `error` is something else.

    TensorFlow's writers report a full or read-only disk as `tf.errors` whose message starts with the file's path;
    only those (and Python's OSErrors) are file-system failures.
    """
    if isinstance(error, OSError):
        number, reason = error.errno, error.strerror or str(error)
    else:
        number = next((number for kind, number in _TF_WRITE_ERRORS if isinstance(error, kind)), None)
        if number is None or str(model_folder) not in str(error):
            return None
        reason = re.sub(r"\s*\[Op:\w+\]$", "", str(error).splitlines()[0].rsplit("; ", 1)[-1])
        number = errno.EROFS if "read-only" in reason.lower() else number
    advice = {errno.ENOSPC: "free space there or pass another root=",
              errno.ENOTDIR: "part of that path is a file, not a folder; pass another root="}.get(
        number, "pass a root= you can write to")
    return OSError(number, f"Could not write an export in {model_folder} ({reason}); {advice}. The versions already "
                           "there are unchanged")


def _pieces(model, extractor, task_type, class_names):
    """The Keras model, extractor, task type, class names and training record, from either form of `model`."""
    training = None
    if not isinstance(model, keras.Model):
        if not hasattr(model, "model_"):
            fitted = "; call fit() first" if hasattr(model, "fit") else ""
            raise TypeError(f"export takes a keras.Model or a fitted TransferModel; got {type(model).__name__}"
                            f"{fitted}.")
        fitted = model
        model = fitted.model_
        extractor = extractor if extractor is not None else fitted.extractor_
        task_type = task_type or fitted.task_.task_type
        class_names = class_names if class_names is not None else list(fitted.task_.class_names)
        training = {"history": getattr(fitted, "history_", None)}
        for attribute in ("regime", "frozen_blocks_", "fine_tune_epoch_", "learning_rates_", "cached_phases_",
                          "trainable_params_", "fit_seconds_"):
            if hasattr(fitted, attribute):
                training[attribute.rstrip("_")] = getattr(fitted, attribute)
    if extractor is None:
        found = [layer for layer in model.layers if isinstance(layer, Extractor)]
        if len(found) != 1:
            raise ValueError(f"Model {model.name!r} has {len(found)} tfxfer extractors among its layers; pass the "
                             "one whose inputs it takes as extractor=.")
        extractor = found[0]
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type must be one of {TASK_TYPES}; got {task_type!r}.")
    return model, extractor, task_type, class_names, training


def _check_name(name):
    if not isinstance(name, str) or not _NAME.match(name) or is_version(name):
        raise ValueError(f"Export name {name!r} must start with a letter or digit and hold only letters, digits, '.', "
                         "'_' and '-' (and not be all digits, which would look like a version), e.g. 'ants_bees'.")


def _serving_spec(model, extractor, task_type, class_names, threshold, data_summary, interpolation):
    """What the served graph needs to know, checked against the model."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"Model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "export takes one input (what the extractor takes) and one output (the head's).")
    outputs = model.outputs[0].shape
    if len(outputs) != 2 or outputs[-1] is None:
        raise ValueError(f"Model {model.name!r} outputs shape {tuple(outputs)}; export takes [batch, outputs].")
    width = int(outputs[-1])
    if class_names is None:
        if task_type != "regression":
            raise ValueError(f"A {task_type} export needs class_names=[...] ({width} names, in output order).")
        class_names = [f"target_{index}" for index in range(width)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != width:
        raise ValueError(f"class_names has {len(class_names)} names but model {model.name!r} has {width} outputs.")
    if task_type == "multilabel" and not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 for a multilabel export; got {threshold!r}.")
    spec = {
        "task_type": task_type,
        "class_names": class_names,
        "threshold": float(threshold) if task_type == "multilabel" else None,
        "input_kind": extractor.input_kind,
        "extractor_source": extractor.source,
    }
    inputs = model.inputs[0]
    if extractor.input_kind == "text":
        if inputs.dtype != "string" or len(inputs.shape) != 1:
            raise ValueError(f"Model {model.name!r} takes {inputs.dtype} {tuple(inputs.shape)}, but its extractor "
                             f"{extractor.source!r} takes strings [batch]; build the model on keras.Input((), "
                             "dtype='string').")
        return spec
    image_size, value_range = tuple(extractor.image_size), tuple(extractor.value_range)
    if tuple(inputs.shape[1:]) != (*image_size, 3):
        raise ValueError(f"Model {model.name!r} takes images {tuple(inputs.shape[1:])} but its extractor "
                         f"{extractor.source!r} takes {(*image_size, 3)}; build the model on "
                         "keras.Input((*extractor.image_size, 3)).")
    data_geometry = (getattr(data_summary, "image_size", None), getattr(data_summary, "value_range", None))
    if data_geometry[0] is not None and (tuple(data_geometry[0]), tuple(data_geometry[1])) != (image_size,
                                                                                               value_range):
        raise ValueError(f"The data was decoded to {data_geometry[0]} in {data_geometry[1]} but the extractor takes "
                         f"{image_size} in {value_range}; the served preprocessing would differ from training.")
    interpolation = interpolation or getattr(data_summary, "interpolation", None) or "bilinear"
    spec.update(image_size=[int(side) for side in image_size], value_range=[float(v) for v in value_range],
                interpolation=interpolation)
    return spec


def _metadata(spec, training, metrics, data_summary):
    import tfxfer

    metadata = {
        "format": "tfxfer-export",
        "format_version": FORMAT_VERSION,
        **spec,
        "signatures": signature_table(spec["input_kind"], spec["task_type"]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"tfxfer": tfxfer.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "metrics": metrics,
        "training": training,
        "data_summary": _describe_data(data_summary),
    }
    return json.loads(json.dumps(metadata, default=_plain))


def _describe_data(data_summary):
    if data_summary is None or isinstance(data_summary, (str, dict)):
        return data_summary
    if hasattr(data_summary, "summary") and hasattr(data_summary, "sizes"):
        return {"summary": data_summary.summary(), "sizes": data_summary.sizes,
                "counts": getattr(data_summary, "counts", None), "origins": getattr(data_summary, "origins", None)}
    raise TypeError(f"data_summary takes a DataSplits, a dict or a string; got {type(data_summary).__name__}.")


def _plain(value):
    """JSON for NumPy and TensorFlow scalars and arrays in metrics and histories."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, tf.Tensor):
        return value.numpy().tolist()
    raise TypeError(f"{type(value).__name__} value {value!r} in the export metadata is not JSON; pass numbers, "
                    "strings, lists or dicts.")


def _resize_and_scale(pixels, spec):
    """`decode_image`'s resize and scaling, on decoded pixels `[batch, height, width, 3]` in [0, 255]."""
    images = tf.cast(tf.image.resize(pixels, spec["image_size"], method=spec["interpolation"]), tf.float32)
    low, high = spec["value_range"]
    if (low, high) != (0.0, 255.0):
        images = images * ((high - low) / 255.0) + low
    return images


def _serving_module(model, spec, metadata_json):
    """The tf.Module to save, tracking the model, and its signatures."""
    module = tf.Module()
    module.model = model
    # The raw tf.Variables too: loaders that restore through a Session (saved_model_cli run; TF Serving's C++ loader
    # works the same way) restore only variables reached as tf.Variable objects; through Keras' wrappers they stay
    # uninitialised ("Could not find variable dense/bias").
    module.model_variables = [variable.value for variable in model.variables]
    class_names = spec["class_names"]
    task_type = spec["task_type"]

    def outputs(inputs):
        scores = model(inputs, training=False)
        if task_type == "regression":
            return {"predictions": scores}
        order = tf.argsort(scores, axis=-1, direction="DESCENDING", stable=True)
        ranked_scores = tf.gather(scores, order, batch_dims=1)
        classes = tf.gather(tf.constant(class_names), order)
        result = {"scores": scores, "classes": classes, "ranked_scores": ranked_scores}
        if task_type == "multilabel":
            result["labels"] = tf.where(ranked_scores > spec["threshold"], classes, "")
        return result

    constants = {"class_names": tf.constant(class_names), "task_type": tf.constant(task_type),
                 "input_kind": tf.constant(spec["input_kind"]),
                 "extractor_source": tf.constant(spec["extractor_source"]),
                 "threshold": tf.constant(spec["threshold"] or 0.0, tf.float32),
                 "metadata_json": tf.constant(metadata_json)}
    if spec["input_kind"] == "text":
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
        def serve_texts(texts):
            return outputs(texts)

        signatures = {"serving_default": serve_texts}
    else:
        constants.update(image_size=tf.constant(spec["image_size"], tf.int32),
                         value_range=tf.constant(spec["value_range"], tf.float32))
        height, width = spec["image_size"]

        def decode(contents):
            return decode_image(contents, (height, width), spec["value_range"], spec["interpolation"])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve_image_bytes(image_bytes):
            images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32))
            return outputs(images)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        def serve_images(images):
            return outputs(_resize_and_scale(images, spec))

        signatures = {"serving_default": serve_image_bytes, "serving_images": serve_images}

    @tf.function(input_signature=[])
    def metadata():
        return dict(constants)

    signatures["metadata"] = metadata
    return module, signatures


def _sync_tree(folder):
    """Flushes every file and folder under `folder` to disk, so a renamed version survives a power cut whole."""
    for directory, _, files in os.walk(folder, topdown=False):
        for name in files:
            with open(os.path.join(directory, name), "rb") as handle:
                os.fsync(handle.fileno())
        _sync_directory(directory)


def _sync_directory(directory):
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _claim_version(temporary, model_folder):
    """Renames `temporary` to the next free version and returns it.

    `os.rename` of a folder onto an existing non-empty folder fails (ENOTEMPTY or EEXIST), and every version folder
    holds a SavedModel, so two writers that pick the same number cannot both win: the loser tries the next one.
    """
    while True:
        version = max(versions(model_folder), default=0) + 1
        try:
            os.rename(temporary, model_folder / str(version))
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                continue
            raise
        _sync_directory(model_folder)
        return version


def _host():
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's process: alive.
        pass
    return True


def remove_stale_temporaries(model_folder):
    """Removes the temporary folders that exports killed on this machine left under `model_folder`.

    A temporary folder is named `.tmp-<host>-<pid>-<hex>`; it is removed only when `<host>` is this machine and no
    process `<pid>` runs here, so an export in progress (here or on another machine sharing the folder) is never
    disturbed.

    Args:
        model_folder: `<root>/<name>`.

    Returns:
        The paths removed.
    """
    removed = []
    host = _host()
    for entry in Path(model_folder).glob(f"{TEMPORARY_PREFIX}*"):
        parts = entry.name[len(TEMPORARY_PREFIX):].rsplit("-", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def write_models_config(root="saved_models", base_path=None):
    """Writes `<root>/models.config`, TF Serving's `model_config_list` of every model exported under `root`.

    The file is regenerated from the folders (every `<root>/<name>` holding at least one version), so edits by hand
    are replaced; it is written to a temporary file and renamed, under a lock, so a reader or a concurrent writer
    never sees it half written. Serve with `tensorflow_model_server --model_config_file=<root>/models.config`.

    Args:
        root: The export root.
        base_path: Where TF Serving sees `root`, when it differs from here, e.g. `"/models"` for a container started
            with `-v $PWD/saved_models:/models`; by default the absolute path of `root`.

    Returns:
        The `pathlib.Path` of the file.

    Raises:
        FileNotFoundError: `root` holds no exported model.

    Example:
        >>> write_models_config("saved_models", base_path="/models").read_text()  # doctest: +SKIP
        'model_config_list {\\n  config {\\n    name: "ants_bees"\\n    base_path: "/models/ants_bees"\\n ...'
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Export root {root} does not exist; export a model into it first.")
    path = root / MODELS_CONFIG
    with open(root / f".{MODELS_CONFIG}.lock", "w") as lock:
        # Listing and writing under one lock: a writer that listed before another export's rename never writes last.
        fcntl.flock(lock, fcntl.LOCK_EX)
        names = sorted(entry.name for entry in root.iterdir()
                       if entry.is_dir() and _NAME.match(entry.name) and versions(entry))
        if not names:
            raise FileNotFoundError(f"{root} holds no exported model (<name>/<version>/ folders); export one first.")
        lines = ["model_config_list {"]
        for name in names:
            base = f"{base_path.rstrip('/')}/{name}" if base_path else str((root / name).resolve())
            lines += ["  config {", f"    name: {_quote(name)}", f"    base_path: {_quote(base)}",
                      '    model_platform: "tensorflow"', "  }"]
        lines.append("}")
        temporary = root / f"{TEMPORARY_PREFIX}{MODELS_CONFIG}-{os.getpid()}-{uuid.uuid4().hex}"
        temporary.write_text("\n".join(lines) + "\n")
        os.replace(temporary, path)
    return path


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
