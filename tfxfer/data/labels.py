"""Labels in tables: which task they pose, and their encoding as class indices, multi-hot vectors or targets.

The encoders take a table and its label columns, report bad rows through the loader's `BadInputs` policy, and return
the output names, the encoded labels of the rows they kept, and the mask of those rows. `Task.from_labels` picks one.
"""

import math
import numbers
import re

import numpy as np
import pandas as pd

from tfxfer.data.class_names import spaced_labels_notes, warn_of_joined_labels, warn_of_look_alikes
from tfxfer.data.errors import DataError
from tfxfer.data.tables import row_source


def is_missing(value):
    """Whether a cell is empty: None, NaN (any float type), pandas' NA or NaT."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


#: What spreadsheets and exports write in an empty label cell; a label that reads so is missing, not a class.
MISSING_MARKERS = frozenset({"nan", "na", "n/a", "null", "none", "#n/a", "<na>", "nat"})
_DECIMAL_COMMA = re.compile(r"\s*-?\d+,\d+\s*\Z")


def normalise_labels(frame, label_columns, source="DataFrame"):
    """The table with its label cells read as people write them: missing-value markers (`NaN`, `N/A`, `null`...) and
    blank cells as empty, and columns of numbers kept as text (or written with a decimal comma, `2,5`) as numbers.

    Returns:
        A copy of `frame` (the caller's table is not changed).

    Example:
        >>> normalise_labels(pd.DataFrame({"label": ["1,5", "2,5", "N/A", " "]}), ["label"])["label"].tolist()
        [1.5, 2.5, nan, nan]
    """
    frame = frame.copy()
    for name in label_columns:
        column = frame[name].map(lambda value: None if isinstance(value, str) and
                                 value.strip().lower() in MISSING_MARKERS | {""} else value).astype(object)
        present = [value for value in column if not is_missing(value)]
        if present and all(isinstance(value, str) for value in present):
            numbers = [_number(value) for value in present]
            if all(number is not None for number in numbers):
                _check_one_way_of_writing(present, source, name)
                converted = iter(numbers)
                column = column.map(lambda value: None if is_missing(value) else next(converted)).astype(object)
        if len(column) and column.map(_is_number).all():  # numbers again: pandas gives the column a numeric type
            frame[name] = pd.to_numeric(column)
        else:
            frame[name] = column
    return frame


def _check_one_way_of_writing(texts, source, column):
    """Raises where numbers written as text could be read two ways: a decimal comma beside a decimal point, or
    commas that may group thousands ("1,200": 1200 or 1.2?)."""
    commas = [text.strip() for text in texts if _DECIMAL_COMMA.match(text)]
    points = [text.strip() for text in texts if re.fullmatch(r"\s*-?\d*\.\d+\s*", text)]
    if commas and points:
        raise DataError(f"{source}: column {column!r} writes numbers with a decimal comma ({commas[0]!r}) and with a "
                        f"point ({points[0]!r}); write them one way.")
    if commas and all(re.fullmatch(r"-?\d{1,3},\d{3}", text) for text in commas):
        raise DataError(f"{source}: column {column!r} holds numbers such as {commas[0]!r}, which may be "
                        f"{commas[0].replace(',', '')} (a thousands separator) or {commas[0].replace(',', '.')} (a "
                        "decimal comma); write them without the thousands separator, or with a decimal point.")


def _number(text):
    """A number written as text (`"3"`, `"2.5"`, `"2,5"`), or None."""
    text = text.strip()
    if _DECIMAL_COMMA.match(text):
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _is_number(value):
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_list_like(value):
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))


def _class_key(value):
    """The class name a label value stands for: numbers without a spurious `.0`, strings without outer spaces."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if _is_number(value):
        value = value.item() if hasattr(value, "item") else value
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    return str(value).strip()


def _sorted_names(values):
    """Sorted class names; numerically when every label was a number, so "2" comes before "10"."""
    keys = {_class_key(value): value for value in values}
    if keys and all(_is_number(value) for value in keys.values()):
        return sorted(keys, key=lambda key: float(keys[key]))
    return sorted(keys)


def _binary(value):
    """0/1 (or False/True) as 0.0/1.0; anything else as None."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if _is_number(value) and value in (0, 1):
        return float(value)
    return None


def infer_task_type(frame, label_columns, delimiter, source):
    """Infers the task from the label columns, and raises where two readings are equally plausible.

    - several columns, all 0/1: multi-label, one column per class; several numeric columns: regression.
    - one column of lists (DataFrame), or of strings where some hold `delimiter` (`"cat|dog"`): multi-label.
    - one column of strings, booleans, or two whole numbers (0/1): multi-class.
    - one column of more than two whole numbers (classes 1, 2, 3, or ratings?), or of whole numbers stored as floats
      (`0.0`, `1.0`, as pandas reads an integer column with a gap): ambiguous, and the error asks for `task=`.
    - one column of other numbers: regression.

    Args:
        frame: The table.
        label_columns: The label column names.
        delimiter: The multi-label separator in strings, or None.
        source: The file or "DataFrame", for messages.

    Returns:
        One of `TASK_TYPES`.

    Raises:
        DataError: The labels fit no task, or fit two.
    """
    columns = [frame[name] for name in label_columns]
    if len(columns) > 1:
        present = [column[~column.map(is_missing)] for column in columns]
        if all(column.map(lambda value: _binary(value) is not None).all() for column in present):
            return "multilabel"
        if all(column.map(_is_number).all() for column in present):
            if all(column.map(lambda value: float(value).is_integer()).all() for column in present):  # a 2, or counts?
                name, values = next((name, column[column.map(_binary).isna()]) for name, column in
                                    zip(label_columns, present) if column.map(_binary).isna().any())
                raise DataError(f"{source}: the label columns hold whole numbers, not only 0/1: column {name!r} holds "
                                f"{_class_key(values.iloc[0])} ({row_source(source, values.index[0])}). 0/1 columns "
                                "are a multi-label task: correct that cell; whole-number targets: task='regression'.")
            return "regression"
        for name, column in zip(label_columns, present):
            bad = column[~column.map(_is_number)]
            if len(bad):
                raise DataError(
                    f"{source}: several label columns must all be 0/1 (multi-label) or all numbers (regression); "
                    f"column {name!r} holds {bad.iloc[0]!r} ({row_source(source, bad.index[0])})."
                )
    column = columns[0]
    values = column[~column.map(is_missing)]
    if values.map(_is_list_like).any():
        return "multilabel"
    if pd.api.types.is_bool_dtype(values):
        return "multiclass"
    if len(values) and values.map(_is_number).all():
        numbers = pd.to_numeric(values)
        finite = numbers[np.isfinite(numbers.to_numpy(dtype=float))]
        whole = len(finite) and (finite == finite.round()).all()
        if whole and finite.nunique() > 2:
            raise DataError(
                f"{source}: label column {label_columns[0]!r} holds whole numbers ({_sorted_names(finite)[:6]}): "
                "class numbers, or an ordered target such as a rating? Pass task='multiclass' or task='regression'."
            )
        if whole and (pd.api.types.is_integer_dtype(numbers) or len(values) < len(column)):  # floats for a gap
            return "multiclass"
        if whole:
            raise DataError(
                f"{source}: label column {label_columns[0]!r} holds whole numbers stored as floats "
                f"(e.g. {float(finite.iloc[0])!r}); pass task='multiclass' or task='regression'."
            )
        return "regression"
    numeric = pd.to_numeric(values.map(lambda value: value.strip() if isinstance(value, str) else value), "coerce")
    if numeric.isna().any() and numeric.notna().mean() >= 0.8 and (numeric.dropna() % 1 != 0).any():
        others = values[numeric.isna()]  # a regression target with '?' or '-' for the missing ones
        raise DataError(f"{source}: label column {label_columns[0]!r} holds numbers but for {len(others)} cell(s) "
                        f"such as {others.iloc[0]!r} ({row_source(source, others.index[0])}). If those mark missing "
                        "targets, pass task='regression' (on_bad='skip' leaves their rows out); for classes, pass "
                        "task='multiclass'.")
    if delimiter and values.map(lambda value: isinstance(value, str) and delimiter in value).any():
        return "multilabel"
    return "multiclass"


def _missing_label(bad, source, index, column, fix="fill it in, drop the row,"):
    bad.report(row_source(source, index), "missing label", f"column {column!r} is empty", fix)


def encode_multiclass(frame, label_columns, class_names, delimiter, source, bad):
    if len(label_columns) != 1:
        raise DataError(f"{source}: a multi-class task takes one label column; got {label_columns}.")
    column_name = label_columns[0]
    column = frame[column_name]
    keys, keep = [], np.ones(len(frame), dtype=bool)
    for position, (index, value) in enumerate(column.items()):
        key = None if is_missing(value) else _class_key(value)
        if not key:
            _missing_label(bad, source, index, column_name)
            keep[position] = False
        keys.append(key)
    if class_names is None:
        names = _sorted_names(value for value, kept in zip(column, keep) if kept)
        warn_of_look_alikes(names, source, column_name)
        warn_of_joined_labels(names, source, column_name)
    else:
        names = [_class_key(name) for name in class_names]
    bad.notes += spaced_labels_notes(column, column_name)
    lookup = {name: position for position, name in enumerate(names)}
    labels = []
    for position, (index, key) in enumerate(zip(column.index, keys)):
        if not keep[position]:
            continue
        if key not in lookup:
            bad.report(row_source(source, index), "label not in class_names", f"{key!r} is not one of {names}",
                       "add it to class_names, fix the label,")
            keep[position] = False
            continue
        labels.append(lookup[key])
    return names, np.asarray(labels, dtype=np.int32), keep


def _check_delimiter(column, name, delimiter, source):
    """Raises when no label string holds `delimiter` but some hold another usual one (`;` or `,`): each cell would
    be one label, `red;even` a class of its own."""
    strings = column[column.map(lambda value: isinstance(value, str))]
    if strings.empty or (delimiter and strings.str.contains(delimiter, regex=False).any()):
        return
    for other in [";", ",", "|"]:
        holding = strings[strings.str.contains(other, regex=False)]
        if other != delimiter and len(holding):
            raise DataError(f"{source}: multi-label strings are split at label_delimiter={delimiter!r}, which no cell "
                            f"of {name!r} holds; {len(holding)} hold {other!r} (e.g. {holding.iloc[0]!r}, "
                            f"{row_source(source, holding.index[0])}): pass label_delimiter={other!r}.")


def encode_multilabel(frame, label_columns, class_names, delimiter, source, bad):
    if len(label_columns) > 1:
        return _encode_multilabel_columns(frame, label_columns, class_names, source, bad)
    column_name = label_columns[0]
    _check_delimiter(frame[column_name], column_name, delimiter, source)
    keep = np.ones(len(frame), dtype=bool)
    row_labels = []
    for position, (index, value) in enumerate(frame[column_name].items()):
        if _is_list_like(value):
            tokens = [_class_key(item) for item in value]
        elif is_missing(value) or not str(value).strip():
            _missing_label(bad, source, index, column_name, "fill it in (an example with none of the classes takes "
                           "one 0/1 column per class, or an empty list in a DataFrame), drop the row,")
            keep[position] = False
            row_labels.append(None)
            continue
        elif delimiter and isinstance(value, str):
            tokens = [token.strip() for token in value.split(delimiter)]
        else:
            tokens = [_class_key(value)]
        row_labels.append([token for token in tokens if token])
    if class_names is None:
        names = sorted({token for tokens in row_labels if tokens for token in tokens})
        warn_of_look_alikes(names, source, column_name)
    else:
        names = [_class_key(name) for name in class_names]
    lookup = {name: position for position, name in enumerate(names)}
    labels = []
    for position, (index, tokens) in enumerate(zip(frame.index, row_labels)):
        if not keep[position]:
            continue
        unknown = [token for token in tokens if token not in lookup]
        if unknown:
            bad.report(row_source(source, index), "label not in class_names", f"{unknown[0]!r} is not one of {names}",
                       "add it to class_names, fix the label,")
            keep[position] = False
            continue
        vector = np.zeros(len(names), dtype=np.float32)
        vector[[lookup[token] for token in tokens]] = 1.0
        labels.append(vector)
    return names, np.asarray(labels, dtype=np.float32).reshape(-1, len(names)), keep


def _encode_multilabel_columns(frame, label_columns, class_names, source, bad):
    if class_names is not None and sorted(map(str, class_names)) != sorted(map(str, label_columns)):
        raise ValueError(
            f"With one 0/1 column per class, class_names must name those columns; got class_names={class_names} "
            f"and label_column={label_columns}."
        )
    order = [str(name) for name in (class_names or label_columns)]
    by_name = {str(name): name for name in label_columns}
    columns = [frame[by_name[name]].tolist() for name in order]
    keep = np.ones(len(frame), dtype=bool)
    labels = []
    for position, index in enumerate(frame.index):
        vector = np.zeros(len(order), dtype=np.float32)
        for slot, name in enumerate(order):
            value = columns[slot][position]
            if is_missing(value):
                _missing_label(bad, source, index, by_name[name])
                keep[position] = False
                break
            number = _binary(value)
            if number is None:
                bad.report(row_source(source, index), "label not 0 or 1", f"column {name!r} holds {value!r}",
                           "fix the value,")
                keep[position] = False
                break
            vector[slot] = number
        if keep[position]:
            labels.append(vector)
    return order, np.asarray(labels, dtype=np.float32).reshape(-1, len(order)), keep


def encode_regression(frame, label_columns, class_names, delimiter, source, bad):
    keep = np.ones(len(frame), dtype=bool)
    targets = np.zeros((len(frame), len(label_columns)), dtype=np.float64)
    for slot, name in enumerate(label_columns):
        column = frame[name]
        numbers_ = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        for position, (index, value) in enumerate(column.items()):
            if not keep[position]:
                continue
            if is_missing(value) or (isinstance(value, str) and not value.strip()):
                bad.report(row_source(source, index), "missing target", f"column {name!r} is empty",
                           "fill it in, drop the row,")
            elif math.isnan(numbers_[position]):
                bad.report(row_source(source, index), "target not a number", f"column {name!r} holds {value!r}",
                           "fix the value,")
            elif not math.isfinite(numbers_[position]):
                bad.report(row_source(source, index), "target not finite", f"column {name!r} holds {value!r}",
                           "fix the value,")
            else:
                continue
            keep[position] = False
        targets[:, slot] = numbers_
    labels = targets[keep].astype(np.float32)
    if len(label_columns) == 1:
        labels = labels[:, 0]
    return [str(name) for name in label_columns], labels, keep
