"""A LiteRT flatbuffer written again with each repeated vector stored once.

TensorFlow's converter gives every quantized tensor vectors of its own: a float32 scale and an int64 zero point
per channel. The zero points of int8 weights and int32 biases are all 0, so the int8 form of MobileNetV2 holds
about 34,000 zero int64s (0.27 MB of a 2.7 MB file) in vectors that repeat one another. A FlatBuffers table
refers to a vector by its offset, so tables may share one: `share_repeated_vectors` packs the model again through
the LiteRT schema's objects with a builder that writes each distinct numeric vector once. Every value the
interpreter reads stays the same (the tests check that the scores are bit for bit those of the converter's file);
buffers (weights, strings) are written 16-byte aligned, as LiteRT's schema asks of them (`force_align: 16`).
"""

import flatbuffers
import numpy as np

from tfxfer import _compat

#: The file identifier of LiteRT flatbuffers (`model.tflite` starts with it at byte 4).
FILE_IDENTIFIER = b"TFL3"
_BUFFER_ALIGNMENT = 16


class _SharingBuilder(flatbuffers.Builder):
    """A `flatbuffers.Builder` whose `CreateNumpyVector` returns the offset of an equal vector written before."""

    def __init__(self, size):
        super().__init__(size)
        self._written = {}

    def CreateNumpyVector(self, x):  # noqa: N802 (flatbuffers' name, called by the schema's Pack)
        if x.dtype == np.uint8:  # a buffer's bytes or an op's custom options: written once each, aligned
            self.StartVector(1, x.size, _BUFFER_ALIGNMENT)
            self.head -= x.size
            self.Bytes[self.head:self.head + x.size] = x.tobytes()
            self.vectorNumElems = x.size
            return self.EndVector()
        key = (x.dtype.str, x.tobytes())
        if key not in self._written:
            self._written[key] = super().CreateNumpyVector(x)
        return self._written[key]


def share_repeated_vectors(flatbuffer):
    """The same LiteRT model, with equal numeric vectors (zero points, scales) stored once.

    Args:
        flatbuffer: A `.tflite` file's bytes, as `tf.lite.TFLiteConverter.convert` returns them.

    Returns:
        The bytes of the smaller file (never larger than the converter's, which is returned where sharing saves
        nothing).

    Example:
        >>> double = tf.function(lambda x: 2 * x, input_signature=[tf.TensorSpec([1, 3])])
        >>> converter = tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()], double)
        >>> flatbuffer = converter.convert()
        >>> packed = share_repeated_vectors(flatbuffer)
        >>> packed[4:8], len(packed) <= len(flatbuffer)
        (b'TFL3', True)
    """
    model = _compat.litert_model_object(flatbuffer)
    builder = _SharingBuilder(len(flatbuffer))
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    packed = bytes(builder.Output())
    return packed if len(packed) < len(flatbuffer) else bytes(flatbuffer)
