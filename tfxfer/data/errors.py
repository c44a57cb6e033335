"""Bad input: a clear error that names the culprit, or a counted skip, never a silent drop."""

import collections
import dataclasses
import os

ON_BAD_CHOICES = ("error", "skip")


class DataError(ValueError):
    """A data source cannot be used as it is; the message names the file, row or column and says what to do."""


def printable(text):
    """`text` with the bytes of a file name that is not UTF-8 (which Python holds as surrogate escapes) written as
    `\\xNN`, as `ls -b` shows them: terminals, reports and files hold only UTF-8.

    Example:
        >>> printable("caf\\udce9.png"), printable("café.png")
        ('caf\\\\xe9.png', 'café.png')
    """
    return os.fsencode(text).decode("utf-8", "backslashreplace")


@dataclasses.dataclass(frozen=True)
class Skipped:
    """One file or row that the loader left out, and why.

    Attributes:
        source: The file, or the table and row (`"labels.csv, row 17"`), or the folder.
        reason: A short fixed phrase to group by, e.g. `"not a decodable image"`, `"missing label"`.
        detail: The specifics, e.g. the decoder's message or the offending value.
    """

    source: str
    reason: str
    detail: str = ""

    def __str__(self):
        return printable(f"{self.source}: {self.reason}" + (f" ({self.detail})" if self.detail else ""))


class BadInputs:
    """Applies the `on_bad` policy to bad files and rows, and keeps the list of what was skipped.

    With `on_bad="error"` the first bad item raises `DataError`; with `"skip"` it is recorded and the caller leaves it
    out. Some items (files with an extension the loader does not read, hidden files) are always listed and never an
    error: they were never candidates, and listing them keeps the count of what was not read honest.

    Attributes:
        on_bad: `"error"` or `"skip"`.
        skipped: The `Skipped` records, in the order they were found.
        notes: Things about items that were used, worth knowing (e.g. JPEGs whose EXIF rotation is not applied).
    """

    def __init__(self, on_bad):
        if on_bad not in ON_BAD_CHOICES:
            raise ValueError(f'on_bad must be "error" or "skip"; got {on_bad!r}.')
        self.on_bad = on_bad
        self.skipped = []
        self.notes = []

    def report(self, source, reason, detail="", fix=""):
        """Raises for the first bad item, or records it as skipped.

        Args:
            source: The file or row.
            reason: Short fixed phrase (see `Skipped.reason`).
            detail: Specifics for the message.
            fix: What the user can do besides `on_bad="skip"`, e.g. `"remove it"`.

        Raises:
            DataError: When `on_bad` is `"error"`.
        """
        if self.on_bad == "error":
            what = f"{reason} ({detail})" if detail else reason
            fix = f"{fix} or " if fix else ""
            raise DataError(f'{source}: {what}; {fix}pass on_bad="skip" to leave it out and count it.')
        self.skipped.append(Skipped(str(source), reason, detail))

    def note(self, source, reason, detail=""):
        """Records an item that was never read (e.g. an unsupported extension), whatever the policy."""
        self.skipped.append(Skipped(str(source), reason, detail))


def count_reasons(skipped):
    """Counts `Skipped` records by reason, most common first."""
    return dict(collections.Counter(item.reason for item in skipped).most_common())
