"""Bytes to text: strict decoding that names the bad byte, the codec for an encoding's name, and what a file is
when it is no text (an image, an archive, a workbook, UTF-16 without its byte order mark)."""

import codecs

from tfxfer.data.errors import DataError

#: Byte order marks, the encoding each one says, and the codecs (as `codecs.lookup` names them) that read it.
_BYTE_ORDER_MARKS = ((b"\xef\xbb\xbf", "UTF-8", ("utf-8-sig",)),
                     (b"\xff\xfe", "UTF-16", ("utf-16", "utf-16-le", "utf-32", "utf-32-le")),
                     (b"\xfe\xff", "UTF-16", ("utf-16", "utf-16-be", "utf-32-be")))


def decode_bytes(raw, encoding, source):
    """Decodes a file's bytes strictly; a bad byte is an error that names the file, byte offset and line.

    A UTF-8 byte order mark (as Excel writes) is dropped. A byte order mark that contradicts `encoding` is an error:
    the text would decode to something else, such as `ï»¿` before the first column's name.

    Args:
        raw: The file's bytes.
        encoding: A Python codec name, e.g. `"utf-8"` or `"latin-1"`.
        source: The file, for the message.

    Returns:
        The text.

    Raises:
        DataError: A byte sequence is not valid in `encoding`, or the bytes start with another encoding's byte order
            mark.
        ValueError: `encoding` is not a codec.
    """
    try:
        codec = codecs.lookup(codec_for(encoding)).name
        marked = marked_encoding(raw, encoding)
        if marked:
            raise DataError(f"{source} starts with a {marked} byte order mark, so it is {marked} text, not "
                            f"{encoding}: pass encoding='{marked.lower()}'.")
        if codec != "utf-8-sig" and not codec.startswith(("utf-16", "utf-32")):
            _check_not_utf8(raw, encoding, source)
        return raw.decode(codec).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise DataError(f"{source}: {describe_decode_error(raw, error, encoding)}; {_ENCODING_ADVICE}") from None
    except LookupError:
        raise ValueError(f"encoding={encoding!r} is not a Python codec; use e.g. 'utf-8' or 'latin-1'.") from None


def marked_encoding(raw, encoding):
    """The encoding whose byte order mark `raw` starts with, where `encoding` does not read that mark; else None.

    Example:
        >>> marked_encoding("bees".encode("utf-16"), "utf-8"), marked_encoding("bees".encode("utf-16"), "utf-16")
        ('UTF-16', None)
    """
    codec = codecs.lookup(codec_for(encoding)).name
    return next((name for mark, name, codecs_of_mark in _BYTE_ORDER_MARKS
                 if raw.startswith(mark) and codec not in codecs_of_mark), None)


def _check_not_utf8(raw, encoding, source):
    """Raises when bytes given with a single-byte `encoding` are UTF-8 text with non-ASCII characters: decoded so,
    '£' becomes 'Â£' in training and not in serving, silently (text that is not UTF-8 almost never decodes as it)."""
    if raw.isascii():
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    character = next(character for character in text if not character.isascii())
    line = text.count("\n", 0, text.index(character)) + 1
    misread = character.encode("utf-8").decode(encoding, errors="replace")
    raise DataError(f"{source} is UTF-8 text ({character!r} on line {line}), which encoding={encoding!r} would read "
                    f"as {misread!r}: leave encoding= out (UTF-8 is the default), or pass encoding='utf-8'.")


#: What to pass for a file that did not decode: the encodings Excel writes.
_ENCODING_ADVICE = ("pass encoding= with the file's encoding, e.g. encoding='cp1252' for files saved by Excel on "
                    "Windows (or 'latin-1', which reads any byte but turns cp1252's quotes and euro sign into control "
                    "characters).")


def codec_for(encoding):
    """The codec to decode with: UTF-8 drops a byte order mark (as Excel writes one)."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def describe_decode_error(raw, error, encoding):
    """Where and why bytes are not valid text: byte offset, line, the byte itself."""
    line = raw.count(b"\n", 0, error.start) + 1
    return (f"byte offset {error.start} (line {line}) is not valid {encoding} ({error.reason}, byte "
            f"0x{raw[error.start]:02x})")


#: What a file starts with, for files that are no text but are passed as text.
_SIGNATURES = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"GIF8", "a GIF image"),
               (b"BM", "a BMP image"), (b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "a gzip archive"),
               (b"%PDF", "a PDF document"), (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) or Office file"),
               (b"\x89HDF", "an HDF5 file"), (b"\x93NUMPY", "a NumPy array file"))


def is_utf16(encoding):
    """Whether `encoding` names UTF-16 (whose text holds NULs), in any of Python's spellings."""
    return bool(encoding) and str(encoding).lower().replace("_", "-").startswith(("utf-16", "utf16"))


def binary_kind(raw):
    """What a file's bytes are when they are clearly not text (an image, an archive, a workbook), else None.

    Example:
        >>> binary_kind(b"GIF89a..."), binary_kind(b"label,text")
        ('a GIF image', None)
    """
    for signature, kind in _SIGNATURES:
        if raw.startswith(signature):
            return kind
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "a WebP image"
    if len(raw) > 262 and raw[257:262] == b"ustar":
        return "a tar archive"
    if b"\0" in raw[:4096] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # NULs are no text (UTF-16 aside)
        sample = raw[:4096 - 4096 % 2]
        for order, zeros, letters in (("le", sample[1::2], sample[0::2]), ("be", sample[0::2], sample[1::2])):
            if zeros.count(0) >= 0.9 * len(zeros) and letters.count(0) == 0:  # ASCII letters, each beside a NUL
                return f"UTF-16 text without a byte order mark (pass encoding='utf-16-{order}')"
        return "a binary file"
    return None
