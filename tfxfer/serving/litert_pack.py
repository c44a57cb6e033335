"""A LiteRT flatbuffer written again with each repeated vector stored once.

TensorFlow's converter gives every quantized tensor vectors of its own: a float32 scale and an int64 zero point
per channel. The zero points of int8 weights and int32 biases are all 0, so the int8 form of MobileNetV2 holds
about 34,000 zero int64s (0.27 MB of a 2.7 MB file) in vectors that repeat one another. A FlatBuffers table
refers to a vector by its offset, so tables may share one: `share_repeated_vectors` reads the model into the LiteRT
schema's objects (with ai-edge-litert's flatbuffer tools, which also drop empty buffers the converter left) and
packs it again with a builder that writes each distinct numeric vector once and every buffer 16-byte aligned, as
the schema asks (`force_align: 16`). `tfxfer.export` keeps the smaller file only where the interpreter gives the
converter's scores bit for bit on held-out examples.
"""

import sys

import flatbuffers
import numpy as np

from tfxfer import _compat

#: The file identifier of LiteRT flatbuffers (`model.tflite` starts with it at byte 4).
FILE_IDENTIFIER = b"TFL3"
_BUFFER_ALIGNMENT = 16
#: FlatBuffers' Python builder stops at 2 GiB; a larger model keeps the converter's file (and its outside buffers).
_LARGEST = 2**31 - 2**24


class _SharingBuilder(flatbuffers.Builder):
    """A `flatbuffers.Builder` whose `CreateNumpyVector` returns the offset of an equal vector written before, and
    aligns bytes (buffers, custom options) to 16."""

    def __init__(self, size):
        super().__init__(size)
        self._written = {}

    def CreateNumpyVector(self, x):  # noqa: N802 (flatbuffers' name, called by the schema's Pack)
        if x.dtype == np.uint8:  # a buffer's bytes or an op's custom options: written once each
            self.Prep(_BUFFER_ALIGNMENT, x.size)  # so that the bytes, written next, start 16-byte aligned
            return super().CreateNumpyVector(x)
        key = (x.dtype.str, x.tobytes())
        if key not in self._written:
            self._written[key] = super().CreateNumpyVector(x)
        return self._written[key]


def share_repeated_vectors(flatbuffer):
    """The same LiteRT model, with equal numeric vectors (zero points, scales) stored once.

    Args:
        flatbuffer: A `.tflite` file's bytes, as `tf.lite.TFLiteConverter.convert` returns them.

    Returns:
        The bytes of the smaller file; the converter's bytes where sharing saves nothing, on a big-endian host, or
        for a model over 2 GiB.

    Example:
        >>> double = tf.function(lambda x: 2 * x, input_signature=[tf.TensorSpec([3])])
        >>> converter = tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()], double)
        >>> packed = share_repeated_vectors(converter.convert())
        >>> from ai_edge_litert.interpreter import Interpreter
        >>> interpreter = Interpreter(model_content=packed)
        >>> interpreter.allocate_tensors()
        >>> interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.array([1, 2, 3], np.float32))
        >>> interpreter.invoke()
        >>> interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        array([2., 4., 6.], dtype=float32)
    """
    if sys.byteorder == "big" or len(flatbuffer) > _LARGEST:  # the tools swap buffers to a big-endian host's order
        return bytes(flatbuffer)
    model = _compat.litert_model_object(flatbuffer)
    builder = _SharingBuilder(len(flatbuffer))
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    packed = bytes(builder.Output())
    return packed if len(packed) < len(flatbuffer) else bytes(flatbuffer)
