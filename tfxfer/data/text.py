"""Texts from CSV/TSV files, DataFrames and class folders of `.txt` files, as `tf.data` pipelines of strings."""

import numpy as np

from tfxfer.data.data_splits import assemble, assemble_table, check_batch_size
from tfxfer.data.errors import BadInputs
from tfxfer.data.folders import scan_class_folders
from tfxfer.data.splits import check_fractions
from tfxfer.data.tables import (as_column_list, codec_for, describe_decode_error, is_folder, load_frame,
                                require_columns, row_source, split_ids)
from tfxfer.data.task import Task, check_task_argument, is_missing

TEXT_EXTENSIONS = (".txt",)


def _text_value(value, encoding):
    """A cell as text, or None when it is missing or blank."""
    if is_missing(value):
        return None
    if isinstance(value, bytes):
        value = value.decode(encoding)
    value = str(value)
    return value if value.strip() else None


def load_text(source, *, text_column="text", label_column="label", task=None, class_names=None,
              label_delimiter="|", text_separator=" ", split_column=None, validation_split=0.2, test_split=0.0,
              seed=0, batch_size=32, shuffle_buffer=None, sep=None, column_names=None, encoding="utf-8",
              on_bad="error"):
    """Loads labelled texts as train/validation/test `tf.data` pipelines of strings.

    Sources:
        - a CSV/TSV file (TSVs are read with quotes as ordinary characters; see `read_table`) or a DataFrame, with
          text column(s) and label column(s).
        - a folder with one subfolder per class (or `train/`, `val/`, `test/` holding them) of `.txt` files, one
          example per file.

    Texts reach the extractor as they are in the source: not stripped, lower-cased or tokenised. Sentence pairs
    (STS-B, NLI) come from several text columns joined by `text_separator`, so that one string per example reaches
    the extractor: `text_column=["sentence1", "sentence2"]` gives `"sentence one" + text_separator + "sentence two"`.

    Args:
        source: A CSV/TSV path, a folder, or a pandas DataFrame.
        text_column: The text column, or a list of columns to join.
        label_column: Label column, or a list of columns (0/1 per class for multi-label, or regression targets).
        task: `"multiclass"`, `"multilabel"`, `"regression"`, or None to infer it (folders are multi-class).
        class_names: Class names in output order; labels outside them are bad input. By default sorted from data.
        label_delimiter: Separator of several labels in one string (`"sports|politics"`), for multi-label.
        text_separator: String put between the texts of several text columns.
        split_column: Column whose values (`train`, `val`/`validation`/`dev`, `test`) give each row's split.
        validation_split: Fraction carved off for validation when the source has no validation split (stratified,
            seeded); ignored when it has one.
        test_split: Same for a test split; 0 for none.
        seed: Seed of the split and the shuffling.
        batch_size: Examples per batch.
        shuffle_buffer: Examples in the training shuffle buffer; by default the whole training split.
        sep: CSV/TSV field separator (see `read_table`).
        column_names: Column names for a CSV/TSV without a header row (e.g. `["label", "text"]` for the SMS Spam
            Collection).
        encoding: Encoding of the CSV/TSV or `.txt` files (strict: a bad byte is an error naming file and offset).
        on_bad: `"error"` to stop at the first bad file or row, naming it; `"skip"` to leave bad items out and list
            them in `skipped`.

    Returns:
        A `DataSplits` whose datasets yield `(tf.string [batch], labels)`.

    Raises:
        DataError: A bad source, file or row (with `on_bad="error"`), naming it and what to do.
        ValueError: An argument out of range.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"text": ["win a prize", "see you at 5", "free entry", "ok, lunch?"],
        ...                       "label": ["spam", "ham", "spam", "ham"]})
        >>> data = load_text(frame, validation_split=0.5)
        >>> data.task.class_names, data.sizes["validation"]
        (['ham', 'spam'], 2)

        The SMS Spam Collection, tab-separated without a header:

        >>> load_text("SMSSpamCollection", sep="\\t", column_names=["label", "text"])  # doctest: +SKIP
    """
    check_task_argument(task)
    check_fractions(validation_split, test_split)
    check_batch_size(batch_size)
    bad = BadInputs(on_bad)
    pipeline = dict(batch_size=batch_size, shuffle_buffer=shuffle_buffer)
    if is_folder(source):
        if task not in (None, "multiclass"):
            raise ValueError(f"A folder of class subfolders is a multi-class source; got task={task!r}.")
        names, found, split_folders = scan_class_folders(source, TEXT_EXTENSIONS, class_names, bad)
        kept = []
        for path, label, split in found:
            raw = path.read_bytes()
            try:
                text = raw.decode(codec_for(encoding))
            except UnicodeDecodeError as error:
                bad.report(path, "not decodable text", describe_decode_error(raw, error, encoding),
                           "pass encoding= with the files' encoding, fix or remove the file,")
                continue
            if not text.strip():
                bad.report(path, "missing or empty text", "the file is empty or blank", "remove it")
                continue
            kept.append((text, label, split))
        return assemble(modality="text", task=Task("multiclass", names, len(names), "sparse"),
                        inputs=[text for text, _, _ in kept],
                        labels=np.asarray([label for _, label, _ in kept], dtype=np.int32),
                        fixed=[split for _, _, split in kept], validation_split=validation_split,
                        test_split=test_split, seed=seed, source=source, bad=bad,
                        fixed_origins={split: f"folder {folder.name}/" for split, folder in split_folders.items()},
                        **pipeline)
    text_columns = as_column_list(text_column, "text_column")
    label_columns = as_column_list(label_column, "label_column")
    frame, source_name, _ = load_frame(source, sep=sep, column_names=column_names, encoding=encoding,
                                       text_columns=text_columns)
    require_columns(frame, {"text_column": text_columns, "label_column": label_columns,
                            "split_column": [split_column] if split_column else []}, source_name)
    fixed, keep = split_ids(frame, split_column, source_name, bad)
    columns = {column: frame[column].tolist() for column in text_columns}
    texts = []
    for position, index in enumerate(frame.index):
        parts = []
        for column in text_columns if keep[position] else ():
            part = _text_value(columns[column][position], encoding)
            if part is None:
                bad.report(row_source(source_name, index), "missing or empty text", f"column {column!r} is empty",
                           "fill it in, drop the row,")
                keep[position] = False
                break
            parts.append(part)
        texts.append(text_separator.join(parts))
    return assemble_table(frame, texts, keep, fixed, modality="text", label_columns=label_columns, task=task,
                          class_names=class_names, label_delimiter=label_delimiter, split_column=split_column,
                          source=source_name, bad=bad, validation_split=validation_split, test_split=test_split,
                          seed=seed, **pipeline)
