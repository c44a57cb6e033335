"""Where the bytes of LiteRT files go: constant tensors by type, and per-channel quantization parameters.

LiteRT's schema stores, for every quantized tensor, one float32 scale and one int64 zero point per channel; with
per-channel int8 weights (the converter's default) that is 12 bytes per output channel for each kernel and again
for its int32 bias. This script reads each file with the LiteRT interpreter and sums them, to say how far an int8
file can shrink against float32.

Usage:
    python bench/litert_sizes.py FILE.tflite [FILE.tflite ...]   (e.g. the files bench_litert.py leaves in
                                                                   /tmp/bench_litert)
"""

import collections
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402


def breakdown(path):
    """`{"file": bytes, "<dtype> constants": bytes, ..., "quantization parameters": bytes, "rest": bytes}`."""
    interpreter = Interpreter(model_path=str(path))
    constants, parameters = collections.Counter(), 0
    for detail in interpreter.get_tensor_details():
        try:
            value = interpreter.get_tensor(detail["index"])
        except ValueError:  # an activation: no buffer before the first call
            continue
        if value is not None and value.size:
            constants[f"{value.dtype} constants"] += value.nbytes
        quantization = detail["quantization_parameters"]
        parameters += quantization["scales"].size * 4 + quantization["zero_points"].size * 8
    size = os.path.getsize(path)
    row = {"file": size, **dict(constants), "quantization parameters": parameters}
    row["rest"] = size - sum(constants.values()) - parameters
    return row


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = {path: breakdown(path) for path in sys.argv[1:]}
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
