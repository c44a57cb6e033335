"""Images from class folders, CSV files and DataFrames, as `tf.data` pipelines sized and scaled for an extractor."""

import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from tfxfer.data.decoding import IMAGE_EXTENSIONS, find_undecodable
from tfxfer.data.exif import exif_orientation
from tfxfer.data.loading import check_extractor_kind, from_class_folders, from_table, start
from tfxfer.data.tables import is_folder, row_source


def resolve_geometry(extractor, image_size, value_range):
    """The image size and value range to produce: explicit arguments first, then the extractor's.

    Args:
        extractor: None, or an object with `image_size` `(height, width)` and `value_range` `(low, high)`.
        image_size: `(height, width)` or None.
        value_range: `(low, high)` or None.

    Returns:
        `((height, width), (low, high))` as ints and floats.

    Raises:
        ValueError: Neither gives a size or range, or they are malformed.
    """
    image_size = image_size if image_size is not None else getattr(extractor, "image_size", None)
    value_range = value_range if value_range is not None else getattr(extractor, "value_range", None)
    if image_size is None or value_range is None:
        missing = " and ".join(name for name, value in (("image_size", image_size), ("value_range", value_range))
                               if value is None)
        raise ValueError(
            f"load_images needs the {missing} the extractor expects: pass extractor= (an object with image_size "
            "and value_range, e.g. from tfxfer.load_extractor) or image_size=(height, width) and "
            "value_range=(low, high), e.g. (0.0, 1.0) for TF Hub image models."
        )
    if (len(tuple(image_size)) != 2 or not all(isinstance(side, (int, np.integer)) and side > 0
                                               for side in image_size)):
        raise ValueError(f"image_size must be (height, width) in whole pixels; got {image_size!r}.")
    low, high = (float(value) for value in value_range)
    if not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high; got {value_range!r}.")
    return (int(image_size[0]), int(image_size[1])), (low, high)


def default_augmentation(value_range, seed=0):
    """The default training augmentation: horizontal flip, rotation, zoom and contrast, as Keras layers.

    Args:
        value_range: `(low, high)` of the images, so that contrast changes stay inside it.
        seed: Seed of the random layers.

    Returns:
        A `keras.Sequential`; in inference mode (`training=False`) it returns its input unchanged.
    """
    layers = keras.layers
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.1, seed=seed + 1),
        layers.RandomZoom(0.1, seed=seed + 2),
        layers.RandomContrast(0.1, value_range=value_range, seed=seed + 3),
    ], name="augmentation")


def _augmentation(augment, value_range, seed):
    if augment is False or augment is None:
        return None
    if augment is True:
        return default_augmentation(value_range, seed)
    if isinstance(augment, keras.layers.Layer):
        return augment
    raise ValueError(f"augment must be True, False or a Keras layer; got {augment!r}.")


def _check_cache(cache):
    if cache is True or cache is False:
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return os.fspath(cache)
    raise ValueError(f"cache must be False, True (memory) or a folder path; got {cache!r}.")


def load_images(source, *, extractor=None, image_size=None, value_range=None, path_column="path",
                label_column="label", task=None, class_names=None, label_delimiter="|", split_column=None,
                base_dir=None, validation_split=0.2, test_split=0.0, seed=0, batch_size=32, augment=False,
                cache=False, shuffle_buffer=None, interpolation="bilinear", sep=None, column_names=None,
                encoding="utf-8", on_bad="error"):
    """Loads labelled images as train/validation/test `tf.data` pipelines sized and scaled for an extractor.

    Sources:
        - a folder with one subfolder per class (files in nested folders count for their class), or with `train/`
          and `val/` or `validation/` (and optionally `test/`) holding such subfolders. Files are read when their
          extension is one of .bmp .gif .jpeg .jpg .png .webp (any case); other and hidden files are listed in
          `skipped`, not read.
        - a CSV/TSV file or a DataFrame with a path column and label column(s). Relative paths are relative to the
          CSV file's folder, or to `base_dir` (default: the working directory) for a DataFrame.

    Every file is checked once, before any pipeline runs, by a parallel pass of TensorFlow decode ops (a JPEG at 1/8
    scale, which fails exactly where a full decode fails at a fraction of the cost); a file that will not decode is
    an error naming it, or with `on_bad="skip"` a counted, listed skip. So an epoch never stops on a bad file.

    Augmentation and caching: random augmentation makes every epoch's inputs different, so nothing computed from
    them (decoded images here, a frozen extractor's activations later) can be computed once and reused. It is off by
    default; turn it on when fine-tuning on little data, and leave it off while training a head on cached features.

    Args:
        source: A folder, a CSV/TSV path, or a pandas DataFrame.
        extractor: An object with `image_size` `(height, width)` and `value_range` `(low, high)`, e.g. a tfxfer
            extractor; its values are used unless `image_size`/`value_range` are given.
        image_size: `(height, width)` of the produced images.
        value_range: `(low, high)` of the produced pixel values: `(0.0, 1.0)` for TF Hub image models, `(0.0, 255.0)`
            for keras.applications models that preprocess inside.
        path_column: Column of image paths (CSV/DataFrame).
        label_column: Label column, or a list of columns (0/1 per class for multi-label, or several regression
            targets).
        task: `"multiclass"`, `"multilabel"`, `"regression"`, or None to infer it (folders are multi-class).
        class_names: Class names in output order; labels outside them are bad input. By default sorted from data.
        label_delimiter: Separator of several labels in one string (`"cat|dog"`), for multi-label.
        split_column: Column whose values (`train`, `val`/`validation`/`dev`, `test`) give each row's split.
        base_dir: Folder that relative paths in a DataFrame are relative to.
        validation_split: Fraction of the examples carved off for validation when the source has no validation
            split (stratified, seeded); ignored when it has one.
        test_split: Same for a test split; 0 for none.
        seed: Seed of the split, the shuffling and the augmentation.
        batch_size: Examples per batch.
        augment: False (default), True for `default_augmentation`, or a Keras layer to apply to training batches.
        cache: False (default), True to keep decoded images in memory after the first epoch (`n * h * w * 12` bytes),
            or a folder for an on-disk cache named by a fingerprint of the files and size (for data larger than
            memory; a folder that is not writable or has no room for it is a `DataError` when a pipeline is made).
        shuffle_buffer: Examples in the training shuffle buffer; by default the whole training split, or with an
            on-disk cache as many decoded images as fit in 256 MB (`DataSplits` explains the order).
        interpolation: `tf.image.resize` method.
        sep: CSV/TSV field separator (see `read_table`).
        column_names: Column names for a CSV/TSV without a header row.
        encoding: CSV/TSV encoding.
        on_bad: `"error"` to stop at the first bad file or row, naming it; `"skip"` to leave bad items out and list
            them in `skipped`.

    Returns:
        A `DataSplits`.

    Raises:
        DataError: A bad source, file or row (with `on_bad="error"`), naming it and what to do.
        ValueError: An argument out of range.

    Example:
        >>> images = load_images(image_folder, image_size=(224, 224), value_range=(0.0, 1.0))
        >>> images.task.class_names, images.sizes
        (['ants', 'bees', 'wasps'], {'train': 19, 'validation': 5, 'test': 0})
    """
    check_extractor_kind(extractor, "image")
    image_size, value_range = resolve_geometry(extractor, image_size, value_range)
    bad = start(task=task, validation_split=validation_split, test_split=test_split, batch_size=batch_size,
                on_bad=on_bad)
    options = dict(task=task, class_names=class_names, bad=bad, validation_split=validation_split,
                   test_split=test_split, seed=seed, batch_size=batch_size, image_size=image_size,
                   value_range=value_range, interpolation=interpolation,
                   augmentation=_augmentation(augment, value_range, seed), cache=_check_cache(cache),
                   shuffle_buffer=shuffle_buffer)
    if is_folder(source):
        return from_class_folders(source, modality="image", extensions=IMAGE_EXTENSIONS,
                                  read=lambda found: _decodable_files(found, bad), **options)
    return from_table(source, modality="image", columns={"path_column": [path_column]},
                      read=lambda frame, name, folder, keep: _table_paths(frame, name, folder, keep, path_column,
                                                                          base_dir, bad),
                      label_column=label_column, split_column=split_column, sep=sep, column_names=column_names,
                      encoding=encoding, text_columns=[path_column], label_delimiter=label_delimiter, **options)


def _decodable_files(found, bad):
    """The files of a class-folder tree that decode; the others are reported."""
    failures = find_undecodable([str(path) for path, _, _ in found])
    kept = []
    for position, (path, label, split) in enumerate(found):
        if position in failures:
            bad.report(path, "not a decodable image", failures[position], "remove it")
        else:
            kept.append((str(path), label, split, str(path)))
    _note_rotations([path for path, _, _, _ in kept], bad)
    return kept


def path_hint(written, path=None, base="its own folder"):
    """Why a path in a table (or given to predict) may not be found: a URL, a Windows path, `~`, a pattern, a link
    to nothing, a path relative to the working folder where the table's are read relative to `base`."""
    if written.lower().startswith("file://"):
        return "; it is a file:// URL: write the path without file://"
    if written.lower().startswith(("http://", "https://", "gs://", "s3://")):
        return "; URLs are not read: download the images and list their paths"
    if "\\" in written:
        return "; it holds backslashes: write Windows paths with / (relative to the table's folder)"
    if written.startswith("~"):
        return "; ~ is not expanded here: write the whole path, or one relative to the table's folder"
    if any(character in written for character in "*?["):
        return "; it is a pattern (*, ?, [): list each file, or pass their folder"
    if path is not None and os.path.islink(path):
        return f"; it is a link to {os.readlink(path)}, which does not exist"
    if path is not None and Path(path) != Path(written) and os.path.isfile(written):
        return (f"; {written} is a file relative to the working folder, but a table's paths are read relative to "
                f"{base}: write them so, or absolute")
    return ""


def rotation_note(paths):
    """A note counting the JPEGs whose EXIF orientation asks for a rotation that tfxfer does not apply, or None."""
    rotated = [path for path in paths if exif_orientation(path) not in (None, 1)]
    if rotated:
        return (f"{len(rotated)} JPEG(s) carry an EXIF rotation (e.g. {rotated[0]}), which is not applied, in "
                "training as in serving (TensorFlow's decoders ignore it); rotate the files beforehand if their "
                "orientation matters")
    return None


def _note_rotations(paths, bad):
    note = rotation_note(paths)
    if note:
        bad.notes.append(note)


def _table_paths(frame, source_name, folder, keep, path_column, base_dir, bad):
    """Each row's image path (relative ones resolved); rows whose file is missing or does not decode are reported."""
    base = Path(base_dir) if base_dir is not None else folder
    paths = []
    for position, (index, value) in enumerate(frame[path_column].items()):
        path = "" if pd.isna(value) else str(value).strip()
        if keep[position] and not path:
            bad.report(row_source(source_name, index), "missing path", f"column {path_column!r} is empty",
                       "fill it in, drop the row,")
            keep[position] = False
        elif keep[position]:
            written = path
            path = Path(path) if Path(path).is_absolute() or base is None else base / path
            if not path.is_file():
                shown = written if "://" in written else str(path)  # a URL as written (a path folds its //)
                relative_to = "its own folder" if base_dir is None else f"base_dir={str(base)!r}"
                bad.report(row_source(source_name, index), "path does not exist", f"{shown!r} is not a file"
                           + path_hint(written, path, relative_to), "fix the path, drop the row,")
                keep[position] = False
        paths.append(str(path))
    candidates = np.flatnonzero(keep)
    for checked, reason in find_undecodable([paths[position] for position in candidates]).items():
        position = candidates[checked]
        bad.report(f"{row_source(source_name, frame.index[position])} ({paths[position]})", "not a decodable image",
                   reason, "fix or remove the file, drop the row,")
        keep[position] = False
    _note_rotations([path for path, kept in zip(paths, keep) if kept], bad)
    return paths
