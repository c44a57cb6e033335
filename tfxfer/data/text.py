"""Texts from CSV/TSV files, DataFrames and class folders of `.txt` files, as `tf.data` pipelines of strings."""

from pathlib import Path

from tfxfer.data.encodings import binary_kind, codec_for, describe_decode_error, is_utf16, marked_encoding
from tfxfer.data.labels import is_missing
from tfxfer.data.loading import check_extractor_kind, from_class_folders, from_table, start
from tfxfer.data.columns import as_column_list
from tfxfer.data.tables import is_folder, row_source

TEXT_EXTENSIONS = (".txt",)


def _text_value(value, encoding):
    """A cell as text, or None when it is missing or blank."""
    if is_missing(value):
        return None
    if isinstance(value, bytes):
        value = value.decode(encoding)
    value = str(value)
    return value if value.strip() else None


def load_text(source, *, extractor=None, text_column="text", label_column="label", task=None, class_names=None,
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
        extractor: The text extractor the texts are for (e.g. from `tfxfer.load_extractor`), so that an image
            extractor is refused here rather than at training; optional, as texts need no resizing.
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
    check_extractor_kind(extractor, "text")
    bad = start(task=task, validation_split=validation_split, test_split=test_split, batch_size=batch_size,
                on_bad=on_bad)
    options = dict(task=task, class_names=class_names, bad=bad, validation_split=validation_split,
                   test_split=test_split, seed=seed, batch_size=batch_size, shuffle_buffer=shuffle_buffer)
    if is_folder(source):
        return from_class_folders(source, modality="text", extensions=TEXT_EXTENSIONS,
                                  read=lambda found: _file_texts(found, encoding, bad), **options)
    text_columns = as_column_list(text_column, "text_column")
    both = [column for column in text_columns if column in as_column_list(label_column, "label_column")]
    if both:  # the label would be inside the text the model reads
        raise ValueError(f"text_column and label_column both name {both[0]!r}: the labels would be part of the texts "
                         "the model reads; name the column of texts with text_column= and the labels with "
                         "label_column=.")
    return from_table(source, modality="text", columns={"text_column": text_columns},
                      read=lambda frame, name, folder, keep: _table_texts(frame, name, keep, text_columns,
                                                                          text_separator, encoding, bad),
                      label_column=label_column, split_column=split_column, sep=sep, column_names=column_names,
                      encoding=encoding, text_columns=text_columns, label_delimiter=label_delimiter,
                      joined_columns={"columns": text_columns, "separator": text_separator}
                      if text_columns != ["text"] else None, **options)


def _file_texts(found, encoding, bad):
    """The texts of a class-folder tree's files; files that do not decode or are blank are reported."""
    kept = []
    for path, label, split in found:
        text = read_text_file(path, encoding, bad)
        if text is not None:
            kept.append((text, label, split, str(path)))
    return kept


def read_text_file(path, encoding, bad):
    """One example's text from a `.txt` file, as training and prediction read it: the whole file, decoded strictly.

    Returns:
        The text, or None when the file does not decode or is blank (reported through `bad`, the `BadInputs`).
    """
    raw = Path(path).read_bytes()
    kind = None if is_utf16(encoding) else binary_kind(raw)
    if kind is not None:
        bad.report(path, "not text", f"it {'looks like' if kind.startswith('UTF-16') else 'is'} {kind}", "remove it")
        return None
    marked = marked_encoding(raw, encoding)
    if marked:
        bad.report(path, "not decodable text",
                   f"it starts with a {marked} byte order mark, so it is {marked} text, not {encoding}",
                   f"pass encoding='{marked.lower()}' if the files are {marked}, or save it as {encoding},")
        return None
    try:
        text = raw.decode(codec_for(encoding))
    except UnicodeDecodeError as error:
        bad.report(path, "not decodable text", describe_decode_error(raw, error, encoding),
                   "pass encoding= with the files' encoding, fix or remove the file,")
        return None
    if not text.strip():
        bad.report(path, "missing or empty text", "the file is empty or blank", "remove it")
        return None
    return text


def _table_texts(frame, source_name, keep, text_columns, text_separator, encoding, bad):
    """Each row's text (several columns joined); rows with an empty text column are reported."""
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
    return texts
