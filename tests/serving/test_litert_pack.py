"""A LiteRT file written again with repeated vectors stored once: smaller, buffers still aligned, and the same scores
bit for bit."""

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from tfxfer.serving.litert_pack import share_repeated_vectors


def _int8_flatbuffer():
    """A tiny per-channel int8 CNN, as `tf.lite.TFLiteConverter` writes it."""
    model = keras.Sequential([keras.Input([8, 8, 3]), keras.layers.Conv2D(16, 3, activation="relu"),
                              keras.layers.DepthwiseConv2D(3), keras.layers.Conv2D(16, 1),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    samples = np.random.default_rng(0).uniform(-1, 1, (8, 1, 8, 8, 3)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: ([sample] for sample in samples)
    return converter.convert(), samples


def _scores(flatbuffer, samples):
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
    scores = []
    for sample in samples:
        interpreter.set_tensor(given["index"], sample)
        interpreter.invoke()
        scores.append(interpreter.get_tensor(taken["index"]).copy())
    return np.concatenate(scores)


def test_an_int8_file_shrinks_and_gives_the_same_scores_bit_for_bit():
    flatbuffer, samples = _int8_flatbuffer()
    packed = share_repeated_vectors(flatbuffer)
    # Three kernels quantized per channel and their biases: six vectors of 16 zero points (int64s), one remains.
    assert len(flatbuffer) - len(packed) >= 5 * 16 * 8
    np.testing.assert_array_equal(_scores(packed, samples), _scores(flatbuffer, samples))
    model = schema.Model.GetRootAs(packed, 0)
    base = np.frombuffer(packed, np.uint8).__array_interface__["data"][0]
    for index in range(model.BuffersLength()):
        data = model.Buffers(index).DataAsNumpy()
        if isinstance(data, np.ndarray) and data.size:
            assert (data.__array_interface__["data"][0] - base) % 16 == 0, f"buffer {index} is not 16-byte aligned"
    assert model.SignatureDefsLength() == 1 and model.SignatureDefs(0).SignatureKey() == b"serving_default"

