"""Versions of an export, written as TF Serving reads them: integer folders that appear whole or not at all, are
never overwritten, and go to different writers running at once; and TF Serving's `models.config`.

```
saved_models/
  models.config                 TF Serving's model_config_list (write_models_config)
  ants_bees/
    1/  2/  3/                  versions (TF Serving serves the highest); never overwritten
    .tmp-<host>-<pid>-<hex>/    a version being written; not all digits, so no reader takes it for a version
```
"""

import errno
import fcntl
import os
import re
import shutil
import socket
import uuid
import warnings
from pathlib import Path

#: Where each version of an export keeps tfxfer's metadata (task, classes, data, metrics) as JSON.
METADATA_FILE = Path("assets.extra") / "tfxfer.json"
MODELS_CONFIG = "models.config"
TEMPORARY_PREFIX = ".tmp-"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def is_version(name):
    """Whether a folder name is a version, as TF Serving reads them: all ASCII digits."""
    return name.isascii() and name.isdigit()


def versions(model_folder):
    """The versions under `<root>/<name>`, ascending; `[]` when the folder does not exist (or is a file)."""
    try:
        names = os.listdir(model_folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(name) for name in names if is_version(name))


#: What a whole version of a SavedModel export, and of a LiteRT export, holds; the first names the format.
SAVEDMODEL_FILES = ("saved_model.pb", "variables", str(METADATA_FILE))
LITERT_FILES = ("model.tflite", "labels.txt", str(METADATA_FILE))


def check_exists(path):
    """Raises FileNotFoundError, saying what to pass, where the export `path` names nothing (read without TensorFlow,
    so that the command line says it at once)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"the export {path} does not exist: pass <root>/<name>, one of its version folders, "
                                "or a LiteRT export's model.tflite.")


def resolve_export(path, files=SAVEDMODEL_FILES):
    """The version folder of an export: `path` itself if it holds `files[0]` (`saved_model.pb`; or its folder if it
    is that file), else its highest whole version (one holding all of `files`).

    A version folder that is not whole (made by hand, or copied in part) is passed over with a warning, as it would
    fail to load.

    Raises:
        FileNotFoundError: `path` is neither a version folder nor a folder of versions.
    """
    path = Path(path)
    check_exists(path)
    if path.is_file():  # the model file itself, or another file of a version: its folder is meant
        if path.name == files[0]:
            return path.parent
        version = next((folder for folder in path.parents if (folder / files[0]).is_file()), path.parent)
        raise FileNotFoundError(f"{path} is a file, not an export: pass the folder of the export ({version}, or "
                                "<root>/<name> for its highest version).")
    if (path / files[0]).is_file():
        return path
    found = versions(path)
    whole = [version for version in found if all((path / str(version) / name).exists() for name in files)]
    if not whole and any((path / str(version) / files[0]).is_file() for version in found):
        # A model file without tfxfer's metadata: a SavedModel tfxfer did not write, which loading names as such.
        return path / str(max(version for version in found if (path / str(version) / files[0]).is_file()))
    if not whole:
        held = f"only version folders that are not whole exports ({', '.join(map(str, found))})" if found else \
            f"neither {files[0]} nor version folders (1/, 2/...)"
        raise FileNotFoundError(f"{path} is not an export: it holds {held}. Pass <root>/<name> or "
                                "<root>/<name>/<version> of a tfxfer export.")
    passed_over = [version for version in found if version > whole[-1]]
    if passed_over:
        warnings.warn(f"{path}: version folder(s) {', '.join(map(str, passed_over))} are not whole exports (a "
                      f"{', '.join(files)}), so version {whole[-1]} is used; remove or "
                      "complete them (TF Serving would try the highest).", stacklevel=3)
    return path / str(whole[-1])


def check_name(name):
    """Raises unless `name` can be a model name under an export root (TF Serving's `name:` in models.config)."""
    if not isinstance(name, str) or not _NAME.match(name) or is_version(name):
        raise ValueError(f"Export name {name!r} must start with a letter or digit and hold only letters, digits, '.', "
                         "'_' and '-' (and not be all digits, which would look like a version), e.g. 'ants_bees'.")


#: The file that every version of each export format holds.
FORMAT_FILES = {"savedmodel": "saved_model.pb", "litert": "model.tflite"}


def check_format(model_folder, export_format):
    """Raises when `<root>/<name>` holds versions of another export format than `export_format` (TF Serving serves a
    name's highest version, so a `.tflite` version would hide, and fail, the SavedModels), or anything but versions
    (a user's folder, which an export would fill with its own)."""
    def ours(entry):  # a whole version of either format, or one being written; not a folder made by hand
        whole = any((Path(model_folder) / entry / marker).exists() for marker in FORMAT_FILES.values())
        return (is_version(entry) and whole) or entry.startswith(TEMPORARY_PREFIX)

    foreign = sorted(entry for entry in (os.listdir(model_folder) if os.path.isdir(model_folder) else [])
                     if not ours(entry))
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        what = "which is not a whole version" if len(foreign) == 1 else "which are not whole versions"
        raise ValueError(f"{model_folder} holds {listed}, {what} of an export (1/, 2/...): an export goes into a "
                         "folder of its own; export under another name or root.")
    for other, marker in FORMAT_FILES.items():
        held = [v for v in versions(model_folder) if (Path(model_folder) / str(v) / marker).exists()]
        if other != export_format and held:
            raise ValueError(f"{model_folder} holds {other} exports (versions {', '.join(map(str, held))}); a name's "
                             f"versions are all of one format: export the {export_format} model under another name "
                             "or root.")


def write_version(root, name, write):
    """Writes the next version of `<root>/<name>` with `write(folder)`, and returns the version's folder.

    `write` fills a temporary folder beside the versions; it is flushed to disk and renamed into place, so a version
    appears whole or not at all, an existing version is never touched, and writers running at the same time
    (threads or processes) get different versions. This relies on POSIX rename semantics (renaming a folder onto a
    non-empty one fails), as local Linux file systems give; `root` must be a local path, not `gs://`. Temporary
    folders left by killed writers on this machine are removed first.

    Raises:
        OSError: `<root>/<name>` cannot be written (full, read-only, not a folder), naming it and the reason. Nothing
            of the failed version is left, and the versions already there are unchanged.
    """
    model_folder = Path(root) / name
    created = not model_folder.exists()
    try:
        model_folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_failure(error, model_folder) from None
    remove_stale_temporaries(model_folder)
    temporary = model_folder / f"{TEMPORARY_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        write(temporary)
        _sync_tree(temporary)
        version = _claim_version(temporary, model_folder)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if created and not any(model_folder.iterdir()):  # leave no empty model folder this call made
            model_folder.rmdir()
        failure = write_failure(error, model_folder)
        if failure is None:
            raise
        raise failure from None
    return model_folder / str(version)


def write_failure(error, model_folder):
    """An OSError naming `model_folder` and why it could not be written, or None when `error` is something else.

    TensorFlow's writers report a full or read-only disk as `tf.errors` whose message starts with the file's path;
    only those (and Python's OSErrors) are file-system failures.
    """
    import tensorflow as tf  # here, so that checking a name (the command line does) needs no TensorFlow

    # File-system failures that TensorFlow's file writers raise as `tf.errors`, and the errno each stands for.
    tf_write_errors = ((tf.errors.ResourceExhaustedError, errno.ENOSPC),
                       (tf.errors.PermissionDeniedError, errno.EACCES),
                       (tf.errors.FailedPreconditionError, errno.ENOTDIR))
    if isinstance(error, OSError):
        number, reason = error.errno, error.strerror or str(error)
    else:
        number = next((number for kind, number in tf_write_errors if isinstance(error, kind)), None)
        if number is None or str(model_folder) not in str(error):
            return None
        reason = re.sub(r"\s*\[Op:\w+\]$", "", str(error).splitlines()[0].rsplit("; ", 1)[-1])
        number = errno.EROFS if "read-only" in reason.lower() else number
    advice = {errno.ENOSPC: "free space there or pass another root=",
              errno.ENOTDIR: "part of that path is a file, not a folder; pass another root="}.get(
        number, "pass a root= you can write to")
    return OSError(number, f"Could not write an export in {model_folder} ({reason}); {advice}. The versions already "
                           "there are unchanged")


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


def check_base_path(base_path):
    """Raises unless `base_path` (where TF Serving sees an export root) is None, absolute or a URL."""
    if base_path is not None and not (str(base_path).startswith("/") or "://" in str(base_path)):
        raise ValueError(f"base_path={str(base_path)!r} is relative; TF Serving reads models.config's paths from "
                         "wherever it runs: pass where it sees the root as an absolute path (e.g. '/models') or a URL.")


def write_models_config(root="saved_models", base_path=None):
    """Writes `<root>/models.config`, TF Serving's `model_config_list` of every SavedModel exported under `root`
    (LiteRT exports are left out: TF Serving does not serve `.tflite` files).

    The file is regenerated from the folders (every `<root>/<name>` with a SavedModel version), so edits by hand
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
        ValueError: `base_path` is relative.

    Example:
        >>> path = tfxfer.export(fitted, "ants_bees", root=f"{tmp_dir}/served")
        >>> print(write_models_config(f"{tmp_dir}/served", base_path="/models").read_text())
        model_config_list {
          config {
            name: "ants_bees"
            base_path: "/models/ants_bees"
            model_platform: "tensorflow"
          }
        }
        <BLANKLINE>
    """
    check_base_path(base_path)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Export root {root} does not exist; export a model into it first.")
    path = root / MODELS_CONFIG
    with open(root / f".{MODELS_CONFIG}.lock", "w") as lock:
        # Listing and writing under one lock: a writer that listed before another export's rename never writes last.
        fcntl.flock(lock, fcntl.LOCK_EX)
        names = sorted(entry.name for entry in root.iterdir()
                       if entry.is_dir() and _NAME.match(entry.name) and any(  # a SavedModel version in it
                           (entry / str(v) / FORMAT_FILES["savedmodel"]).is_file() for v in versions(entry)))
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
