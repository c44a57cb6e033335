"""Decoded images per second: tfxfer's image pipeline against keras.utils.image_dataset_from_directory.

Both read the same folder (hymenoptera train/, 245 JPEG/GIF files, 2 classes) at 224x224, batch 32, shuffled, in
one process. The pipelines are built once; then epochs alternate between them, so that slow and fast spells of a
shared machine hit both alike. Reported: construction time (tfxfer's includes its check of every file), decoded
images per second over whole epochs (median and range over the rounds), CPU time of this process per image (the
work done, which other processes on the machine disturb less than wall time), and tfxfer with `cache=True` after
its first epoch. The load average before and after says how busy the machine was. Prints Markdown.

Usage:
    python bench/bench_data_pipeline.py [--folder PATH] [--rounds 7] [--epochs 3]
"""

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfxfer.data import load_images  # noqa: E402

DEFAULT_FOLDER = (Path(__file__).resolve().parents[1].parent / "shared" / "assets" / "data" / "hymenoptera" /
                  "hymenoptera_data" / "train")
SIZE = (224, 224)
BATCH = 32


def _epochs(dataset, epochs):
    """`(images per second, CPU milliseconds per image)` over `epochs` full passes."""
    start, cpu = time.perf_counter(), time.process_time()
    images = 0
    for _ in range(epochs):
        for batch, _ in dataset:
            images += int(batch.shape[0])
    return images / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / images


def _timed(build):
    start = time.perf_counter()
    result = build()
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timing")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    keras_data, keras_build = _timed(lambda: keras.utils.image_dataset_from_directory(
        args.folder, image_size=SIZE, batch_size=BATCH, shuffle=True, seed=0, verbose=False))
    ours, ours_build = _timed(lambda: load_images(args.folder, image_size=SIZE, value_range=(0.0, 1.0),
                                                  validation_split=0, batch_size=BATCH))
    cached, cached_build = _timed(lambda: load_images(args.folder, image_size=SIZE, value_range=(0.0, 1.0),
                                                      validation_split=0, batch_size=BATCH, cache=True))
    n = ours.sizes["train"]
    first_cached, _ = _epochs(cached.train, 1)
    for dataset in (keras_data, ours.train):
        _epochs(dataset, 1)  # warm-up: thread pools, autotuning, the OS file cache

    pipelines = {"keras": keras_data, "tfxfer": ours.train, "tfxfer cache=True": cached.train}
    rates = {name: [] for name in pipelines}
    cpu = {name: [] for name in pipelines}
    for _ in range(args.rounds):
        for name, dataset in pipelines.items():
            rate, cpu_ms = _epochs(dataset, args.epochs)
            rates[name].append(rate)
            cpu[name].append(cpu_ms)

    print(f"{n} images from {args.folder}, {SIZE[0]}x{SIZE[1]}, batch {BATCH}; {args.rounds} rounds of "
          f"{args.epochs} epochs, alternating; TF {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}; 1-minute load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print()
    print("| pipeline | construction (s) | decoded images/s, median | min-max | vs keras | CPU ms/image, median |")
    print("|---|---|---|---|---|---|")
    builds = {"keras": keras_build, "tfxfer": ours_build, "tfxfer cache=True": cached_build}
    baseline = statistics.median(rates["keras"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {builds[name]:.3f} | {median:.0f} | {min(values):.0f}-{max(values):.0f} | "
              f"{median / baseline:.2f}x | {statistics.median(cpu[name]):.2f} |")
    print()
    print(f"tfxfer cache=True, first epoch (decoding and filling the cache): {first_cached:.0f} images/s")
    paired = [ours_rate / keras_rate for ours_rate, keras_rate in zip(rates["tfxfer"], rates["keras"])]
    print(f"tfxfer/keras per round: {', '.join(f'{ratio:.2f}' for ratio in paired)} "
          f"(median {statistics.median(paired):.2f})")


if __name__ == "__main__":
    main()
