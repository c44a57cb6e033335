"""Issue 7 (and 6): a 20-trial search over freeze depth x learning rate x head on cached activations, against ONE
plain-Keras fine-tuning run of the TF tutorial recipe, on hymenoptera, in one run.

Measures, in this order:
1. the tutorial recipe (plain Keras, MobileNetV2 with the assets' weights): wall time and val accuracy;
2. the search with the activation cache (Keras MobileNetV2, mid-layer cuts cached): wall time, best val accuracy;
3. head-only training per epoch from the cache vs end-to-end frozen training (hub MobileNetV2 1.0);
4. the first trials of the same search (same oracle seed, so the same configurations) without the cache.

Usage: python bench/bench_search.py [--trials 20] [--uncached-trials 4] [--out bench/search.json]
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HUB_MOBILENET_V2, HYMENOPTERA, KERAS_MOBILENET_V2, machine, require_assets, tutorial_recipe  # noqa

import tfxfer  # noqa: E402
from tfxfer.search import SearchSpace, TransferSearch  # noqa: E402

SPACE = SearchSpace(frozen_blocks=[10, 12, 14, 16, 17, 18, 19])


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def search(trials, cache, directory, extractor):
    data = tfxfer.load_images(HYMENOPTERA, extractor=extractor, batch_size=32)
    started = time.perf_counter()
    searcher = TransferSearch(extractor, space=SPACE, max_trials=trials, epochs=20, patience=3, directory=directory,
                              project_name="hymenoptera", cache=cache, seed=0, verbose=0)
    table = searcher.search(data)
    return table, time.perf_counter() - started


def epoch_seconds(cache):
    extractor = tfxfer.load_extractor(HUB_MOBILENET_V2)
    data = tfxfer.load_images(HYMENOPTERA, extractor=extractor, batch_size=32)
    timer = EpochTimer()
    tfxfer.TransferModel(extractor, epochs=3, patience=None, cache=cache, verbose=0).fit(data, callbacks=[timer])
    return min(timer.seconds[1:])  # the first epoch traces the graph


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--uncached-trials", type=int, default=4)
    parser.add_argument("--out", default="bench/search.json")
    args = parser.parse_args()
    require_assets()
    results = {"machine": machine(), "command": "python " + " ".join(sys.argv)}
    recipe = tutorial_recipe()
    results["recipe"] = recipe
    print("tutorial recipe:", recipe, flush=True)
    folder = Path(tempfile.mkdtemp())
    extractor = lambda: tfxfer.load_extractor("MobileNetV2", weights=str(KERAS_MOBILENET_V2))  # noqa: E731
    table, seconds = search(args.trials, True, folder / "cached", extractor())
    results["search_cached"] = {"trials": len(table), "seconds": seconds, "best_val_accuracy": float(table.score.max()),
                                "best": table.iloc[0].to_dict()}
    table.to_csv(Path(args.out).with_suffix(".trials.csv"), index=False)
    print(table.to_string(), flush=True)
    results["search_over_recipe"] = seconds / recipe["seconds"]
    print("search seconds:", seconds, "ratio to the recipe:", results["search_over_recipe"], flush=True)
    cached_epoch, end_to_end_epoch = epoch_seconds(True), epoch_seconds(False)
    results["epoch_seconds"] = {"head_from_cache": cached_epoch, "end_to_end_frozen": end_to_end_epoch,
                                "speedup": end_to_end_epoch / cached_epoch}
    print("epoch seconds:", results["epoch_seconds"], flush=True)
    if args.uncached_trials:
        uncached, useconds = search(args.uncached_trials, False, folder / "uncached", extractor())
        # Trial ids are zero-padded to the number of trials, so compare them as numbers.
        by_number = lambda t: t.assign(trial=t.trial_id.astype(int)).set_index("trial")  # noqa: E731
        uncached, table = by_number(uncached), by_number(table)
        same = table.loc[uncached.index]
        results["search_uncached_subset"] = {
            "trials": len(uncached), "seconds": useconds, "seconds_per_trial": useconds / len(uncached),
            "cached_seconds_per_trial": seconds / len(table),
            "val_accuracy_uncached": uncached.score.round(4).to_dict(),
            "val_accuracy_cached_same_trials": same.score.round(4).to_dict(),
        }
        print("uncached subset:", results["search_uncached_subset"], flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
