"""Latency of one JPEG request through an export's `serving_default`, against the bare model on a decoded tensor.

The model is a TF Hub extractor (MobileNetV2 1.0 224 from ../shared/assets by default) under a softmax head. It is
exported with `tfxfer.export`, loaded back with `tf.saved_model.load` (as a TensorFlow client would, in process) and
timed per request, batch of one, against:

- `serving_images`: the export's second signature on the decoded pixels (no JPEG decoding);
- the bare model as a `tf.function` on the decoded, resized, scaled tensor (the graph the export wraps);
- the bare Keras model called eagerly on that tensor.

The variants run interleaved (one call of each per round, in rotating order), after a warm-up, so drift in the
machine's speed hits them alike. Each call's outputs are fetched to NumPy before the clock stops.

Usage:
    python bench/bench_serving_latency.py [--extractor PATH_OR_NAME] [--image JPEG] [--rounds 200] [--warmup 20]
"""

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxfer  # noqa: E402
from tfxfer.data import decode_image  # noqa: E402
from tfxfer.serving import export  # noqa: E402

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"
DEFAULT_EXTRACTOR = ASSETS / "models/hub/mobilenet_v2_100_224_feature_vector"
DEFAULT_IMAGE = ASSETS / "data/hymenoptera/hymenoptera_data/val/ants/10308379_1b6c72e180.jpg"


def build_model(source, weights):
    extractor = tfxfer.load_extractor(source, weights=weights)
    inputs = keras.Input((*extractor.image_size, 3))
    features = extractor(inputs)
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(features)), extractor


def time_interleaved(calls, rounds, warmup):
    """Milliseconds per call of each function, interleaved in rotating order."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: np.array(values) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractor", default=str(DEFAULT_EXTRACTOR), help="extractor source (default: %(default)s)")
    parser.add_argument("--weights", default=None,
                        help="weights file for a keras.applications extractor (default: random weights)")
    parser.add_argument("--image", default=str(DEFAULT_IMAGE), help="the JPEG of the request (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=200, help="timed calls per variant (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls per variant first (default: %(default)s)")
    args = parser.parse_args(argv)

    model, extractor = build_model(args.extractor, args.weights)
    jpeg = Path(args.image).read_bytes()
    with tempfile.TemporaryDirectory() as root:
        loaded = tf.saved_model.load(str(export(model, "bench", root, task_type="multiclass",
                                                 class_names=["ants", "bees"])))
        serving_default = loaded.signatures["serving_default"]
        serving_images = loaded.signatures["serving_images"]
        request = tf.constant([jpeg])
        pixels = tf.cast(tf.io.decode_image(jpeg, channels=3, expand_animations=False), tf.float32)[None]
        decoded = decode_image(jpeg, extractor.image_size, extractor.value_range)[None]
        bare = tf.function(lambda x: model(x, training=False),
                           input_signature=[tf.TensorSpec([None, *extractor.image_size, 3], tf.float32)])
        expected = model(decoded, training=False).numpy()
        served = serving_default(image_bytes=request)["scores"].numpy()
        calls = {
            "serving_default (JPEG bytes)": lambda: serving_default(image_bytes=request)["scores"].numpy(),
            "serving_images (decoded pixels)": lambda: serving_images(images=pixels)["scores"].numpy(),
            "bare model, tf.function (decoded tensor)": lambda: bare(decoded).numpy(),
            "bare model, Keras eager call (decoded tensor)": lambda: model(decoded, training=False).numpy(),
        }
        times = time_interleaved(calls, args.rounds, args.warmup)

    print(f"model: {extractor.source} -> Dense(2, softmax); image {args.image} ({len(jpeg)} bytes, "
          f"{pixels.shape[1]}x{pixels.shape[2]}) -> {extractor.image_size}")
    gpus = len(tf.config.list_physical_devices("GPU"))
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPU cores, GPUs: {gpus}, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}")
    print(f"rounds: {args.rounds} timed calls per variant after {args.warmup} warm-up calls, interleaved")
    print(f"max |serving_default scores - bare model scores| = {np.abs(served - expected).max():.2e}")
    print()
    print("| variant | p50 ms | p95 ms | mean ms |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {np.percentile(values, 50):.2f} | {np.percentile(values, 95):.2f} | {values.mean():.2f} |")
    served_times = times["serving_default (JPEG bytes)"]
    for baseline in ("bare model, tf.function (decoded tensor)", "bare model, Keras eager call (decoded tensor)"):
        base = times[baseline]
        p50 = np.percentile(served_times, 50) / np.percentile(base, 50)
        p95 = np.percentile(served_times, 95) / np.percentile(base, 95)
        print(f"\nratio serving_default / {baseline}: p50 {p50:.2f}, p95 {p95:.2f}")


if __name__ == "__main__":
    main()
