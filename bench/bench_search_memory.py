"""Issue 6: memory across a long search. Peak RSS after each of 20 trials; trial 20 must be <= 1.05 x trial 3.

Runs on hymenoptera with the Keras MobileNetV2 of the assets (freeze depths 14-19, cached) by default, or with
`--tiny` on a generated image folder and a small CNN.

Usage: python bench/bench_search_memory.py [--trials 20] [--tiny] [--out bench/search_memory.json]
"""

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HYMENOPTERA, KERAS_MOBILENET_V2, machine, require_assets  # noqa: E402

import tfxfer  # noqa: E402
from tfxfer.search import SearchSpace, TransferSearch  # noqa: E402


class PeakMemory(keras.callbacks.Callback):
    """Peak resident set size (MB) at the end of each trial; a trial is one model, trained in one or two phases.

    Keras Tuner deep-copies callbacks for every trial, so the record lives on the class.
    """

    per_trial = []
    trial_model = [None]

    def on_train_end(self, logs=None):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if self.model is PeakMemory.trial_model[0]:
            PeakMemory.per_trial[-1] = peak
        else:
            PeakMemory.per_trial.append(peak)
            PeakMemory.trial_model[0] = self.model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default="bench/search_memory.json")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import tiny_cnn
        from helpers import noise_folders

        extractor = tfxfer.load_extractor(tiny_cnn())
        data = tfxfer.load_images(noise_folders(folder / "images", per_class=20), extractor=extractor)
        space = SearchSpace(frozen_blocks=[1, 2, 3, 4], warmup_epochs=1)
    else:
        require_assets()
        extractor = tfxfer.load_extractor("MobileNetV2", weights=str(KERAS_MOBILENET_V2))
        data = tfxfer.load_images(HYMENOPTERA, extractor=extractor)
        space = SearchSpace(frozen_blocks=[14, 16, 17, 18, 19], warmup_epochs=2)
    memory = PeakMemory()
    search = TransferSearch(extractor, space=space, max_trials=args.trials, epochs=5, patience=2,
                            directory=folder / "runs", project_name="memory", verbose=0)
    search.search(data, callbacks=[memory])
    trial_peaks = PeakMemory.per_trial
    result = {"machine": machine(), "command": "python " + " ".join(sys.argv), "trials": len(trial_peaks),
              "peak_rss_mb_per_trial": [round(p, 1) for p in trial_peaks],
              "ratio_trial_20_over_trial_3": trial_peaks[-1] / trial_peaks[2]}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
