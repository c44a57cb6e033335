"""CSV/TSV files and DataFrames as tables of examples: strict decoding, exact rows, named columns."""

import csv
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tfxfer.data.columns import SEPARATORS, check_unique_columns
from tfxfer.data.encodings import binary_kind, decode_bytes, is_utf16
from tfxfer.data.errors import DataError
from tfxfer.data.stratify import SPLIT_ALIASES

_TAB_EXTENSIONS = (".tsv", ".tab")
#: The suffixes of the files read as tables (CSV and TSV).
TABLE_SUFFIXES = (".csv", *_TAB_EXTENSIONS)


def table_files(inputs):
    """The CSV/TSV files among `inputs` (paths that exist and name a table), e.g. to refuse them for an image model.

    Example:
        >>> table_files(["photo.jpg", 3])
        []
    """
    return [item for item in inputs if isinstance(item, (str, os.PathLike)) and os.path.isfile(item)
            and str(item).lower().endswith(TABLE_SUFFIXES)]


def _guess_separator(path, text):
    suffix = path.suffix.lower()
    if suffix in _TAB_EXTENSIONS:
        return "\t"
    if suffix == ".csv":
        return ","
    first_line = text.split("\n", 1)[0]
    return "\t" if "\t" in first_line else ","


def _tab_quoting(text):
    """How to read tab-separated `text`: quoting off, unless its quotes are all CSV quoting, as Excel's "Text (Tab
    delimited)" writes them (a field that holds a quote, tab or line break wrapped in quotes, its quotes doubled):
    then every field that starts with a quote ends with one right before a tab or the row's end."""
    if not re.search(r'(?:^|\t)"', text, re.MULTILINE):
        return csv.QUOTE_NONE
    try:
        for _ in csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=True):
            pass
    except csv.Error:  # a quote that opens a field but does not close it there: an ordinary character
        return csv.QUOTE_NONE
    return csv.QUOTE_MINIMAL


def read_table(path, *, sep=None, column_names=None, encoding="utf-8", quoting=None, text_columns=()):
    """Reads a CSV or TSV file into a DataFrame without losing or inventing rows.

    Tab-separated files are read with `csv.QUOTE_NONE`: in TSV data sets (SMS Spam Collection, GLUE) a double quote
    is an ordinary character, and treating it as a quote merges rows silently. Those whose quotes are all CSV
    quoting, as Excel's "Text (Tab delimited)" writes them, are read with it. Comma-separated files use standard
    CSV quoting. Rows end at `\\n`, `\\r\\n` or `\\r` only, so characters that Python's `str.splitlines` treats as line
    breaks (U+0085, U+2028) stay inside their row. Only empty fields are missing values: a text such as `"NA"` or
    `"null"` stays text.

    Args:
        path: The file.
        sep: Field separator; by default a tab for `.tsv`/`.tab`, a comma for `.csv`, otherwise a tab if the first
            line has one.
        column_names: Names of the columns when the file has no header row; None when it has one.
        encoding: The file's encoding (strict; a UTF-8 byte order mark is dropped).
        quoting: A `csv.QUOTE_*` constant to override the choice above.
        text_columns: Columns to keep as strings, never parsed as numbers (`"007"` stays `"007"`).

    Returns:
        A DataFrame with a RangeIndex (`df.iloc[i]` is the i-th row of data). The loaders' messages number the
        rows as a spreadsheet does instead: the header is row 1 (see `row_names`).

    Raises:
        DataError: The file is missing, empty, not decodable, not text at all (an image, an archive, a workbook:
            the message says what to pass instead), has duplicate column names or malformed rows.

    Example:
        >>> import os
        >>> os.makedirs(tmp_dir, exist_ok=True)
        >>> with open(f"{tmp_dir}/sms.tsv", "w") as file:
        ...     _ = file.write('ham\\tsee you at "5\\nspam\\tWIN a prize\\n')
        >>> read_table(f"{tmp_dir}/sms.tsv", column_names=["label", "text"])["text"].tolist()
        ['see you at "5', 'WIN a prize']
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; pass the path of a CSV/TSV file, a folder, or a DataFrame.") from None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error.strerror}).") from None
    check_text_bytes(path, raw, encoding)
    text = decode_bytes(raw, encoding, path)
    if not text.strip():
        raise DataError(f"{path} is empty; it needs a header row and at least one row of data.")
    sep = sep or _guess_separator(path, text)
    if quoting is None:
        quoting = _tab_quoting(text) if sep == "\t" else csv.QUOTE_MINIMAL
    options = dict(sep=sep, quoting=quoting, keep_default_na=False, na_values=[""], skip_blank_lines=False)
    names, first = None, 2 if column_names is None else 1
    try:
        header = pd.read_csv(io.StringIO(text), header=None, nrows=1, dtype=str, **options).iloc[0].tolist()
        if column_names is None:
            names = ["" if pd.isna(name) else str(name) for name in header]
        else:
            names = list(column_names)
            if len(names) != len(header):
                raise DataError(f"{path}: column_names gives {len(names)} names ({names}) but the file has "
                                f"{len(header)} columns; name every column, in order.")
        # Excel saves columns that were once used as empty ones without a name: those are dropped, not an error.
        blank = [position for position, name in enumerate(names) if name == ""]
        names = [name or f"\0unnamed {position}" for position, name in enumerate(names)]
        check_unique_columns(names, path)
        dtype = {name: str for name in text_columns if name in names}
        with warnings.catch_warnings():  # pandas cuts a row's extra fields off, and only warns
            warnings.filterwarnings("error", "Length of header or names does not match", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), header=None, skiprows=first - 1, names=names, index_col=False,
                                dtype=dtype or None, **options)
    except (pd.errors.ParserError, pd.errors.ParserWarning) as error:
        long_row = _long_row(path, text, options, len(names), first) if names else None
        raise DataError(long_row or f"{path}: {str(error).strip()}{_separator_advice(text, options)}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} has no rows of data.") from None
    for position in blank:
        column = names[position]
        if frame[column].notna().any():
            raise DataError(f"{path}: column {position + 1} has values but no name in the header row; name it.")
        frame = frame.drop(columns=column)
    # Blank rows (blank lines, or cells all empty) are dropped, but counted, so that messages name rows as a
    # spreadsheet numbers them, and listed, so that the callers can say they were left out.
    filled = frame.notna().any(axis=1).to_numpy()
    first = 2 if column_names is None else 1
    frame = frame[filled].reset_index(drop=True)
    frame.attrs["row_numbers"] = (np.flatnonzero(filled) + first).tolist()
    frame.attrs["blank_rows"] = (np.flatnonzero(~filled) + first).tolist()
    return frame


_INSTEAD = {
    "a zip archive": "If it is an Excel workbook (.xlsx), save it as CSV (File > Save As > CSV UTF-8); if it holds "
                     "images, unpack it and pass the folder of class folders.",
    "a gzip archive": "Unpack it and pass the folder of class folders or the CSV inside.",
    "an old Excel (.xls) or Office file": "Save it as CSV from Excel (File > Save As > CSV UTF-8).",
    "a binary file": "Pass the folder that holds the class folders of images, or a CSV/TSV file of paths or texts.",
}


def check_text_bytes(path, raw, encoding=None):
    """Raises when a table's bytes (its first kilobytes will do) are clearly not text: an image, an archive, a
    workbook, or UTF-16 that `encoding` does not name. The message says what to pass instead.

    Example:
        >>> check_text_bytes("photo.jpg", b"\\xff\\xd8\\xff\\xe0...")
        Traceback (most recent call last):
        ...
        tfxfer.data.errors.DataError: photo.jpg is a JPEG image, not a CSV/TSV table. Pass the folder that holds ...
    """
    kind = None if is_utf16(encoding) else binary_kind(raw)
    if kind is not None and kind.startswith("UTF-16"):
        raise DataError(f"{path} looks like {kind}.")
    if kind is not None:
        raise DataError(f"{path} is {kind}, not a CSV/TSV table. {_INSTEAD.get(kind, _INSTEAD['a binary file'])}")


def _long_row(path, text, options, width, first):
    """The first row with more fields than the header (pandas cuts them off), and the fix; None if none or unknown."""
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=options["sep"], quoting=options["quoting"])
        long = ((number, len(record)) for number, record in enumerate(reader, start=1)
                if number >= first and len(record) > width)
        number, fields = next(long)
    except (csv.Error, TypeError, StopIteration):  # none; a field over csv's size limit, a separator of 2 characters
        return None
    header = "the header row has" if first == 2 else "the column_names are"
    return f"{path}, row {number} has {fields} fields where {header} {width}" + _separator_advice(text, options, True)


def _separator_advice(text, options, quote=False):
    sep = options["sep"]
    header = text.splitlines()[0]
    other = next((mark for mark in SEPARATORS if mark != sep and mark in header and sep not in header), None)
    if other is not None:
        return f" (separated by {sep!r}); the header row is separated by {other!r}, so pass sep={other!r}."
    if quote:
        why = ("; quotes are ordinary characters in this file, as a row opens one it does not close" if
               options["quoting"] == csv.QUOTE_NONE else "")
        return (f" (separated by {sep!r}{why}): a value that holds {sep!r} must be in double quotes, closed, as Excel "
                "and pandas write it; or pass the separator the file uses as sep=.")
    return f"; check the separator (sep={sep!r}) and quoting, or pass column_names= if the file has no header row."


def row_source(source, row):
    """How messages name a row: the file (or "DataFrame") and the row's name in `load_frame`'s index."""
    return f"{source}, {row}"


def row_names(frame, first_row=None):
    """The names messages give a table's rows, as a user finds them.

    A file's rows are numbered as a spreadsheet numbers them: `first_row` is 2 when the header is row 1, 1 when the
    file has no header. A DataFrame's rows (`first_row=None`) are named by their index label when the index is a
    plain 0, 1, 2... range, else by position and label (an index can repeat labels).

    Example:
        >>> row_names(pd.DataFrame({"a": [1, 2]}), first_row=2)
        ['row 2', 'row 3']
        >>> row_names(pd.DataFrame({"a": [1, 2]}, index=[7, 7]))
        ['row at position 0 (index label 7)', 'row at position 1 (index label 7)']
    """
    if first_row is not None:
        return [f"row {first_row + position}" for position in range(len(frame))]
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return [f"row {label}" for label in index]
    return [f"row at position {position} (index label {label!r})" for position, label in enumerate(index)]


def is_folder(source):
    """Whether a loader's `source` is a folder (else a table file or a DataFrame).

    Raises:
        ValueError: `source` is neither a path nor a DataFrame.
    """
    if isinstance(source, pd.DataFrame):
        return False
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"source must be a folder, a CSV/TSV path or a pandas DataFrame; got {type(source).__name__}.")
    return Path(source).is_dir()


def load_frame(source, *, sep, column_names, encoding, text_columns, bad):
    """A table from a CSV/TSV path or a DataFrame, with a name for messages and the folder relative paths start at.

    Args:
        source: A path or a pandas DataFrame (its values are read, not copied; its index is left as it is).
        sep: See `read_table`.
        column_names: See `read_table`.
        encoding: See `read_table`.
        text_columns: Columns to keep as strings.
        bad: The `BadInputs` that records the blank rows `read_table` dropped as left out.

    Returns:
        `(frame, name, folder)`: the rows, indexed by the names messages give them (see `row_names`); name is the
        path or `"DataFrame"`; folder is the file's folder, or None.

    Raises:
        DataError: See `read_table`; duplicate column names in a DataFrame.
    """
    if isinstance(source, pd.DataFrame):
        check_unique_columns(list(source.columns), "DataFrame")
        frame, name, folder, first_row = source, "DataFrame", None, None
    else:
        path = Path(source)
        frame = read_table(path, sep=sep, column_names=column_names, encoding=encoding, text_columns=text_columns)
        name, folder, first_row = path, path.parent, 2 if column_names is None else 1
        for number in frame.attrs["blank_rows"]:  # dropped, and said
            bad.note(f"{name}, row {number}", "blank row", "no value in any column")
    if frame.empty:
        raise DataError("The DataFrame has no rows." if name == "DataFrame" else
                        f"{name} has no rows of data, only a header row.")
    names = [f"row {number}" for number in frame.attrs["row_numbers"]] if "row_numbers" in frame.attrs else \
        row_names(frame, first_row)
    frame = frame.set_axis(names, axis="index")  # a copy: the caller's DataFrame keeps its index
    return frame, name, folder


def split_ids(frame, split_column, source, bad):
    """Each row's split from a split column (`train`, `val`/`valid`/`validation`/`dev`, `test`, any case).

    Args:
        frame: The table.
        split_column: The column, or None when the source has no split column.
        source: The file or "DataFrame", for messages.
        bad: The `BadInputs` policy, for rows with another value.

    Returns:
        `(ids, keep)`: a list with a split id (or None) per row, and a boolean mask of the rows kept.
    """
    ids = [None] * len(frame)
    keep = np.ones(len(frame), dtype=bool)
    if split_column is None:
        return ids, keep
    for position, (index, value) in enumerate(frame[split_column].items()):
        ids[position] = SPLIT_ALIASES.get(str(value).strip().lower())
        if ids[position] is None:
            held = "is empty" if pd.isna(value) or not str(value).strip() else f"holds {value!r}"
            bad.report(row_source(source, index), "unknown split", f"column {split_column!r} {held}, not "
                       "train, val/validation/dev or test", "fix the value,")
            keep[position] = False
    return ids, keep
