"""Image bytes to model inputs, and a parallel check that finds the files that will not decode."""

import functools
import os
import re

import numpy as np
import tensorflow as tf

from tfxfer.data.encodings import binary_kind
from tfxfer.data.errors import DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"BM", "BMP"))
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Largest image (width x height) that is decoded: Pillow's threshold for a decompression bomb. A 400 KB PNG can
#: declare 20000 x 20000 pixels, 1.2 GB once decoded; past this size a file is bad input, and no decode is tried.
MAX_IMAGE_PIXELS = 178_956_970


def _leading_bytes(contents, count):
    """The first `count` bytes of `contents` as int64 (zeros past its end), for headers read at fixed offsets."""
    padded = tf.strings.substr(tf.strings.join([tf.strings.substr(contents, 0, count), "\0" * count]), 0, count)
    return tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)


def _little(byte, start, size):
    """The little-endian number in `byte[start:start + size]`."""
    return sum(byte[start + k] * 256**k for k in range(size))


def _header_size(contents):
    """`[width, height]` (int64) as a JPEG, PNG, GIF, BMP or WebP header declares it, without decoding; zeros
    otherwise.

    TensorFlow's decoders allocate what the header declares, so this is what a decode would take.
    """
    byte, head = _leading_bytes(contents, 32), tf.strings.join([tf.strings.substr(contents, 0, 32), "\0" * 32])

    def little(start, size):
        return _little(byte, start, size)

    def big(start, size):
        return sum(byte[start + k] * 256**(size - 1 - k) for k in range(size))

    def starts(signature):  # on `head`, padded: substr past the end of short bytes is an error ("pos 8 out of range")
        return tf.strings.substr(head, 0, len(signature)) == signature

    bmp_height = little(22, 4)
    bmp_height = tf.where(bmp_height >= 2**31, 2**32 - bmp_height, bmp_height)  # negative: stored top-down
    # One branch only where a parser can fail (a JPEG's markers); the fixed-offset headers are plain arithmetic.
    size = tf.cond(starts(_JPEG_SIGNATURE),
                   lambda: tf.reverse(tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64), [0]),
                   lambda: tf.zeros([2], tf.int64))
    for signature, width, height in ((_PNG_SIGNATURE, big(16, 4), big(20, 4)), (b"GIF8", little(6, 2), little(8, 2)),
                                     (b"BM", little(18, 4), bmp_height)):
        size = tf.where(starts(signature), tf.stack([width, height]), size)
    # WebP: RIFF, then the first chunk's header: extended (VP8X: the canvas), lossless (VP8L: 14-bit fields) or lossy.
    webp = starts(b"RIFF") & (tf.strings.substr(head, 8, 4) == b"WEBP")
    lossless = little(21, 4)
    for chunk, width, height in ((b"VP8X", little(24, 3) + 1, little(27, 3) + 1),
                                 (b"VP8L", lossless % 2**14 + 1, lossless // 2**14 % 2**14 + 1),
                                 (b"VP8 ", little(26, 2) % 2**14, little(28, 2) % 2**14)):
        size = tf.where(webp & (tf.strings.substr(head, 12, 4) == chunk), tf.stack([width, height]), size)
    return size


def _check_pixels(contents):
    """An assertion that the image is not larger than `MAX_IMAGE_PIXELS`; decode under its control."""
    return tf.debugging.assert_less_equal(
        tf.reduce_prod(_header_size(contents)), tf.constant(MAX_IMAGE_PIXELS, tf.int64),
        message=f"the image is larger than {MAX_IMAGE_PIXELS} pixels (tfxfer.data.decoding.MAX_IMAGE_PIXELS), as its "
                "header declares; it is not decoded")


def _ignored_colour_table(contents):
    """Whether `contents` is a BMP of 8 bits per pixel whose colour table is not a grey ramp: TensorFlow's decoder
    ignores the table and reads the colour indices as grey levels, a wrong picture without an error."""
    head = _leading_bytes(contents, 54)

    def little(start, size):
        return _little(head, start, size)

    def not_grey():
        used = little(46, 4)
        count = tf.where((used > 0) & (used < 256), used, 256)
        table = tf.io.decode_raw(tf.strings.substr(contents, 14 + little(14, 4), 4 * count), tf.uint8)
        table = tf.reshape(table[:tf.size(table) // 4 * 4], [-1, 4])[:, :3]
        ramp = tf.cast(tf.range(tf.shape(table)[0]), tf.uint8)[:, None]
        return tf.logical_not(tf.reduce_all(table == ramp))

    is_indexed = (tf.strings.substr(contents, 0, 2) == b"BM") & (little(28, 2) == 8)
    return tf.cond(is_indexed, not_grey, lambda: tf.constant(False))


def _check_colour_table(contents):
    """An assertion that `contents` is not a BMP whose colours TensorFlow's decoder would ignore."""
    return tf.debugging.Assert(tf.logical_not(_ignored_colour_table(contents)), [
        "the image is a BMP with a colour table (8 bits per pixel, not grey), whose colours TensorFlow's decoder "
        "ignores: it would read the colour indices as grey levels; convert it to PNG"])


def declared_size(contents):
    """`(width, height)` as a JPEG, PNG, GIF, BMP or WebP header declares it (Python bytes), or None."""
    try:
        width, height = _header_size(tf.constant(contents)).numpy().tolist()
    except tf.errors.InvalidArgumentError:
        return None
    return (width, height) if width or height else None


def decode_image(contents, image_size, value_range, interpolation="bilinear", check_size=True):
    """Decodes one encoded image into what an extractor takes: float32 `[height, width, 3]` in `value_range`.

    The same steps as `keras.utils.image_dataset_from_directory` (decode to 3 channels, resize without keeping the
    aspect ratio), then a linear map of `[0, 255]` onto `value_range`. Grayscale is repeated to RGB, alpha is dropped,
    16-bit PNGs are scaled to 8 bits, and an animated GIF gives its first frame. An image whose header declares
    more than `MAX_IMAGE_PIXELS` is not decoded, nor a BMP whose colour table TensorFlow's decoder would ignore (an
    InvalidArgumentError says so). The export code uses this function
    too, so a served model sees exactly what training saw, and refuses a decompression bomb without decoding it.

    Args:
        contents: A scalar tf.string of JPEG, PNG, GIF, BMP or WebP bytes.
        image_size: `(height, width)`.
        value_range: `(low, high)`, e.g. `(0.0, 1.0)` for TF Hub image models.
        interpolation: A `tf.image.resize` method name.
        check_size: Refuse images larger than `MAX_IMAGE_PIXELS`. The loaders pass False for files that their
            one-time check already measured, since a header parse on every image of every epoch costs about a tenth
            of the decoding time.

    Returns:
        A float32 tensor `[height, width, 3]`.

    Example:
        >>> png = tf.io.encode_png(tf.fill([4, 6, 3], tf.constant(255, tf.uint8)))
        >>> image = decode_image(png, (2, 3), (0.0, 1.0))
        >>> image.shape, float(image.numpy().max())
        (TensorShape([2, 3, 3]), 1.0)
    """
    with tf.control_dependencies([_check_pixels(contents), _check_colour_table(contents)] if check_size else []):
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image = resize_and_scale(image, image_size, value_range, interpolation)
    image.set_shape((image_size[0], image_size[1], 3))
    return image


def resize_and_scale(images, image_size, value_range, interpolation="bilinear"):
    """Resizes decoded pixels in [0, 255] (any dtype, `[h, w, 3]` or `[batch, h, w, 3]`) and maps them onto
    `value_range`, as float32.

    This is the one preprocessing of tfxfer: `decode_image` (training and the served `image_bytes`) and the served
    `images` signature both run it, so a served model sees what training saw.

    Example:
        >>> pixels = tf.fill([1, 4, 4, 3], 255.0)
        >>> float(resize_and_scale(pixels, (2, 2), (-1.0, 1.0)).numpy().max())
        1.0
    """
    images = tf.cast(tf.image.resize(images, image_size, method=interpolation), tf.float32)
    low, high = (float(value) for value in value_range)
    # Each elementwise op is a pass over the image, so the common ranges [0, 255] and [0, x] skip what they can.
    if high - low != 255.0:
        images = images * ((high - low) / 255.0)
    if low != 0.0:
        images = images + low
    return images


def _probe(position, path):
    """Decodes one file as cheaply as still fails exactly where a full decode fails.

    A JPEG is decoded at 1/8 scale: libjpeg still reads every entropy-coded block, so truncated or corrupt data
    fails as it would at full size, for a fraction of the cost (the inverse DCT and colour conversion of 1/64 of
    the pixels). Other formats are decoded fully.
    """
    contents = tf.io.read_file(path)
    is_jpeg = tf.strings.substr(contents, 0, 3) == _JPEG_SIGNATURE
    with tf.control_dependencies([_check_pixels(contents), _check_colour_table(contents)]):
        shape = tf.cond(is_jpeg, lambda: tf.shape(tf.io.decode_jpeg(contents, channels=3, ratio=8)),
                        lambda: tf.shape(tf.io.decode_image(contents, channels=3, expand_animations=False)))
    # Returning the shape keeps the decode in the graph; TensorFlow prunes stateless ops with no output.
    return position, shape


#: TensorFlow's decoding errors for valid files of a kind its decoders do not read, and that kind in words.
_UNREAD_KINDS = {"Number of channels requested does not match input": "a WebP with transparency",
                 "WebP Animation must be": "an animated WebP",
                 "Number of channels inherent in the image must be 1, 3 or 4, was 0":
                     "a BMP of 1, 2 or 4 bits per pixel"}


#: Signatures of image files that TensorFlow's decoders do not read, and what each is.
_OTHER_SIGNATURES = ((b"II*\0", "a TIFF image"), (b"MM\0*", "a TIFF image"))


def _other_kind(contents):
    """What a file without an image signature TensorFlow reads is, in words, where it is known: TIFF, HEIC (an
    iPhone's photos), AVIF, what `binary_kind` knows (PDF, archives, workbooks), or text (a CSV given as an image);
    else None."""
    known = binary_kind(contents)
    kind = next((name for signature, name in _OTHER_SIGNATURES if contents.startswith(signature)),
                None if known == "a binary file" else known)
    if kind is None and contents[4:8] == b"ftyp":
        brand = contents[8:12]
        kind = "an AVIF image" if brand == b"avif" else "an HEIC/HEIF photo (as iPhones take)" if brand in (
            b"heic", b"heix", b"hevc", b"mif1", b"msf1") else None
    if kind is None and b"\0" not in contents[:512]:
        try:
            contents[:512].decode("utf-8")
            kind = f"text (it starts with {contents[:24].decode('utf-8', 'replace')!r})"
        except UnicodeDecodeError:
            pass
    return kind


def _explain(path):
    """Why a file does not decode, in words, or None if it does after all."""
    try:
        with open(path, "rb") as handle:
            contents = handle.read()
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if not contents:
        return "empty file (0 bytes)"
    kind = next((name for signature, name in _SIGNATURES if contents.startswith(signature)), None)
    if kind is None and contents[:4] == b"RIFF" and contents[8:12] == b"WEBP":
        kind = "WebP"
    if kind is None:
        other = _other_kind(contents)
        if other is not None and other.startswith("text"):
            return f"not an image: {other}"
        if other is not None:
            return f"not an image TensorFlow reads: {other}; convert it to PNG or JPEG"
        return f"not an image: no JPEG/PNG/GIF/BMP/WebP signature (starts with {contents[:8]!r})"
    size = declared_size(contents)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        return (f"{kind} of {size[0]} x {size[1]} pixels, more than MAX_IMAGE_PIXELS = {MAX_IMAGE_PIXELS:,}: a "
                "decompression bomb, or an image too large to decode safely; not decoded")
    try:
        tf.io.decode_image(contents, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        message = re.sub(r"^\{\{.*?\}\}\s*|\s*\[Op:\w+\]\s*$", "", str(error).strip().splitlines()[0])
        unread = next((words for known, words in _UNREAD_KINDS.items() if known in message), None)
        if unread is not None:  # valid files of a kind TensorFlow's decoders do not read
            return f"{unread}, which TensorFlow's decoder cannot read; convert it to PNG"
        return f"truncated or corrupt {kind}: {message}"
    if bool(_ignored_colour_table(tf.constant(contents))):
        return ("BMP with a colour table (8 bits per pixel, not grey), whose colours TensorFlow's decoder ignores: "
                "it would read the colour indices as grey levels; convert it to PNG")
    return None


def path_tensor(paths):
    """File paths as a NumPy array for `tf.data`: each as the file system's bytes, so that a name that is not valid
    UTF-8 (Latin-1 bytes from an old archive, held by Python as surrogate escapes) still reaches the file.

    Example:
        >>> path_tensor(["a.png", "caf\\udce9.png"]).tolist()
        [b'a.png', b'caf\\xe9.png']
    """
    return np.asarray([os.fsencode(path) for path in paths], dtype=object)


def find_undecodable(paths):
    """Finds the image files that will not decode, in one parallel pass of TensorFlow ops.

    Args:
        paths: Image file paths.

    Returns:
        `{position in paths: reason}` for each file that fails.

    Example:
        >>> import os
        >>> os.makedirs(tmp_dir, exist_ok=True)
        >>> open(f"{tmp_dir}/empty.jpg", "wb").close()
        >>> find_undecodable([data.examples("train")[0][0], f"{tmp_dir}/empty.jpg"])
        {1: 'empty file (0 bytes)'}
    """
    if not len(paths):
        return {}
    dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), path_tensor(paths)))
    # ignore_errors drops the failures; they are found below as the positions that did not come back.
    dataset = dataset.map(_probe, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False).ignore_errors()
    decoded = np.zeros(len(paths), dtype=bool)
    for positions, _ in dataset.batch(4096).as_numpy_iterator():
        decoded[positions] = True
    failures = {}
    for position in np.flatnonzero(~decoded).tolist():
        reason = _explain(paths[position])
        if reason is not None:
            failures[position] = reason
    return failures


def decodable(files, bad, where="", skip_does="leave them out"):
    """`files` less those that will not decode: with `bad.on_bad == "error"` one `DataError` names all of them and
    why; with `"skip"` each is reported to `bad` (a `tfxfer.data.errors.BadInputs`).

    Example:
        >>> from tfxfer.data.errors import BadInputs
        >>> len(decodable([data.examples("train")[0][0], tmp_dir], BadInputs("skip")))  # a folder does not decode
        1
    """
    failures = find_undecodable([str(path) for path in files])
    if failures and bad.on_bad == "error":
        listed = "; ".join(f"{files[position]}: {reason}" for position, reason in sorted(failures.items()))
        raise DataError(f"{len(failures)} of {len(files)} image files{where} do not decode ({listed}); remove them, "
                        f'or pass on_bad="skip" to {skip_does}.')
    for position, reason in sorted(failures.items()):
        bad.report(files[position], "not a decodable image", reason)
    return [path for position, path in enumerate(files) if position not in failures]


def decode_file(path, image_size, value_range, interpolation="bilinear", contents=None):
    """`decode_image` of one file, through a function traced once per size, range and method (6x faster than eager).

    Args:
        path: An image file's path (any name the file system holds).
        image_size, value_range, interpolation: As for `decode_image`.
        contents: The file's bytes (a string tensor) where already read, to decode one read at several sizes.

    Returns:
        A float32 tensor `[height, width, 3]`.

    Raises:
        ValueError: The file cannot be read or does not decode; the message names it and says why.

    Example:
        >>> decode_file(data.examples("train")[0][0], (4, 4), (0.0, 255.0)).shape
        TensorShape([4, 4, 3])
    """
    traced = _traced_decoder(tuple(int(side) for side in image_size), tuple(float(value) for value in value_range),
                             interpolation)
    try:
        return traced(tf.io.read_file(os.fsencode(path)) if contents is None else contents)
    except tf.errors.OpError:
        reason = find_undecodable([path]).get(0)
        if reason is None:  # the file decodes: the arguments are at fault, and TensorFlow's error says how
            raise
        raise ValueError(f"{os.fsdecode(path)}: {reason}") from None


@functools.lru_cache(maxsize=16)
def _traced_decoder(image_size, value_range, interpolation):
    return tf.function(lambda contents: decode_image(contents, image_size, value_range, interpolation),
                       input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
