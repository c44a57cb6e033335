"""Folders with one subfolder per class, optionally already split into `train/`, `val/` or `validation/`, `test/`."""

import os
from pathlib import Path

from tfxfer.data.errors import DataError
from tfxfer.data.stratify import TEST, TRAIN, VALIDATION

SPLIT_FOLDERS = {"train": TRAIN, "val": VALIDATION, "validation": VALIDATION, "test": TEST}


def _is_hidden(name):
    return name.startswith(".")


def _split_folders(root):
    """`{split id: folder}` when `root` holds `train/` and only split folders, else `{None: root}`."""
    folders = sorted(entry for entry in root.iterdir() if entry.is_dir() and not _is_hidden(entry.name))
    names = {folder.name for folder in folders}
    if "train" not in names or not names <= set(SPLIT_FOLDERS):
        return {None: root}
    if {"val", "validation"} <= names:
        raise DataError(f"{root} has both val/ and validation/; keep one validation folder.")
    return {SPLIT_FOLDERS[folder.name]: folder for folder in folders}


def _class_files(folder, extensions, bad):
    """The readable files under one class folder (recursively, sorted); everything else is listed as not read."""
    files = []
    for directory, subdirectories, names in os.walk(folder):
        hidden = sorted(name for name in subdirectories if _is_hidden(name))
        for name in hidden:
            bad.note(Path(directory, name), "hidden folder", "not read")
        subdirectories[:] = sorted(name for name in subdirectories if not _is_hidden(name))
        for name in sorted(names):
            path = Path(directory, name)
            if _is_hidden(name):
                bad.note(path, "hidden file", "not read")
            elif path.suffix.lower() not in extensions:
                bad.note(path, "unsupported extension", f"{path.suffix or 'no extension'!r} is not one of "
                                                        f"{', '.join(extensions)}; not read")
            else:
                files.append(path)
    return files


def scan_class_folders(root, extensions, class_names, bad):
    """Lists the examples of a class-per-subfolder tree.

    Classes are the subfolders of `train/` (or of `root` when it is not split), sorted by name, or `class_names` in
    the caller's order. Files with other extensions, hidden files and files outside class folders are listed in
    `bad.skipped` and never read. An empty class folder of the training data, and a folder whose class is not in
    `class_names` (e.g. a `val/` class missing from `train/`), are bad input under the `on_bad` policy.

    Args:
        root: The folder.
        extensions: Lower-case suffixes to read, e.g. `(".jpg", ".png")`.
        class_names: The caller's class names, or None.
        bad: The `BadInputs` policy.

    Returns:
        `(class_names, examples, split_folders)`: the class names; a list of `(path, class index, split id or None)`
        in sorted path order; and `{split id: folder}` for the splits the folder layout provides.

    Raises:
        DataError: `root` is not a folder, a named class has no folder, or fewer than two classes remain.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder.")
    splits = _split_folders(root)
    for entry in sorted(root.iterdir()):
        if entry.is_file():
            bad.note(entry, "not in a class folder", "not read")
    scanned = {}
    for split, folder in splits.items():
        classes = {}
        for entry in sorted(folder.iterdir()):
            if split is not None and entry.is_file():
                bad.note(entry, "not in a class folder", "not read")
            elif entry.is_dir() and _is_hidden(entry.name):
                bad.note(entry, "hidden folder", "not read")
            elif entry.is_dir():
                classes[entry.name] = _class_files(entry, extensions, bad)
        scanned[split] = classes
    training = splits.get(TRAIN, root)
    found = scanned.get(TRAIN, scanned.get(None))
    if class_names is None:
        names = sorted(found)
    else:
        names = [str(name) for name in class_names]
        absent = [name for name in names if name not in found]
        if absent:
            raise DataError(
                f"class {absent[0]!r} in class_names has no folder in {training}; its class folders are "
                f"{sorted(found)}."
            )
    for name in list(names):
        if not found[name]:
            bad.report(training / name, "empty class folder", f"no {'/'.join(extensions)} files",
                       "add examples, remove the folder,")
            names.remove(name)
    if len(names) < 2:
        raise DataError(
            f"{training} has {len(names)} usable class folder(s) {names}; a classifier needs at least two (one "
            "subfolder per class)."
        )
    index = {name: position for position, name in enumerate(names)}
    examples = []
    for split, classes in scanned.items():
        for name, files in sorted(classes.items()):
            if name not in index:
                for path in files:
                    bad.report(path, "label not in class_names", f"folder {name!r} is not one of {names}",
                               "add it to class_names, move the file,")
                continue
            examples.extend((path, index[name], split) for path in files)
    examples.sort(key=lambda example: str(example[0]))
    return names, examples, {split: folder for split, folder in splits.items() if split is not None}
