"""Issue 5: the regimes on real data.

- hymenoptera with the hub MobileNetV2 1.0 feature vector: val accuracy of deep feature extraction and of full
  fine-tuning (target >= 0.94 for feature extraction);
- SMS spam with the MiniLM pair (preprocessor + encoder): spam F1 of deep feature extraction on a stratified 20%
  validation split, seed 0 (target >= 0.95).

Usage: python bench/bench_regimes.py [--out bench/regimes.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ASSETS, HUB_MOBILENET_V2, HYMENOPTERA, machine, require_assets  # noqa: E402

import tfxfer  # noqa: E402

SMS = ASSETS / "data" / "sms_spam" / "smsspamcollection" / "SMSSpamCollection"
MINILM = ASSETS / "models" / "hub" / "all_minilm_l6_v2_encoder"
MINILM_PREPROCESS = ASSETS / "models" / "hub" / "all_minilm_l6_v2_preprocess"


def hymenoptera(regime, **options):
    started = time.perf_counter()
    extractor = tfxfer.load_extractor(HUB_MOBILENET_V2)
    data = tfxfer.load_images(HYMENOPTERA, extractor=extractor, batch_size=32)
    model = tfxfer.TransferModel(extractor, regime=regime, seed=0, verbose=0, **options).fit(data)
    return {"val_accuracy": model.evaluate(data.validation)["accuracy"], "epochs": len(model.history_["loss"]),
            "seconds": time.perf_counter() - started, "options": options}


#: Heads for SMS spam, all measured: the head without hidden layers (BatchNorm first under text since 2026-12-06) with
#: balanced class weights, and a wider head without them (class weights trade precision for recall, and F1 needs both).
SMS_HEADS = {
    "linear head, balanced class weights": dict(head=tfxfer.Head(hidden_units=()), class_weight="auto"),
    "hidden 256 head, no class weights": dict(head=tfxfer.Head(hidden_units=(256,)), class_weight=None),
}


def sms_spam():
    import tensorflow_text  # noqa: F401  (the MiniLM preprocessor's ops)

    started = time.perf_counter()
    extractor = tfxfer.load_extractor(MINILM, preprocessor=MINILM_PREPROCESS)
    data = tfxfer.load_text(SMS, column_names=["label", "text"], validation_split=0.2, seed=0, batch_size=64)
    cache = tfxfer.FeatureCache()  # the sentences are embedded once, for both heads
    results = {}
    for name, options in SMS_HEADS.items():
        model = tfxfer.TransferModel(extractor, regime="feature-extraction", learning_rate=1e-2, epochs=60,
                                     patience=5, seed=0, cache=cache, verbose=0, **options).fit(data)
        probabilities = model.predict(data.validation)
        _, labels = data.examples("validation")
        spam = data.task.class_names.index("spam")
        predicted = probabilities.argmax(1) == spam
        actual = labels == spam
        precision = (predicted & actual).sum() / max(predicted.sum(), 1)
        recall = (predicted & actual).sum() / max(actual.sum(), 1)
        results[name] = {"spam_f1": float(2 * precision * recall / (precision + recall)),
                         "precision": float(precision), "recall": float(recall), "validation": int(len(labels)),
                         "epochs": len(model.history_["loss"]), "seconds_so_far": time.perf_counter() - started}
        print(name, results[name], flush=True)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/regimes.json")
    parser.add_argument("--only", choices=["hymenoptera", "sms"], help="run one of the two data sets")
    args = parser.parse_args()
    require_assets()
    results = {"machine": machine(), "command": "python " + " ".join(sys.argv)}
    if args.only != "sms":
        results["hymenoptera_feature_extraction"] = hymenoptera("feature-extraction")
        print(results["hymenoptera_feature_extraction"], flush=True)
        results["hymenoptera_fine_tune"] = hymenoptera("fine-tune", warmup_epochs=10, epochs=10)
        print(results["hymenoptera_fine_tune"], flush=True)
    if args.only == "hymenoptera":
        Path(args.out).write_text(json.dumps(results, indent=2, default=float))
        return
    results["sms_spam_minilm_feature_extraction"] = sms_spam()
    print(results["sms_spam_minilm_feature_extraction"], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=float))
    print(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
