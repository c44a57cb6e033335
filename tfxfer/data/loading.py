"""What `load_images` and `load_text` share: argument checks, class folders and tables read into examples, and the
splits assembled from them.

A loader reads its source into examples (an input, its label, and the split the source gave it, if any), reporting
bad files and rows through one `BadInputs` policy; `assemble` then carves the splits the source lacks, checks that
training covers every class, weighs the classes and makes the `DataSplits`.
"""

import hashlib
import math
import os
import warnings

import numpy as np

from tfxfer.data.datasplits import DataSplits
from tfxfer.data.errors import BadInputs, DataError, count_reasons
from tfxfer.data.folders import scan_class_folders
from tfxfer.data.stratify import SPLITS, TEST, TRAIN, VALIDATION, check_fractions, stratified_split
from tfxfer.data.columns import as_column_list, require_columns
from tfxfer.data.tables import load_frame, row_source, split_ids
from tfxfer.data.task import Task, check_task_argument


def start(*, task, validation_split, test_split, batch_size, on_bad):
    """Checks the arguments every loader takes, before anything is read; returns the `BadInputs` policy.

    Raises:
        ValueError: An argument is out of range (named, with its value).
    """
    check_task_argument(task)
    check_fractions(validation_split, test_split)
    check_batch_size(batch_size)
    return BadInputs(on_bad)


def check_extractor_kind(extractor, modality):
    """Raises when `extractor` takes the other kind of input than the loader reads (a text model for images...).

    Args:
        extractor: None, or an object with `input_kind` (`"image"` or `"text"`) and `source`.
        modality: What the loader reads: `"image"` or `"text"`.
    """
    kind = getattr(extractor, "input_kind", None)
    if kind is not None and kind != modality:
        loader = {"image": "load_images", "text": "load_text"}[kind]
        raise ValueError(f"extractor {getattr(extractor, 'source', extractor)!r} takes {kind}s, not {modality}s: "
                         f"load its data with tfxfer.{loader}, or pass a{'n' * (modality == 'image')} {modality} "
                         "extractor.")


def check_batch_size(batch_size):
    """Raises unless `batch_size` is a whole number >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")


def from_class_folders(source, *, modality, extensions, read, task, class_names, bad, **options):
    """The `DataSplits` of a class-per-subfolder tree (see `tfxfer.data.folders`).

    Args:
        source: The folder.
        modality: `"image"` or `"text"`.
        extensions: The file suffixes to read.
        read: A function from the list of `(path, class index, split)` found to the kept `(input, class index,
            split, path)`, reporting the files it drops through `bad`.
        task: The `task=` argument: None or `"multiclass"`.
        class_names: The caller's class names, or None.
        bad: The `BadInputs` policy.
        **options: Further `assemble` arguments (fractions, seed, pipeline options).
    """
    if task not in (None, "multiclass"):
        raise ValueError(f"A folder of class subfolders is a multi-class source; got task={task!r}.")
    _check_file_kind(source, modality, extensions)
    names, found, split_folders = scan_class_folders(source, extensions, class_names, bad)
    kept = read(found)
    return assemble(modality=modality, task=Task("multiclass", names),
                    inputs=[value for value, _, _, _ in kept],
                    labels=np.asarray([label for _, label, _, _ in kept], dtype=np.int32),
                    fixed=[split for _, _, split, _ in kept], names=[name for _, _, _, name in kept], source=source,
                    bad=bad,
                    fixed_origins={split: f"folder {folder.name}/" for split, folder in split_folders.items()},
                    **options)


#: The files each kind of loader reads, to tell a folder of the other kind.
_KIND_SUFFIXES = {"image": (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp"), "text": (".txt",)}


def _check_file_kind(root, modality, extensions):
    """Raises when a folder holds none of the files this loader reads but files of the other kind (images given to
    a text model, or the reverse), naming what it found and what to pass instead."""
    other = next(kind for kind in _KIND_SUFFIXES if kind != modality)
    found = {}
    for directory, _, names in os.walk(root, followlinks=True):
        for name in names:
            suffix = os.path.splitext(name)[1].lower()
            if suffix in extensions:
                return
            if suffix in _KIND_SUFFIXES[other]:
                found[suffix] = found.get(suffix, 0) + 1
    if found:
        what = ", ".join(f"{count} {suffix}" for suffix, count in sorted(found.items()))
        loader = "load_images" if other == "image" else "load_text"
        raise DataError(f"{root} holds {other}s ({what} files) and no {modality} files ({'/'.join(extensions)}), but "
                        f"the extractor takes {modality}s: pass {'an' if other == 'image' else 'a'} {other} "
                        f"extractor (and tfxfer.{loader}), or {modality} data.")


#: Each kind of table's input column: the argument that names it, its default, what it holds, and "a"/"an".
_INPUT_COLUMNS = {"image": ("path_column", "path", "image paths", "an"), "text": ("text_column", "text", "texts", "a")}


def _check_table_kind(frame, modality, columns, source):
    """Raises when a table lacks this loader's default input column but has the other kind's (a table of texts
    given to an image extractor, or the reverse), naming what to pass instead."""
    argument, default, holds, article = _INPUT_COLUMNS[modality]
    other = next(kind for kind in _INPUT_COLUMNS if kind != modality)
    _, other_default, other_holds, other_article = _INPUT_COLUMNS[other]
    if columns.get(argument) != [default] or default in frame.columns or other_default not in frame.columns:
        return
    loader = "load_images" if other == "image" else "load_text"
    raise DataError(f"{source} has a {other_default!r} column and no {default!r} column: a table of {other_holds}, "
                    f"read here for {article} {modality} model. Pass {other_article} {other} extractor (and "
                    f"tfxfer.{loader}), or name the column of {holds} with {argument}=.")


def from_table(source, *, modality, columns, read, label_column, split_column, sep, column_names, encoding,
               text_columns, task, class_names, label_delimiter, bad, **options):
    """The `DataSplits` of a CSV/TSV file or a DataFrame.

    Args:
        source: A path or a DataFrame.
        modality: `"image"` or `"text"`.
        columns: `{argument: [column names]}` of the input columns, e.g. `{"path_column": ["path"]}`.
        read: A function `(frame, source name, folder, keep) -> inputs` giving each row's input (a path or a text)
            and clearing `keep` for the rows it reports through `bad`.
        label_column: The `label_column=` argument: a name or a list of names.
        split_column: The split column or None.
        sep: See `read_table`.
        column_names: See `read_table`.
        encoding: See `read_table`.
        text_columns: Columns to read as strings.
        task: A task type or None.
        class_names: The caller's class names or None.
        label_delimiter: The multi-label separator.
        bad: The `BadInputs` policy.
        **options: Further `assemble` arguments.
    """
    label_columns = as_column_list(label_column, "label_column")
    frame, source_name, folder = load_frame(source, sep=sep, column_names=column_names, encoding=encoding,
                                            text_columns=text_columns, bad=bad)
    _check_table_kind(frame, modality, columns, source_name)
    require_columns(frame, {**columns, "label_column": label_columns,
                            "split_column": [split_column] if split_column else []}, source_name)
    fixed, keep = split_ids(frame, split_column, source_name, bad)
    inputs = read(frame, source_name, folder, keep)
    return assemble_table(frame, inputs, keep, fixed, modality=modality, label_columns=label_columns, task=task,
                          class_names=class_names, label_delimiter=label_delimiter, split_column=split_column,
                          source=source_name, bad=bad, **options)


def assemble(*, modality, task, inputs, labels, fixed, validation_split, test_split, seed, source, bad,
             names=None, fixed_origins=None, **pipeline):
    """Splits the examples where the source did not, checks that training covers every class, weighs the classes.

    An example that appears more than once (the same image file contents, the same text) stays in one split: copies
    are carved into the same split, and a copy that the source put in another split (a copied or linked `val/`
    folder, a split column) or gave another label is bad input under the `on_bad` policy, named with its twin.

    Args:
        modality: `"image"` or `"text"`.
        task: The `Task` (weights are filled here, from the training split).
        inputs: Paths or texts, one per example.
        labels: Encoded labels, one per example.
        fixed: Split id per example from the source (folder or split column), or None where it has none.
        names: How messages name each example (a path, or the table's row); by default the inputs.
        fixed_origins: `{split id: description}` of the splits the source provides, for `origins`.
        validation_split: Fraction carved from the unassigned examples when the source has no validation split.
        test_split: Same for test.
        seed: Seed of the split and the pipelines.
        source: The data source, for messages and origins.
        bad: The `BadInputs` policy (its `skipped` list goes into the result).
        **pipeline: `DataSplits` pipeline arguments.

    Returns:
        A `DataSplits`.

    Raises:
        DataError: No examples are left, a class is missing from training, or has too few examples to split.
    """
    names = [str(item) for item in inputs] if names is None else list(names)
    keys = example_identities(modality, inputs)
    keep = _one_split_and_label_each(modality, keys, labels, fixed, names, source, bad, task.has_classes)
    inputs, keys, fixed = ([value for value, kept in zip(values, keep) if kept] for values in (inputs, keys, fixed))
    labels = labels[keep]
    if not len(inputs):
        raise DataError(f"{source}: no examples are left to load" + (
            f" ({len(bad.skipped)} skipped: {count_reasons(bad.skipped)})" if bad.skipped else "") + ".")
    fixed = np.asarray(fixed, dtype=object)
    given = {split for split in fixed.tolist() if split is not None}
    fixed_origins = fixed_origins or {}
    origins = {name: fixed_origins.get(split_id, "all examples" if split_id == TRAIN else "")
               for split_id, name in enumerate(SPLITS)}
    split = np.array([TRAIN if value is None else value for value in fixed.tolist()], dtype=np.int8)
    carve = {VALIDATION: 0.0 if VALIDATION in given else validation_split,
             TEST: 0.0 if TEST in given else test_split}
    # The source's training examples, or all when it has no splits, give what it lacks of validation and test;
    # copies of one example go where its first copy goes.
    pool = np.flatnonzero(split == TRAIN)
    if len(pool) and (carve[VALIDATION] or carve[TEST]):
        first = {}
        for position in pool:
            first.setdefault(keys[position], position)
        representatives = np.asarray(sorted(set(first.values())), dtype=np.int64)
        chosen = stratified_split(task.strata(labels[representatives]), carve[VALIDATION], carve[TEST], seed,
                                  class_names=task.strict_classes, source=source)
        to = dict(zip(representatives.tolist(), chosen.tolist()))
        split[pool] = [to[first[keys[position]]] for position in pool]
        carved = [SPLITS[split_id] for split_id, fraction in carve.items() if fraction]
        copies = len(representatives) < len(pool)
        why = "copies of one example kept together" if copies else "each class gives at least one"
        for name in carved:
            fraction, count = carve[SPLITS.index(name)], int(np.sum(split[pool] == SPLITS.index(name)))
            exact = count == math.floor(len(pool) * fraction + 0.5)
            share = f"{fraction:.0%}" if exact else f"{count} ({fraction:.0%} asked; {why})"
            origins[name] = f"{share} of {origins['train']}, stratified by {task.stratified_by}, seed {seed}" + (
                f", {why}" if exact and copies else "")
        origins["train"] = f"{origins['train']} less {' and '.join(carved)}"
    train_labels = labels[split == TRAIN]
    missing = task.missing_from_training(train_labels)
    if missing is not None:
        raise DataError(f"{source}: class {missing!r} has no training examples; add some, or leave it out of "
                        + ("class_names." if task.strict_classes else "the labels (a multi-label output that no "
                           "training example has cannot be learned)."))
    task.fill_weights(train_labels)
    for split_id in (VALIDATION, TEST):  # what a held-out split cannot score
        bad.notes += task.held_out_notes(SPLITS[split_id], labels[split == split_id])
    if bad.skipped:
        reasons = ", ".join(f"{reason} {count}" for reason, count in count_reasons(bad.skipped).items())
        what = "file or row" if len(bad.skipped) == 1 else "files or rows"
        warnings.warn(f"{source}: {len(bad.skipped)} {what} left out or not read ({reasons}); the list is in "
                      ".skipped of the result.", stacklevel=3)
    inputs = np.asarray(inputs, dtype=object)
    examples = {name: (inputs[split == split_id].tolist(), labels[split == split_id])
                for split_id, name in enumerate(SPLITS)}
    return DataSplits(modality=modality, task=task, examples=examples, origins=origins, skipped=bad.skipped,
                      notes=bad.notes, seed=seed, **pipeline)


def example_identities(modality, inputs):
    """What makes two examples the same: an image file's contents (copies and links alike), a text's characters."""
    if modality != "image":
        return list(inputs)
    keys = []
    for path in inputs:
        with open(path, "rb") as file:
            keys.append(hashlib.sha1(file.read()).hexdigest())
    return keys


def _one_split_and_label_each(modality, keys, labels, fixed, names, source, bad, one_label):
    """Reports every later copy of an example that is in another split of the source, or has another label; returns
    the mask of the others.

    A copy in a train row and a test row would score the model on what it trained on; copies with two labels teach
    both. The copy in the earliest split (train, then validation, then test) stays; the later ones are the bad
    input. Copies in one split with one label are kept (the data set weighs that example more); regression targets
    of one example may differ (`one_label` False: several raters' scores, as in STS-B).
    """
    keep = np.ones(len(keys), dtype=bool)
    split_of = [TRAIN if split is None else split for split in fixed]
    what = "file contents" if modality == "image" else "text"
    first, repeats = {}, []
    for position in sorted(range(len(keys)), key=lambda position: (split_of[position], position)):
        other = first.setdefault(keys[position], position)
        if other == position:
            continue
        twin = names[other].removeprefix(f"{source}, ")
        if one_label and not np.array_equal(labels[other], labels[position]):
            bad.report(names[position], "one example, two labels", f"same {what} as {twin}, which has another label",
                       "keep one label for it,")
        elif split_of[other] != split_of[position]:
            bad.report(names[position], "duplicate across splits",
                       f"same {what} as {twin}, which is in {SPLITS[split_of[other]]}; this one is in "
                       f"{SPLITS[split_of[position]]}", "remove one of them,")
        else:
            repeats.append((names[position], twin))
            continue
        keep[position] = False
    if repeats:  # kept, and said: a repeated row of a table is more often a slip than a weight
        bad.notes.append(f"{len(repeats)} example(s) repeat an earlier one's {what} with its label and split (e.g. "
                         f"{repeats[0][0]}, the same as {repeats[0][1]}): kept, so each copy weighs once more; "
                         "remove the copies if that is not meant")
    return keep


def assemble_table(frame, inputs, keep, fixed, *, modality, label_columns, task, class_names, label_delimiter,
                   split_column, source, bad, **options):
    """Encodes the labels of the rows whose inputs passed their checks, then `assemble`s the splits.

    A row whose text or image is also in a row of an earlier split (split column), or with another label, is bad
    input (`on_bad`).

    Args:
        frame: The table.
        inputs: Path or text per row of `frame`.
        keep: Boolean mask of the rows whose inputs (and split value) are good.
        fixed: Split id (or None) per row of `frame`.
        modality: `"image"` or `"text"`.
        label_columns: The label columns.
        task: Task type or None (inferred).
        class_names: Caller's class names or None.
        label_delimiter: Multi-label separator in strings.
        split_column: The split column or None, for origins.
        source: The file or "DataFrame".
        bad: The `BadInputs` policy.
        **options: Further `assemble` arguments (fractions, seed, pipeline options).

    Returns:
        A `DataSplits`.
    """
    frame = frame[keep]
    inputs = [value for value, kept in zip(inputs, keep) if kept]
    fixed = [split for split, kept in zip(fixed, keep) if kept]
    task, labels, label_kept = Task.from_labels(frame, label_columns, task=task, class_names=class_names,
                                                delimiter=label_delimiter, source=source, bad=bad)
    fixed = [split for split, kept in zip(fixed, label_kept) if kept]
    inputs = [value for value, kept in zip(inputs, label_kept) if kept]
    names = [row_source(source, index) for index, kept in zip(frame.index, label_kept) if kept]
    if modality == "image":  # name the file too, beside the row
        names = [f"{name} ({path})" for name, path in zip(names, inputs)]
    origins = {split: f"rows with {split_column} = {SPLITS[split]}" for split in set(fixed) if split is not None}
    return assemble(modality=modality, task=task, inputs=inputs, labels=labels, fixed=fixed, source=source,
                    bad=bad, names=names, fixed_origins=origins, **options)
