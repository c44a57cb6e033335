"""The EXIF orientation of JPEG files, which tfxfer counts but does not apply (as TensorFlow's decoders do not)."""

import struct

#: A JPEG file's first two bytes (its start-of-image marker).
_JPEG_START = b"\xff\xd8"


def exif_orientation(path):
    """The EXIF orientation tag of a JPEG file (1 is upright; 2-8 a flip or rotation), or None when it has none.

    tfxfer does not apply it, in training as in serving: TensorFlow's decoders ignore it, as
    `keras.utils.image_dataset_from_directory` does. The loaders count the files that carry a rotation.

    Example:
        >>> exif_orientation(data.examples("train")[0][0]) is None  # a PNG
        True
    """
    with open(path, "rb") as file:
        if file.read(2) != _JPEG_START:
            return None
        while True:  # segment by segment, reading only APP1's: EXIF may come after large ICC or XMP segments
            header = file.read(4)
            if len(header) < 4 or header[0] != 0xFF or header[1] == 0xDA:  # the end, or the start of scan
                return None
            marker, length = header[1], struct.unpack(">H", header[2:4])[0]
            if marker != 0xE1:
                file.seek(length - 2, 1)
                continue
            segment = file.read(length - 2)
            if segment.startswith(b"Exif\0\0") and len(segment) >= 14:
                return _orientation(segment[6:])


def _orientation(tiff):
    """The orientation tag (0x0112) of an EXIF block's first image directory, or None."""
    order = "<" if tiff[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", tiff[4:8])[0]
    if offset + 2 > len(tiff):
        return None
    for entry in range(struct.unpack(order + "H", tiff[offset:offset + 2])[0]):
        start = offset + 2 + 12 * entry
        if start + 12 > len(tiff):
            return None
        if struct.unpack(order + "H", tiff[start:start + 2])[0] == 0x0112:
            return struct.unpack(order + "H", tiff[start + 8:start + 10])[0]
    return None
