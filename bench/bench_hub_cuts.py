"""Issue 16: a search over freeze depths on hymenoptera with the hub MobileNetV2 1.0, with the hub model cut at its
block boundaries and without (only its whole output cached, as before), same seed, in one run; and the per-epoch
time of a mid-layer trial frozen at the middle cut, both ways.

Without cuts, every trial that freezes fewer than all blocks runs the whole network forward (and back through the
trainable part) on every image of every epoch; with cuts, the frozen prefix runs once per depth (into the
`FeatureCache`) and the suffix and head train on the cached activations.

Scaled down for a loaded 2-core machine (the issue's run is 20 trials at 224x224): the defaults are 8 trials per arm
at 96x96, 3 epochs, a 1-epoch warm-up.

Usage: python bench/bench_hub_cuts.py [--trials 8] [--epochs 3] [--image-size 96] [--warmup-epochs 1] [--patience 2]
    [--out bench/hub_cuts.json]

The issue's scale, with the library's own search defaults (20 epochs, patience 3, 5 warm-up epochs):
    python bench/bench_hub_cuts.py --trials 20 --image-size 224 --epochs 20 --patience 3 --warmup-epochs 5 \
        --out bench/hub_cuts_224.json
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HUB_MOBILENET_V2, HYMENOPTERA, machine, require_assets  # noqa: E402

import keras  # noqa: E402

import tfxfer  # noqa: E402
from tfxfer.extractors import HubExtractor  # noqa: E402


class WholeOutputOnly(HubExtractor):
    """The hub model as before this change: only its whole output is cached, other depths train end to end."""

    @property
    def cache_cuts(self):
        return [self.n_blocks]


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def load(cut, size):
    kind = HubExtractor if cut else WholeOutputOnly
    extractor = kind(str(HUB_MOBILENET_V2), image_size=(size, size))
    return extractor, tfxfer.load_images(HYMENOPTERA, extractor=extractor, batch_size=32, seed=0)


def mid_layer_epochs(cut, size, epochs):
    extractor, data = load(cut, size)
    k = extractor.n_blocks // 2
    timer = EpochTimes()
    started = time.perf_counter()
    fitted = tfxfer.TransferModel(extractor, regime="mid-layer", freeze_blocks=k, epochs=epochs, patience=None,
                                  seed=0, verbose=0).fit(data, callbacks=[timer])
    return {"freeze_blocks": k, "cut_after": extractor.blocks[k - 1].name, "cached": fitted.cached_phases_,
            "epoch_seconds": timer.seconds, "fit_seconds": time.perf_counter() - started,
            "val_accuracy": fitted.history_["val_accuracy"]}


def search(cut, size, trials, epochs, warmup_epochs, patience):
    extractor, data = load(cut, size)
    space = tfxfer.SearchSpace(frozen_blocks=list(range(1, extractor.n_blocks + 1)), warmup_epochs=warmup_epochs)
    started = time.perf_counter()
    run = tfxfer.TransferSearch(extractor, space=space, max_trials=trials, epochs=epochs, patience=patience,
                                directory=tempfile.mkdtemp(), project_name="cuts" if cut else "whole", seed=1,
                                verbose=0)
    table = run.search(data)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "trials": len(table), "best_val_accuracy": float(table.score.max()),
            "trial_table": table[[c for c in ("trial_id", "frozen_blocks", "regime", "score", "seconds")
                                  if c in table]].to_dict("records")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--out", default="bench/hub_cuts.json")
    args = parser.parse_args()
    require_assets()
    results = {"machine": machine() + f" (load average {os.getloadavg()[0]:.1f} at the start)",
               "command": "python " + " ".join(sys.argv), "image_size": args.image_size}
    for cut in (True, False):
        results[f"mid_layer_{'cut' if cut else 'whole'}"] = mid_layer_epochs(cut, args.image_size, 2)
        print(json.dumps(results, indent=2, default=str), flush=True)
    for cut in (True, False):
        results[f"search_{'cut' if cut else 'whole'}"] = search(cut, args.image_size, args.trials, args.epochs,
                                                             args.warmup_epochs, args.patience)
        print(json.dumps(results, indent=2, default=str), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    with_cuts, without = results["search_cut"], results["search_whole"]
    results["speedup"] = without["seconds"] / with_cuts["seconds"]
    results["best_val_accuracy_difference"] = with_cuts["best_val_accuracy"] - without["best_val_accuracy"]
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
