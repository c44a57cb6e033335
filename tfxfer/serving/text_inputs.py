"""The texts a text export's `predict` reads: texts as they are, `.txt` files and folders of them, and CSV/TSV
columns, each named for messages as training names it."""

import os
import warnings
from pathlib import Path

import pandas as pd

from tfxfer.data.errors import DataError
from tfxfer.data.labels import is_missing
from tfxfer.data.columns import header_hint, require_columns
from tfxfer.data.tables import TABLE_SUFFIXES, load_frame, row_source
from tfxfer.data.text import TEXT_EXTENSIONS, read_text_file

def _is_path(item):
    """Whether a text export's input names a file or folder rather than being a text itself: a path object, a name
    ending in .txt/.csv/.tsv/.tab or a slash, or an existing file or folder."""
    if isinstance(item, os.PathLike):
        return True
    name = str(item)
    return name.lower().endswith((*TABLE_SUFFIXES, *TEXT_EXTENSIONS, "/", os.sep)) or os.path.exists(name)


def texts_of(inputs, text_column, table, bad, joined):
    """`(file or None, text)` per text: texts as they are, `.txt` files and folders of them, CSV/TSV columns."""
    named_only = [item for item in inputs if _is_path(item) and not isinstance(item, os.PathLike)
                  and not str(item).lower().endswith((*TABLE_SUFFIXES, *TEXT_EXTENSIONS, "/", os.sep))]
    if named_only and not all(_is_path(item) for item in inputs):  # ["win money", "spam"] beside a spam/ folder
        kind = "folder" if os.path.isdir(named_only[0]) else "file"
        raise ValueError(f"{str(named_only[0])!r} is among texts but names an existing {kind} here: pass "
                         f"texts=True to read every input as a text, or the {kind} as Path({str(named_only[0])!r}) "
                         "or with a trailing /.")
    pairs = []
    for position, item in enumerate(inputs):
        if isinstance(item, bytes) or is_missing(item) or not _is_path(item):
            pairs.append(literal(position, item, bad))
            continue
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; pass an existing .txt or CSV/TSV file, or texts=True "
                                    "to classify the words themselves.")
        said = table["sep"] or table["column_names"] or text_column  # then a .txt is a table, as training reads it
        if path.suffix.lower() in TABLE_SUFFIXES or (path.is_file() and said):
            pairs.extend(table_texts(path, text_column, table, bad, joined))
            continue
        if path.is_file() and path.suffix.lower() not in TEXT_EXTENSIONS:
            raise ValueError(f"{path} is not a .txt file (nor a CSV/TSV); a text model reads texts from .txt files, "
                             "as training does. Pass texts=True to classify the name itself.")
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_EXTENSIONS) \
            if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise FileNotFoundError(f"{path} holds no .txt files; a text model reads .txt files (one text each), "
                                    "CSV/TSV files, or texts.")
        for file in files:
            text = read_text_file(file, table["encoding"], bad)
            if text is not None:
                pairs.append((str(file), text))
    return pairs


def literal(position, item, bad):
    """`(None, text)` for an input that is a text (bytes decoded as UTF-8); None for a missing, empty or undecodable
    one that `bad` skips (it raises otherwise): None and NaN are no text, not the words 'None' and 'nan'."""
    if isinstance(item, bytes):
        try:
            item = item.decode("utf-8")
        except UnicodeDecodeError as error:
            bad.report(f"input {position + 1}", "not decodable text", f"bytes that are not UTF-8 ({error.reason})",
                       fix="decode them")
            return None
    text = "" if is_missing(item) else str(item)
    if not text.strip():
        bad.report(f"input {position + 1}", "empty text", repr(item), fix="give it words")
        return None
    return None, text


def table_texts(path, text_column, table, bad, joined):
    """`(row, text)` of a CSV/TSV's text column (or the columns `joined` at training, joined the same way); empty
    cells are reported, as training reports them."""
    trained = joined["columns"] if joined else ["text"]  # the columns the model was trained on
    columns = list(trained) if text_column is None else list(text_column) if isinstance(text_column, (list, tuple)) \
        else [text_column]
    if text_column is not None and len(columns) != len(trained) and len(trained) > 1:
        source = "DataFrame" if isinstance(path, pd.DataFrame) else path
        raise ValueError(f"{source}: the model was trained on texts joined from {len(trained)} columns "
                         f"({trained}, separated by {joined['separator']!r}); pass text_column= with this file's "
                         "columns that hold them, in that order.")
    elif len(columns) > 1 and len(trained) == 1:
        raise ValueError(f"text_column={columns}: the model was trained on one text per example, not texts joined "
                         "from several columns; pass one column.")
    frame, name, _ = load_frame(path, text_columns=columns, bad=bad, **table)
    if columns[0] not in frame.columns and text_column is None and len(trained) == 1 and len(frame.columns) == 1:
        misread = header_hint(list(frame.columns), name)
        if "read as one column" in misread:  # "text;label" is not a column of texts, as training says too
            raise DataError(f"{name}:{misread}")
        columns = [frame.columns[0]]
        warnings.warn(f"{name}: its only column, {columns[0]!r}, is read as the texts and its first row as the "
                      f"column's name; pass text_column={columns[0]!r} to say so, or column_names=[{trained[0]!r}] if "
                      "the file has no header row (its first row is a text too).", UserWarning, stacklevel=3)
    missing = [column for column in columns if column not in frame.columns]
    if text_column is None and joined and missing:  # the user named no column: say which the model was trained on
        raise DataError(f"{name}: the model was trained on the texts of column(s) {columns}, which this file lacks "
                        f"(its columns are {list(frame.columns)}); pass text_column= with the column(s) that hold "
                        "them here.")
    require_columns(frame, {"text_column": columns}, name)
    pairs = []
    for row, values in zip(frame.index, frame[columns].itertuples(index=False)):
        empty = next((column for column, text in zip(columns, values) if pd.isna(text) or not str(text).strip()),
                     None)
        if empty is not None:
            bad.report(row_source(name, row), "missing or empty text", f"column {empty!r} is empty",
                       "fill it in, drop the row,")
            continue
        pairs.append((row_source(name, row), (joined["separator"] if joined else "").join(map(str, values))))
    return pairs
