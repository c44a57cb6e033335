"""Issue 17: the training recipe on real data, each addition alone and together, against today's defaults.

- hymenoptera (MobileNetV2 1.0, the hub feature vector or with `--form keras` keras.applications', full
  fine-tuning): constant 1e-5 (today) against layer-wise decay, fastai's low/high rates, cosine and one-cycle
  schedules, label smoothing and flip TTA (`--tta` evaluates every configuration with it);
- SMS spam (MiniLM encoder, frozen, the default head: linear when measured): spam F1 of today's head against label
  smoothing, the schedules and the learning-rate finder's suggestion;
- `--only heads`: the frozen head (deep feature extraction, every default but the head's) on whole data sets: the
  linear head against the same head with BatchNormalization on its input (`Head(batch_norm=True)`), each with and
  without balanced class weights: SMS spam (all 5,574 rows, 80/20 stratified) with MiniLM and GloVe, spam F1;
  hymenoptera (224x224) with the hub and Keras MobileNetV2 1.0, val accuracy, and for the hub one the val accuracy
  of the first seed's model exported as a full-integer int8 LiteRT file (`tfxfer.export(..., format="litert",
  quantize="int8")`); and heads with one hidden layer (128 or 256 units), and the library's default head
  (`"default head"`). `--heads` and `--head-sets` choose some. Activations are cached on disk under `--cache` so a
  second run skips the extractors.
- `--only class-weights`: the default frozen head under three class weightings (none, balanced, the square root
  of balanced) on the skewed sets: SMS spam (13% spam) with MiniLM and GloVe, and hymenoptera with 1 bee in 4
  kept (ants 124, bees 31) for training only (`bees-train`: validation whole, so the classes' shares shift) or in
  both splits (`bees-both`), with the hub MobileNetV2 1.0; the minority class's F1 and the balanced accuracy on
  validation.

Every configuration runs with the same seeds (`--repeats`), in one process, on one shared feature cache (the
warm-up phase trains on cached activations, so caching happens once). Scaled to a loaded 2-core CPU: images at
`--image-size`, `--fine-tune-epochs` fine-tuning epochs, SMS spam subsampled to `--sms-rows` rows (stratified).

Usage: python bench/bench_recipe.py [--out bench/recipe.json] [--only hymenoptera|sms|heads|class-weights] [--repeats 2]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ASSETS, HUB_MOBILENET_V2, HYMENOPTERA, KERAS_MOBILENET_V2, SMS_CSV, machine,  # noqa: E402
                    require_assets, sms_subset)

import tfxfer  # noqa: E402

MINILM = ASSETS / "models" / "hub" / "all_minilm_l6_v2_encoder"
MINILM_PREPROCESS = ASSETS / "models" / "hub" / "all_minilm_l6_v2_preprocess"

#: Fine-tuning configurations: TransferModel options over today's (warm-up 5 epochs at 1e-3 on cached activations,
#: then every block at a constant 1e-5). Layer decay and block rates lower the rates below the top, so they are
#: measured with a higher top rate (1e-4), and so is a constant 1e-4, to tell the two effects apart.
FINE_TUNE = {
    "today: constant 1e-5": {},
    "constant 1e-4": dict(fine_tune_learning_rate=1e-4),
    "constant 3e-5": dict(fine_tune_learning_rate=3e-5),
    "layer_decay 0.8 at 1e-4": dict(fine_tune_learning_rate=1e-4, layer_decay=0.8),
    "block_rates (1e-6, 1e-4)": dict(block_rates=(1e-6, 1e-4)),
    "cosine (warm-up + decay) at 1e-5": dict(schedule={"fine-tune": "cosine"}),
    "one-cycle at 1e-5": dict(schedule={"fine-tune": "one-cycle"}),
    "label smoothing 0.1": dict(label_smoothing=0.1),
    # LP-FT (Kumar et al., ICLR 2022): the head trained to convergence (early stopping) before any block unfreezes.
    "head to convergence (warm-up up to 20 epochs)": dict(warmup_epochs=20),
    "head to convergence, layer_decay 0.8 at 1e-4": dict(warmup_epochs=20, fine_tune_learning_rate=1e-4,
                                                          layer_decay=0.8),
}

#: The candidate new default, measured with `--together` once the additions alone are known: the only ones whose
#: mean beat today's were block rates and flip TTA (schedules and label smoothing lost), so those two together.
TOGETHER = {"together: block_rates (1e-6, 1e-4) + flip TTA": dict(block_rates=(1e-6, 1e-4))}

#: SMS spam heads (deep feature extraction, the default head at 1e-3 unless said).
SMS = {
    "today: default head, constant 1e-3": {},
    "label smoothing 0.1": dict(label_smoothing=0.1),
    "cosine": dict(schedule="cosine"),
    "one-cycle": dict(schedule="one-cycle"),
    "one-cycle at 1e-2": dict(schedule="one-cycle", learning_rate=1e-2),
}


def summary(values):
    values = np.asarray(values, float)
    return {"mean": float(values.mean()), "std": float(values.std()), "runs": values.tolist()}


#: The two forms of MobileNetV2 1.0 (`--form`): the TF Hub feature vector and keras.applications' weights.
FORMS = {"hub": (str(HUB_MOBILENET_V2), {}), "keras": ("MobileNetV2", {"weights": str(KERAS_MOBILENET_V2)})}


def hymenoptera(args, results, save):
    source, extractor_options = FORMS[args.form]
    extractor_options = {**extractor_options, "image_size": (args.image_size, args.image_size)}
    extractor = tfxfer.load_extractor(source, **extractor_options)
    data = tfxfer.load_images(HYMENOPTERA, extractor=extractor, batch_size=32, on_bad="skip", augment=args.augment)
    cache = tfxfer.FeatureCache(progress=False)
    table = results.setdefault(("hymenoptera" if args.form == "hub" else f"hymenoptera, {args.form}")
                               + ", augmented" * args.augment, {})
    configurations = TOGETHER if args.together else FINE_TUNE
    for name, options in configurations.items():
        if args.configs and name not in args.configs:
            continue
        rows = {"val_accuracy": [], "seconds": [], "epochs": [], "val_accuracy_tta": []}
        for seed in range(args.repeats):
            started = time.perf_counter()
            model = tfxfer.TransferModel(source, regime="fine-tune", epochs=args.fine_tune_epochs, seed=seed,
                                         cache=cache, verbose=0, extractor_options=extractor_options,
                                         **{"warmup_epochs": 5, **options}).fit(data)
            rows["seconds"].append(time.perf_counter() - started)
            rows["val_accuracy"].append(model.evaluate(data.validation)["accuracy"])
            rows["epochs"].append(len(model.history_["loss"]))
            if name.startswith(("today", "together")) or args.tta:
                rows["val_accuracy_tta"].append(model.evaluate(data.validation, test_time_augmentation=True)["accuracy"])
            print(name, seed, {k: v[-1] for k, v in rows.items() if v}, flush=True)
        table[name] = {key: summary(values) for key, values in rows.items() if values} | {"options": repr(options)}
        save()


def spam_f1(model, data):
    probabilities = model.predict(data.validation)
    _, labels = data.examples("validation")
    spam = data.task.class_names.index("spam")
    predicted, actual = probabilities.argmax(1) == spam, labels == spam
    precision = (predicted & actual).sum() / max(predicted.sum(), 1)
    recall = (predicted & actual).sum() / max(actual.sum(), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-9))


def sms(args, results, save):
    import tensorflow_text  # noqa: F401  (the MiniLM preprocessor's ops)

    extractor = tfxfer.load_extractor(MINILM, preprocessor=MINILM_PREPROCESS)
    path = sms_subset(args.sms_rows) if args.sms_rows else SMS_CSV
    data = tfxfer.load_text(path, validation_split=0.2, seed=0, batch_size=64)
    cache = tfxfer.FeatureCache(args.cache, progress=False)
    table = results.setdefault("sms_spam", {"rows": int(sum(data.sizes.values()))})
    started = time.perf_counter()
    finding = tfxfer.TransferModel(extractor, seed=0, cache=cache, verbose=0).find_learning_rate(data)
    table["finder"] = {"valley": finding.valley, "steepest": finding.steepest,
                       "seconds (with caching)": time.perf_counter() - started}
    finding.plot(Path(args.out).with_suffix(".sms_lr_find.png"))
    print("finder", table["finder"], flush=True)
    configs = dict(SMS, **{f"finder valley ({finding.valley:.2g})": dict(learning_rate=finding.valley)})
    for name, options in configs.items():
        rows = {"spam_f1": [], "seconds": [], "epochs": []}
        for seed in range(args.repeats):
            started = time.perf_counter()
            model = tfxfer.TransferModel(extractor, seed=seed, cache=cache, verbose=0, **options).fit(data)
            rows["seconds"].append(time.perf_counter() - started)
            rows["spam_f1"].append(spam_f1(model, data))
            rows["epochs"].append(len(model.history_["loss"]))
            print(name, seed, {k: v[-1] for k, v in rows.items()}, flush=True)
        table[name] = {key: summary(values) for key, values in rows.items()} | {"options": repr(options)}
        save()


#: Frozen heads: TransferModel options (Adam 1e-3, dropout 0.2, balanced class weights unless said). The default
#: head is `Head()`: BatchNorm first and a hidden layer of 128 under text extractors, linear under image extractors.
HEADS = {
    "default head": {},
    "linear head": dict(head=tfxfer.Head(batch_norm=False, hidden_units=())),
    "linear head, no class weights": dict(head=tfxfer.Head(batch_norm=False, hidden_units=()), class_weight=None),
    "batch_norm head": dict(head=tfxfer.Head(batch_norm=True, hidden_units=())),
    "batch_norm head, no class weights": dict(head=tfxfer.Head(batch_norm=True, hidden_units=()),
                                              class_weight=None),
    "batch_norm head, hidden 256": dict(head=tfxfer.Head(batch_norm=True, hidden_units=(256,))),
    "batch_norm head, hidden 128": dict(head=tfxfer.Head(batch_norm=True, hidden_units=(128,))),
    "linear head, hidden 256": dict(head=tfxfer.Head(batch_norm=False, hidden_units=(256,))),
    "linear head, hidden 128": dict(head=tfxfer.Head(batch_norm=False, hidden_units=(128,))),
}


def int8_accuracy(model, data):
    """Validation accuracy of `model` exported as a full-integer int8 LiteRT file, run in the LiteRT interpreter."""
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        path = tfxfer.export(model, "int8", root=root, format="litert", quantize="int8", data_summary=data)
        paths, labels = data.examples("validation")
        predicted = tfxfer.load_exported(path).predict(list(paths))["class"]
        return float(np.mean(np.asarray(predicted) == np.asarray(data.task.class_names)[labels]))


def heads(args, results, save):
    import tensorflow_text  # noqa: F401  (the MiniLM preprocessor's ops)

    from bench_probe import IMAGE_EXTRACTORS, TEXT_EXTRACTORS

    cache = tfxfer.FeatureCache(args.cache, progress=False)
    sets = [("SMS spam", name, TEXT_EXTRACTORS[name], "spam_f1") for name in ("hub MiniLM-L6", "hub GloVe 50d")]
    sets += [("hymenoptera", name, IMAGE_EXTRACTORS[name], "val_accuracy")
             for name in ("hub MobileNetV2 1.0", "keras MobileNetV2 1.0")]
    table = results.setdefault("heads", {})
    for data_name, extractor_name, (source, options), metric in sets:
        if args.head_sets and extractor_name not in args.head_sets:
            continue
        extractor = tfxfer.load_extractor(source, **options)
        if data_name == "SMS spam":
            data = tfxfer.load_text(SMS_CSV, validation_split=0.2, seed=0, batch_size=64)
        else:
            data = tfxfer.load_images(HYMENOPTERA, extractor=extractor, batch_size=32, seed=0)
        for name, options in HEADS.items():
            if args.heads and name not in args.heads:
                continue
            rows = {metric: [], "seconds": [], "epochs": []}
            for seed in range(args.repeats):
                started = time.perf_counter()
                model = tfxfer.TransferModel(extractor, seed=seed, cache=cache, verbose=0, **options).fit(data)
                rows["seconds"].append(time.perf_counter() - started)
                rows[metric].append(spam_f1(model, data) if metric == "spam_f1"
                                    else model.evaluate(data.validation)["accuracy"])
                rows["epochs"].append(len(model.history_["loss"]))
                if seed == 0 and extractor_name.startswith("hub MobileNetV2"):
                    rows["int8_val_accuracy"] = [int8_accuracy(model, data)]
            key = f"{data_name}, {extractor_name}: {name}"
            table[key] = {k: summary(v) for k, v in rows.items()} | {"options": repr(options)}
            print(key, {k: round(v["mean"], 4) for k, v in table[key].items() if isinstance(v, dict)}, flush=True)
            save()


#: Class weightings of a multi-class head: Keras' `class_weight` from the training split's counts.
WEIGHTINGS = {
    "none": lambda task: None,
    "balanced (today's auto)": lambda task: task.fit_class_weight(),
    "square root of balanced": lambda task: {k: float(np.sqrt(w)) for k, w in task.fit_class_weight().items()},
}


def skewed_hymenoptera(splits, keep_every=4):
    """Hymenoptera with every `keep_every`-th bee kept in `splits` ("train", "val"), the others whole."""
    import pandas as pd

    rows = []
    for split in ("train", "val"):
        for label in ("ants", "bees"):
            files = sorted((HYMENOPTERA / split / label).iterdir())
            if split in splits and label == "bees":
                files = files[::keep_every]
            rows += [{"path": str(path), "label": label, "split": split} for path in files]
    return pd.DataFrame(rows)


def class_weights(args, results, save):
    """The minority class's F1 and balanced accuracy of the default frozen head under each weighting."""
    import tensorflow_text  # noqa: F401  (the MiniLM preprocessor's ops)
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from bench_probe import IMAGE_EXTRACTORS, TEXT_EXTRACTORS

    cache = tfxfer.FeatureCache(args.cache, progress=False)
    mobilenet = IMAGE_EXTRACTORS["hub MobileNetV2 1.0"]
    sets = {"sms-minilm": ("SMS spam", "hub MiniLM-L6", TEXT_EXTRACTORS["hub MiniLM-L6"], "spam", None),
            "sms-glove": ("SMS spam", "hub GloVe 50d", TEXT_EXTRACTORS["hub GloVe 50d"], "spam", None),
            "bees-train": ("hymenoptera, 1 bee in 4 kept for training", "hub MobileNetV2 1.0", mobilenet, "bees",
                           ("train",)),
            "bees-both": ("hymenoptera, 1 bee in 4 kept for training and validation", "hub MobileNetV2 1.0",
                          mobilenet, "bees", ("train", "val"))}
    table = results.setdefault("class_weights", {})
    for data_name, extractor_name, (source, options), minority, skewed in map(sets.get, args.sets):
        extractor = tfxfer.load_extractor(source, **options)
        if skewed is None:
            data = tfxfer.load_text(SMS_CSV, validation_split=0.2, seed=0, batch_size=64)
        else:
            data = tfxfer.load_images(skewed_hymenoptera(skewed), extractor=extractor, split_column="split",
                                      batch_size=32)
        _, labels = data.examples("validation")
        positive = data.task.class_names.index(minority)
        for name, weighting in WEIGHTINGS.items():
            rows = {f"{minority} F1": [], "balanced accuracy": [], "epochs": []}
            for seed in range(args.repeats):
                model = tfxfer.TransferModel(extractor, seed=seed, cache=cache, verbose=0,
                                             class_weight=weighting(data.task)).fit(data)
                predicted = model.predict(data.validation).argmax(1)
                rows[f"{minority} F1"].append(f1_score(labels, predicted, pos_label=positive))
                rows["balanced accuracy"].append(balanced_accuracy_score(labels, predicted))
                rows["epochs"].append(len(model.history_["loss"]))
            key = f"{data_name}, {extractor_name}: {name}"
            table[key] = {k: summary(v) for k, v in rows.items()} | {"weights": repr(weighting(data.task))}
            print(key, {k: round(v["mean"], 4) for k, v in table[key].items() if isinstance(v, dict)}, flush=True)
            save()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/recipe.json")
    parser.add_argument("--only", choices=["hymenoptera", "sms", "heads", "class-weights"])
    parser.add_argument("--cache", default="/tmp/tfxfer_bench_cache", help="feature cache folder (SMS spam and the "
                                                                           "heads and class weights)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sets", nargs="+", default=["sms-minilm", "sms-glove", "bees-train", "bees-both"],
                        choices=["sms-minilm", "sms-glove", "bees-train", "bees-both"], help="--only class-weights")
    parser.add_argument("--heads", nargs="+", choices=list(HEADS), help="--only heads: these heads (default: all)")
    parser.add_argument("--head-sets", nargs="+", help="--only heads: these extractors' sets (default: all four)",
                        choices=["hub MiniLM-L6", "hub GloVe 50d", "hub MobileNetV2 1.0", "keras MobileNetV2 1.0"])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--fine-tune-epochs", type=int, default=5)
    parser.add_argument("--sms-rows", type=int, default=2000, help="0 for all 5,574")
    parser.add_argument("--together", action="store_true", help="hymenoptera: only the additions together")
    parser.add_argument("--form", choices=list(FORMS), default="hub", help="hymenoptera: which MobileNetV2 1.0")
    parser.add_argument("--augment", action="store_true", help="hymenoptera: the default random augmentation "
                        "(tfxfer.load_images(augment=True)) in every phase, so nothing is cached")
    parser.add_argument("--tta", action="store_true", help="hymenoptera: evaluate every configuration with flip TTA "
                                                           "too (by default only today's and the combination)")
    parser.add_argument("--configs", nargs="+", choices=list(FINE_TUNE) + list(TOGETHER),
                        help="hymenoptera: only these fine-tuning configurations (default: all)")
    args = parser.parse_args()
    require_assets()
    results = {"machine": machine(), "command": "python " + " ".join(sys.argv), "scale": vars(args)}

    def save():
        Path(args.out).write_text(json.dumps(results, indent=2, default=float))

    if args.only == "heads":
        heads(args, results, save)
    if args.only == "class-weights":
        class_weights(args, results, save)
    if args.only in (None, "sms"):
        sms(args, results, save)
    if args.only in (None, "hymenoptera"):
        hymenoptera(args, results, save)
    save()


if __name__ == "__main__":
    main()
