"""Folders with one subfolder per class, optionally already split into `train/`, `val/` (or `validation/`...) and
`test/`.

Split folders are recognised by the usual spellings, in any case (`Train/`, `training/`, `Val/`, `valid/`,
`validation/`, `dev/`, `test/`, `testing/`); a folder of unlabelled examples beside them (`unlabeled/`,
`unlabelled/`) is listed as not read. A layout that mixes split folders and class folders, or names a class like a
split, is refused with the reason: reading it either way would train on the wrong thing.
"""

import os
import unicodedata
import warnings
from pathlib import Path

from tfxfer.data.errors import DataError, printable
from tfxfer.data.class_names import look_alikes
from tfxfer.data.stratify import SPLIT_ALIASES, SPLITS, TRAIN

#: Folders of examples without labels, which a split layout may hold beside its splits.
UNLABELLED_FOLDERS = ("unlabeled", "unlabelled", "unlabeled_images", "unlabelled_images")


def _is_hidden(name):
    """Hidden files and folders, and the metadata folder macOS adds to zip archives."""
    return name.startswith(".") or name == "__MACOSX"


def _split_folders(root, bad):
    """`{split id: folder}` when `root` holds split folders, else `{None: root}`; unlabelled folders are noted."""
    folders = sorted(entry for entry in root.iterdir() if entry.is_dir() and not _is_hidden(entry.name))
    splits = {folder: SPLIT_ALIASES.get(folder.name.lower()) for folder in folders}
    named = [folder for folder in folders if splits[folder] is not None]
    if not named:
        return {None: root}
    if TRAIN not in splits.values():
        raise DataError(
            f"{root} has {_listed(named)} named like split folders but no train/ folder. Put the training examples "
            f"in {root / 'train'}/ (one subfolder per class) beside them; or, if {named[0].name!r} is a class, "
            "rename it: a class named like a split would be read as one."
        )
    unlabelled = [folder for folder in folders if folder.name.lower() in UNLABELLED_FOLDERS]
    others = [folder for folder in folders if folder not in named and folder not in unlabelled]
    if others:
        raise DataError(
            f"{root} has split folders ({_listed(named)}) and also {_listed(others)}, which is not a split: move "
            f"each class folder into {named[0].name}/ (and the other splits), or move {others[0].name!r} out of "
            f"{root}."
        )
    for folder in unlabelled:
        bad.note(folder, "unlabelled folder", "its examples have no labels; not read")
    by_split = {}
    for folder in named:
        if splits[folder] in by_split:
            raise DataError(f"{root} has both {by_split[splits[folder]].name}/ and {folder.name}/, two folders for the "
                            f"{SPLITS[splits[folder]]} split; keep one.")
        by_split[splits[folder]] = folder
    return by_split


def _listed(folders):
    return ", ".join(f"{folder.name}/" for folder in folders)


def list_files(folder, extensions, bad):
    """The readable files under a folder (recursively, sorted; links followed, a link back read once); hidden files
    and other extensions are listed in `bad` as not read."""
    files, seen = [], set()
    for directory, subdirectories, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in seen:  # a link back to a folder already read
            bad.note(Path(directory), "link loop", f"links to {real}, which is already read; not read again")
            subdirectories[:] = []
            continue
        seen.add(real)
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
    splits = _split_folders(root, bad)
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
            elif entry.is_dir() and split is not None and entry.name.lower() in SPLIT_ALIASES:
                raise DataError(f"{entry} is named like a split folder, inside the split folder {folder.name}/: a "
                                "class cannot be called train, val or test; rename it, or move the splits up.")
            elif entry.is_dir():
                inner = [child.name for child in entry.iterdir() if child.is_dir() and
                         child.name.lower() in SPLIT_ALIASES]
                if TRAIN in {SPLIT_ALIASES[name.lower()] for name in inner}:
                    raise DataError(f"{entry} holds split folders ({', '.join(sorted(inner))}/): it is a data set "
                                    f"of its own, not a class of {folder}; pass {entry} as the data folder.")
                classes[entry.name] = list_files(entry, extensions, bad)
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
    _check_class_names(names, training)
    for name in list(names):
        if not found[name]:
            bad.report(training / name, "empty class folder", f"no {'/'.join(extensions)} files",
                       "add examples, remove the folder,")
            names.remove(name)
    if len(names) < 2:
        given = f"class_names names {len(names)} class ({names})" if class_names is not None else \
            f"{training} has {len(names)} usable class folder(s) {names}"
        raise DataError(f"{given}; a classifier needs at least two (one subfolder per class).")
    index = {name: position for position, name in enumerate(names)}
    examples = []
    for split, classes in scanned.items():
        for name, files in sorted(classes.items()):
            if name not in index:
                fix = "add it to class_names, move the file," if class_names is not None else \
                    f"the model cannot learn it without examples in {training}/{name}: add some there, remove it,"
                reason = "label not in class_names" if class_names is not None else "class not in the training folder"
                for path in files:
                    bad.report(path, reason, f"folder {name!r} is not one of {names}", fix)
                continue
            examples.extend((path, index[name], split) for path in files)
    examples.sort(key=lambda example: str(example[0]))
    return names, examples, {split: folder for split, folder in splits.items() if split is not None}


def _check_class_names(names, folder):
    """Refuses class folder names that an export's labels file cannot hold (bytes that are not UTF-8, a line break or
    another control character) or that are one name written twice (Unicode forms: macOS writes "café" decomposed,
    Linux composed; spaces around it); warns of names that differ only in case, which may be one class or two
    (letters: "A", "a").

    Example:
        >>> _check_class_names(["cat", "cat "], Path("photos"))
        Traceback (most recent call last):
        tfxfer.data.errors.DataError: class folders 'cat' and 'cat ' in photos are one name written two ways ...
    """
    for name in names:
        if printable(name) != name:
            raise DataError(f"class folder '{printable(name)}' in {printable(str(folder))}: its name is not UTF-8 "
                            "(bytes of another system's encoding, shown as \\xNN), which an export's labels file and "
                            "served class names cannot hold; rename it in UTF-8 (convmv -f latin1 -t utf8 converts a "
                            "tree).")
        if any(unicodedata.category(character) == "Cc" for character in name):
            raise DataError(f"class folder {name!r} in {folder}: its name holds a control character (a line break, a "
                            "tab), which an export's labels file (a line per class) cannot hold; rename it.")

    def written(name):
        return unicodedata.normalize("NFC", name).strip()

    for first, second in look_alikes(names, written):
        raise DataError(f"class folders {first!r} and {second!r} in {folder} are one name written two ways (Unicode "
                        "forms, or spaces around it), which would be two classes that look alike; merge them into "
                        "one folder.")
    for first, second in look_alikes(names, lambda name: written(name).casefold()):
        warnings.warn(f"class folders {first!r} and {second!r} in {folder} differ only in case: they are two "
                      "classes; merge them if they are one.", stacklevel=4)
