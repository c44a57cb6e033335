"""Decoded images per second: tfxfer's image pipeline against keras.utils.image_dataset_from_directory.

Both read the same folder (hymenoptera train/, 245 JPEG/GIF files, 2 classes) at 224x224, batch 32, shuffled, in
one process. The pipelines are built once; then epochs alternate between them (in a rotating order), so that slow
and fast spells of a shared machine hit all alike. Reported: construction time (tfxfer's includes its check of every file), decoded
images per second over whole epochs (median and range over the rounds), CPU time of this process per image (the
work done, which other processes on the machine disturb less than wall time), and tfxfer with `cache=True` after
its first epoch. tfxfer runs twice: with value range [0, 255] (exactly Keras' output) and [0, 1] (TF Hub's). The load average before and after says how busy the machine was. Prints Markdown.

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

    def ours(value_range, cache=False):
        return _timed(lambda: load_images(args.folder, image_size=SIZE, value_range=value_range, validation_split=0,
                                          batch_size=BATCH, cache=cache))

    # [0, 255] gives exactly Keras' output; [0, 1] (TF Hub's range) costs one multiplication per pixel more.
    (same, same_build), (unit, unit_build), (cached, cached_build) = (
        ours((0.0, 255.0)), ours((0.0, 1.0)), ours((0.0, 1.0), cache=True))
    n = same.sizes["train"]
    first_cached, _ = _epochs(cached.train, 1)
    pipelines = {"keras": keras_data, "tfxfer [0, 255]": same.train, "tfxfer [0, 1]": unit.train,
                 "tfxfer [0, 1] cache=True": cached.train}
    builds = dict(zip(pipelines, (keras_build, same_build, unit_build, cached_build)))
    for name in ("keras", "tfxfer [0, 255]", "tfxfer [0, 1]"):
        _epochs(pipelines[name], 1)  # warm-up: thread pools, autotuning, the OS file cache

    rates = {name: [] for name in pipelines}
    cpu = {name: [] for name in pipelines}
    order = list(pipelines)
    for round_ in range(args.rounds):
        # Each round starts with the next pipeline, so none always runs first or after the same neighbour.
        for name in order[round_ % len(order):] + order[:round_ % len(order)]:
            rate, cpu_ms = _epochs(pipelines[name], args.epochs)
            rates[name].append(rate)
            cpu[name].append(cpu_ms)

    print(f"{n} images from {args.folder}, {SIZE[0]}x{SIZE[1]}, batch {BATCH}; {args.rounds} rounds of "
          f"{args.epochs} epochs, alternating; TF {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}; 1-minute load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print()
    print("| pipeline | construction (s) | decoded images/s, median | min-max | vs keras | CPU ms/image, median |")
    print("|---|---|---|---|---|---|")
    baseline = statistics.median(rates["keras"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {builds[name]:.3f} | {median:.0f} | {min(values):.0f}-{max(values):.0f} | "
              f"{median / baseline:.2f}x | {statistics.median(cpu[name]):.2f} |")
    print()
    print(f"tfxfer [0, 1] cache=True, first epoch (decoding and filling the cache): {first_cached:.0f} images/s")
    for name in ("tfxfer [0, 255]", "tfxfer [0, 1]"):
        paired = [ours_rate / keras_rate for ours_rate, keras_rate in zip(rates[name], rates["keras"])]
        print(f"{name} / keras, images/s per round: {', '.join(f'{ratio:.2f}' for ratio in paired)} "
              f"(median {statistics.median(paired):.2f})")


if __name__ == "__main__":
    main()
