"""Class names that may not say what their writer meant: one name written two ways ("Spam", "spam"; composed and
decomposed "café"; "ham " beside "ham"), or several labels joined into one ("a,b" beside "a" and "b")."""

import unicodedata
import warnings


def look_alikes(names, key):
    """The pairs `(earlier, later)` of `names` that `key` maps to one value: one name written two ways.

    Example:
        >>> list(look_alikes(["Spam", "ham", "spam"], str.casefold))
        [('Spam', 'spam')]
    """
    seen = {}
    for name in names:
        if key(name) in seen:
            yield seen[key(name)], name
        seen[key(name)] = name


def warn_of_look_alikes(names, source, column):
    """Warns of labels that differ only in case or Unicode form ("Spam", "spam"): two classes, which may be one."""
    for first, second in look_alikes(map(str, names), lambda name: unicodedata.normalize("NFC", name).casefold()):
        warnings.warn(f"{source}: labels {first!r} and {second!r} in column {column!r} differ only in case or "
                      "Unicode form: they are two classes; make them one label if they are one.", stacklevel=6)


def warn_of_joined_labels(names, source, column):
    """Warns of class names that join another class name with "," or ";" ("a,b" beside "a"; "b" need not be a class
    alone): tags of a multi-label task read as one class per combination.

    Example:
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_of_joined_labels(["a", "a,b", "b"], "tags.csv", "tags")
        >>> "If a row may have several labels, pass label_delimiter=','" in str(caught[0].message)
        True
    """
    names = [str(name) for name in names]
    for separator in (",", ";"):
        joined = [name for name in names if separator in name
                  and any(part.strip() in names for part in name.split(separator))]
        if joined:
            warnings.warn(f"{source}: labels such as {joined[0]!r} in column {column!r} join other labels with "
                          f"{separator!r}, and each combination is a class of its own. If a row may have several "
                          f"labels, pass label_delimiter={separator!r} (multi-label).", stacklevel=6)
            return


def spaced_labels_notes(column, name):
    """The data's note (a list of one, or empty) for labels written with spaces around them, which are read without
    (`"ham "` as `"ham"`).

    Example:
        >>> spaced_labels_notes(["ham", "ham ", " spam", None], "label")
        ["2 label(s) in column 'label' have spaces around them (e.g. 'ham '): read without them, as 'ham'"]
    """
    spaced = [value for value in column if isinstance(value, str) and value != value.strip()]
    return [f"{len(spaced)} label(s) in column {name!r} have spaces around them (e.g. {spaced[0]!r}): read without "
            f"them, as {spaced[0].strip()!r}"] if spaced else []
