"""Issue 17 on an accelerator: images/s of extraction and of a fine-tuning epoch, float32 against mixed precision,
with and without XLA, and the share of an epoch the accelerator waits for the input pipeline.

For each form of MobileNetV2 1.0 (`hub`: the TF Hub feature vector SavedModel; `keras`: keras.applications') and
each setting (`precision` float32 or the accelerator's mixed policy, `tfxfer.pick_precision`; `jit_compile` False or
True), two `tfxfer.TransferModel`s are fitted for one epoch (which traces and compiles) without the feature cache:

- `extraction`: deep feature extraction, so every step runs the frozen extractor forward and trains the head;
- `fine-tuning`: every block trainable (`regime="fine-tune"`, no warm-up).

Then, on the fitted and compiled model, each timed on the second of two more epochs (the first of a new `fit`
call may trace or compile again):

- `epoch`: an epoch over the training split: training images/s;
- `compute`: as many steps on one batch held in memory (no decoding, no input pipeline);
- `input wait`: `1 - compute / epoch`, the share of the epoch the accelerator waited for the input pipeline;
- `pipeline alone`: the training split iterated with no model, images/s (once per form: the value ranges differ).

The hub SavedModel's graph computes in float32 whatever the policy (`HubExtractor` keeps it float32), so for that
form mixed precision changes only the head: its rows say so. Results are written to `--out` after every
measurement, so a run stopped at the device's time limit keeps what it measured; `--budget` stops starting new
settings once that many seconds have passed.

Data: the shared assets' hymenoptera training images, each linked `--copies` times into a temporary folder (an
epoch long enough to time; tfxfer keeps repeated images and notes them), or with `--synthetic N`, N random JPEGs
of 320x240 in two classes (throughput does not depend on what the pixels show), with keras.applications'
MobileNetV2 at random weights when the assets are absent (the device machine has no `../shared`).

Usage:
    python bench/bench_gpu.py --out bench/gpu.json                       # the issue's check, on the device
    python bench/bench_gpu.py --smoke --out /tmp/gpu_smoke.json          # minutes on a CPU: that it runs
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HUB_MOBILENET_V2, HYMENOPTERA, KERAS_MOBILENET_V2, machine  # noqa: E402

import tfxfer  # noqa: E402


def linked_copies(folder, copies):
    """hymenoptera's training images, each linked `copies` times, in class folders under `folder`."""
    for class_dir in sorted((HYMENOPTERA / "train").iterdir()):
        if class_dir.is_dir():
            (folder / class_dir.name).mkdir(parents=True)
            for image in sorted(class_dir.iterdir()):
                for copy in range(copies):
                    os.symlink(image, folder / class_dir.name / f"{copy}_{image.name}")
    return folder


def synthetic_images(folder, count, seed=0):
    """`count` random JPEGs of 320x240 in two class folders under `folder`."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for index in range(count):
        class_dir = folder / ("a" if index % 2 else "b")
        class_dir.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        (class_dir / f"{index}.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    return folder


def extractor_for(form, image_size):
    """A fresh extractor of `form`: the assets' weights where present, else (keras only) random weights."""
    if form == "hub":
        return tfxfer.load_extractor(str(HUB_MOBILENET_V2))
    weights = str(KERAS_MOBILENET_V2) if KERAS_MOBILENET_V2.is_file() else None
    return tfxfer.load_extractor("MobileNetV2", weights=weights, image_size=(image_size, image_size))


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def last_epoch_seconds(keras_model, dataset, **options):
    """Fits two epochs and returns the second's seconds: the first of a new `fit` call may trace (or, with XLA,
    compile) again, as may its last, smaller batch."""
    import keras

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.started

    times = EpochTimes()
    keras_model.fit(dataset, epochs=2, verbose=0, callbacks=[times], **options)
    return times.seconds


def measure(form, regime, precision, jit_compile, data, image_size):
    """One setting: fit one epoch (tracing), then time an epoch and the same steps on one batch in memory."""
    import tensorflow as tf

    model = tfxfer.TransferModel(extractor_for(form, image_size), regime=regime, warmup_epochs=0, epochs=1,
                                 patience=None, cache=False, precision=precision, jit_compile=jit_compile, seed=0,
                                 verbose=0)
    first = timed(lambda: model.fit(data))
    keras_model, train = model.model_, data.train
    steps = int(train.cardinality())
    epoch = last_epoch_seconds(keras_model, train)
    compute = last_epoch_seconds(keras_model, train.take(1).cache().repeat(), steps_per_epoch=steps)
    images = data.sizes["train"]
    return {"form": form, "regime": regime, "precision": model.precision_, "jit_compile": jit_compile,
            "first_epoch_s": round(first, 2), "epoch_s": round(epoch, 3), "images_per_s": round(images / epoch, 1),
            "compute_s": round(compute, 3), "compute_images_per_s": round(steps * data.batch_size / compute, 1),
            "input_wait": round(max(0.0, 1 - compute * images / (steps * data.batch_size) / epoch), 3),
            "note": "hub graph float32: only the head mixes" if form == "hub" and model.precision_ != "float32"
            else "", "device": tf.config.list_logical_devices()[-1].name}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench/gpu.json")
    parser.add_argument("--forms", nargs="+", default=["keras", "hub"], choices=["keras", "hub"])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--copies", type=int, default=8, help="links of each hymenoptera training image")
    parser.add_argument("--synthetic", type=int, default=0, help="N random JPEGs instead of hymenoptera")
    parser.add_argument("--mixed", default="auto", help="the mixed policy measured against float32 "
                        "('auto': tfxfer.pick_precision, mixed_float16 on GPUs)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds after which no new setting starts")
    parser.add_argument("--jit-compile", nargs="+", default=["false", "true"], choices=["false", "true"])
    parser.add_argument("--smoke", action="store_true", help="tiny: 96 px, 64 synthetic images, keras form, "
                        "mixed_bfloat16, no XLA (minutes to compile on a CPU), to check on a CPU that it runs")
    args = parser.parse_args()
    if args.smoke:
        args.image_size, args.batch_size, args.synthetic, args.forms = 96, 16, 64, ["keras"]
        args.mixed, args.jit_compile = "mixed_bfloat16", ["false"]
    mixed = tfxfer.pick_precision() if args.mixed == "auto" else args.mixed
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        if args.synthetic or not HYMENOPTERA.is_dir():
            synthetic_images(folder, args.synthetic or 2000)
            source = f"{args.synthetic or 2000} synthetic JPEGs 320x240"
        else:
            linked_copies(folder, args.copies)
            source = f"hymenoptera train x{args.copies} (links)"
        if not HUB_MOBILENET_V2.is_dir() and "hub" in args.forms:
            print(f"No hub MobileNetV2 at {HUB_MOBILENET_V2} (set TFXFER_ASSETS): the hub form is left out.")
            args.forms = [form for form in args.forms if form != "hub"]
        report = {"machine": machine(), "data": source, "image_size": args.image_size,
                  "batch_size": args.batch_size, "pipeline_alone_images_per_s": {}, "rows": []}
        for form in args.forms:
            data = tfxfer.load_images(folder, extractor=extractor_for(form, args.image_size), validation_split=0.1,
                                      batch_size=args.batch_size, seed=0)  # the form's value range
            report["train_images"] = data.sizes["train"]
            pipeline = timed(lambda: [None for _ in data.train])
            report["pipeline_alone_images_per_s"][form] = round(data.sizes["train"] / pipeline, 1)
            for precision in ("float32", mixed):
                for jit_compile in [value == "true" for value in args.jit_compile]:
                    for regime in ("feature-extraction", "fine-tune"):
                        if time.perf_counter() - started > args.budget:
                            report["stopped"] = f"--budget {args.budget:g} s reached"
                            break
                        row = measure(form, regime, precision, jit_compile, data, args.image_size)
                        report["rows"].append(row)
                        print(json.dumps(row), flush=True)
                        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    report["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"pipeline alone (images/s): {report['pipeline_alone_images_per_s']}; {report['seconds']} s in all; "
          f"written to {args.out}")


if __name__ == "__main__":
    main()
