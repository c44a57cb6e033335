"""A table's columns as callers name them: each name once, each found (or the near miss named), none named twice."""

from tfxfer.data.errors import DataError

#: Where a misread header row may be split, the likeliest first.
SEPARATORS = (";", "\t", "|", ",")


def check_unique_columns(names, source):
    """Raises when a column name appears twice: which one a label or text refers to would be a guess.

    Raises:
        DataError: Naming the duplicate column and the source.
    """
    seen = set()
    for position, name in enumerate(names):
        if name in seen:
            raise DataError(
                f"{source}: column name {name!r} appears more than once (again at position {position}); rename the "
                "columns so that each name is unique."
            )
        seen.add(name)


def require_columns(frame, columns, source):
    """Raises when a column the caller named is not in the table.

    Args:
        frame: The table.
        columns: `{argument: [column names]}`, e.g. `{"label_column": ["label"]}`.
        source: The file or "DataFrame", for the message.

    Raises:
        DataError: Naming the argument and the missing column, and listing the columns that exist; or naming two
            arguments that name one column.
    """
    available, named = list(frame.columns), {}
    for argument, names in columns.items():
        for name in names:
            if named.setdefault(name, argument) != argument:  # a path, a label or a split: not two of them
                raise DataError(f"{source}: {named[name]}={name!r} and {argument}={name!r} name the same column; "
                                "each column is read as one thing: name another.")
            spaced = [column for column in available if str(column).strip() == name]
            if name not in available and spaced:  # a header as spreadsheets leave it: "text " for text
                raise DataError(f"{source}: {argument}={name!r} is not a column, but {spaced[0]!r} is, with spaces "
                                f"in its name; pass {argument}={spaced[0]!r}, or remove the spaces from the header.")
            cased = [column for column in available if str(column).strip().casefold() == str(name).casefold()]
            if name not in available and cased:  # "Text" for text: names are matched exactly, as pandas does
                raise DataError(f"{source}: {argument}={name!r} is not a column, but {cased[0]!r} is (names are "
                                f"matched with their case); pass {argument}={cased[0]!r}.")
            if name not in available:
                raise DataError(f"{source}: {argument}={name!r} is not a column; the columns are {available}."
                                f"{header_hint(available, source)}")


def header_hint(columns, source):
    """Why the header may have been misread: another separator, or no header (a byte order mark that another
    encoding= would read as text is refused when the file is decoded)."""
    if source == "DataFrame":
        return ""
    if len(columns) == 1:
        separator = next((sep for sep in SEPARATORS if sep in str(columns[0])), None)
        if separator is not None:
            return (f" The header was read as one column: the file is separated by {separator!r}, so pass "
                    f"sep={separator!r}.")
    return " If the file has no header row, pass column_names=[...]."


def as_column_list(columns, argument):
    """Normalises a column argument (one name or a list of names) to a non-empty list."""
    if isinstance(columns, (list, tuple)):
        if not columns:
            raise ValueError(f"{argument} must name at least one column; got {columns!r}.")
        twice = [name for position, name in enumerate(columns) if name in columns[:position]]
        if twice:  # one output or text column would silently stand for two
            raise ValueError(f"{argument} names {twice[0]!r} twice ({list(columns)}); name each column once.")
        return list(columns)
    return [columns]
