"""Issue 6: a default search (every freeze depth) of >= 10 trials on hymenoptera with the hub MobileNetV2 1.0,
against the plain-Keras TF tutorial recipe on the same data and weights; both wall times, in one run.

A TF Hub SavedModel is one function, so only its whole output is cached: feature-extraction trials and every
warm-up train on the cache, trials with fewer frozen blocks fine-tune end to end.

Usage: python bench/bench_hub_search.py [--trials 10] [--epochs 10] [--out bench/hub_search.json]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HUB_MOBILENET_V2, HYMENOPTERA, machine, require_assets, tutorial_recipe  # noqa: E402

import tfxfer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="bench/hub_search.json")
    args = parser.parse_args()
    require_assets()
    results = {"machine": machine(), "command": "python " + " ".join(sys.argv)}
    results["recipe"] = tutorial_recipe()
    print("tutorial recipe:", results["recipe"], flush=True)
    started = time.perf_counter()
    extractor = tfxfer.load_extractor(HUB_MOBILENET_V2)
    data = tfxfer.load_images(HYMENOPTERA, extractor=extractor, batch_size=32)
    search = tfxfer.TransferSearch(extractor, max_trials=args.trials, epochs=args.epochs, patience=2,
                                   directory=tempfile.mkdtemp(), project_name="hub", seed=0, verbose=0)
    table = search.search(data)
    seconds = time.perf_counter() - started
    table.to_csv(Path(args.out).with_suffix(".trials.csv"), index=False)
    print(table.to_string(), flush=True)
    results["search"] = {"trials": len(table), "seconds": seconds, "best_val_accuracy": float(table.score.max()),
                         "best": table.iloc[0].to_dict()}
    results["best_minus_recipe"] = results["search"]["best_val_accuracy"] - results["recipe"]["val_accuracy_fine_tuned"]
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
