"""Issue 20: the probe of every block boundary, on the shared assets.

Sections (all by default, or those named with --sections):

- cost: for each extractor, the probe (one pass over train and validation, pooled activations at every cut, three
  scores per cut) against one plain forward pass of the extractor over the same data (as a user writes it, and
  with the next batch decoded while one runs, as the probe reads), --repeats times each, interleaved (medians), cold (freshly loaded extractors) and warm (one extractor, after a first pass and probe);
  goal: <= 1.3x.
- tau: Kendall's tau between each probe score and the validation score of a trained model at the same
  (extractor, freeze depth) pairs (a fixed recipe per pair: head warm-up, then the blocks after the depth).
- search: a search across extractors (probe first, trials on its best pairs) against a search of each extractor
  alone with the same trial budget each: best extractor, best score, wall time; goal: same extractor, within 0.01,
  <= 1/2 the time.
- threads: the probe's scoring of every cut (linear, k-NN, LogME) on one BLAS/OpenMP thread, as `tfxfer.probe`
  scores, against the libraries' default of a thread per core, on the same pooled features, interleaved.
- plot: one probe of the --plot-extractors at --image-size, drawn with `tfxfer.plot_probe` to --plot (the README's
  figure).

Tau and search take image extractors (hymenoptera at --image-size) or text ones (SMS spam, --sms-rows of it; MiniLM
cut between its layers), not both in one run.

Usage: python bench/bench_probe.py [--sections cost tau search plot threads] [--image-size 224] [--epochs 10] [--every 1]
       [--trials 8] [--sms-rows 1000] [--tau-extractors ...] [--search-extractors ...]
       [--plot bench/probe_hymenoptera.png] [--out bench/probe.json]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ASSETS, HUB_MOBILENET_V2, HYMENOPTERA, KERAS_MOBILENET_V2, SMS_CSV, machine,  # noqa: E402
                    require_assets, sms_subset)

import tfxfer  # noqa: E402

KERAS = ASSETS / "models" / "keras"
IMAGE_EXTRACTORS = {
    "hub MobileNetV2 1.0": (str(HUB_MOBILENET_V2), {}),
    "hub MobileNet v1 0.25": (str(ASSETS / "models" / "hub" / "mobilenet_v1_025_224_feature_vector"), {}),
    "keras MobileNetV2 1.0": ("MobileNetV2", {"weights": str(KERAS_MOBILENET_V2)}),
    "keras MobileNetV2 0.35": ("MobileNetV2", {"alpha": 0.35, "weights": str(
        KERAS / "mobilenet_v2_0.35_224_no_top" / "mobilenet_v2_0.35_224_tm_no_top.weights.h5")}),
    "keras MobileNet v1 0.25": ("MobileNet", {"alpha": 0.25, "weights": str(
        KERAS / "mobilenet_v1_0.25_224_no_top" / "mobilenet_2_5_224_tf_no_top.h5")}),
}
TEXT_EXTRACTORS = {
    "hub GloVe 50d": (str(ASSETS / "models" / "hub" / "glove50_top2446_text_embedding"), {}),
    "hub MiniLM-L6": (str(ASSETS / "models" / "hub" / "all_minilm_l6_v2_encoder"),
                      {"preprocessor": str(ASSETS / "models" / "hub" / "all_minilm_l6_v2_preprocess")}),
}


def _forward_seconds(extractor, data, prefetch=False):
    """One plain pass of the extractor over the training and validation splits, as a user would run it, or with
    the next batch decoded while one runs (`prefetch`, as the probe reads its data)."""
    data = data.for_extractor(extractor)
    started = time.perf_counter()
    for split in ("train", "validation"):
        dataset = data.unbatched(split).batch(data.batch_size)
        for inputs, _ in dataset.prefetch(tf.data.AUTOTUNE) if prefetch else dataset:
            extractor(inputs, training=False)
    return time.perf_counter() - started


def _probe_seconds(extractor, data):
    started = time.perf_counter()
    table = tfxfer.probe(data, [extractor])
    return time.perf_counter() - started, table


def cost(args):
    """Cold: a freshly loaded extractor's first pass against another fresh one's first probe (each pays for
    instantiating its graph; loading is not timed). Warm: one extractor, after a pass and a probe (the probe keeps
    its traced pass on the extractor, as a forward pass keeps the SavedModel's function)."""
    rows = []
    for name, (source, options), data in _all(args):
        extractor = tfxfer.load_extractor(source, **options)
        _forward_seconds(extractor, data)
        _probe_seconds(extractor, data)
        _forward_seconds(extractor, data, prefetch=True)
        runs = {key: [] for key in ("forward", "prefetched", "probe", "cold_forward", "cold_prefetched", "cold_probe")}
        for _ in range(args.repeats):  # interleaved, so that drift in the machine's speed hits all alike
            runs["cold_forward"].append(_forward_seconds(tfxfer.load_extractor(source, **options), data))
            runs["cold_prefetched"].append(_forward_seconds(tfxfer.load_extractor(source, **options), data, True))
            runs["cold_probe"].append(_probe_seconds(tfxfer.load_extractor(source, **options), data)[0])
            runs["forward"].append(_forward_seconds(extractor, data))
            runs["prefetched"].append(_forward_seconds(extractor, data, prefetch=True))
            seconds, table = _probe_seconds(extractor, data)
            runs["probe"].append(seconds)
        median = {key: float(np.median(values)) for key, values in runs.items()}
        best = table.iloc[0]
        rows.append({"extractor": name, "blocks": extractor.n_blocks, "cuts": len(table),
                     **{f"{key}_s": value for key, value in median.items()},
                     "ratio": median["probe"] / median["forward"],
                     "ratio_prefetched": median["probe"] / median["prefetched"],
                     "cold_ratio": median["cold_probe"] / median["cold_forward"],
                     "cold_ratio_prefetched": median["cold_probe"] / median["cold_prefetched"],
                     **{f"{key}_runs": values for key, values in runs.items()},
                     "best_cut": int(best.cut),
                     "best_linear": float(best.linear), "best_knn": float(table.knn.max()),
                     "best_logme": float(table.logme.max())})
        print(rows[-1], flush=True)
    return rows


def threads(args):
    """The probe's scoring of every cut on one BLAS/OpenMP thread (what `probe` does) against the libraries' default
    (a thread per core), on the same pooled features, interleaved --repeats times (medians)."""
    from threadpoolctl import threadpool_limits

    from tfxfer.search.probing import knn_score, linear_score, logme, pooled_features

    rows = []
    for name, (source, options), data in _all(args):
        extractor = tfxfer.load_extractor(source, **options)
        features = pooled_features(extractor, data)

        def score():
            started = time.perf_counter()
            for splits in features.values():
                linear_score(splits["train"], splits["validation"], data.task)
                knn_score(splits["train"], splits["validation"], data.task)
                logme(*splits["train"])
            return time.perf_counter() - started

        one, default = [], []
        for _ in range(args.repeats):
            with threadpool_limits(limits=1):
                one.append(score())
            default.append(score())
        train = [splits["train"][0] for splits in features.values()]
        rows.append({"extractor": name, "cuts": len(features), "examples": len(train[0]),
                     "dims": [part.shape[1] for part in train],
                     "one_thread_s": float(np.median(one)), "default_threads_s": float(np.median(default)),
                     "one_thread_runs": one, "default_threads_runs": default})
        print({k: v for k, v in rows[-1].items() if not k.endswith("runs") and k != "dims"}, flush=True)
    return rows


def _data(names, args):
    """Hymenoptera at --image-size for image extractors; SMS spam (--sms-rows of it, stratified) for text ones."""
    if all(name in TEXT_EXTRACTORS for name in names):
        import tensorflow_text  # noqa: F401  (the MiniLM preprocessor's ops)

        return tfxfer.load_text(sms_subset(args.sms_rows) if args.sms_rows else SMS_CSV, validation_split=0.2,
                                seed=0, batch_size=32)
    if any(name in TEXT_EXTRACTORS for name in names):
        raise SystemExit(f"Give image extractors or text extractors, not both: {names}")
    return tfxfer.load_images(HYMENOPTERA, image_size=(args.image_size,) * 2, value_range=(0.0, 1.0), batch_size=32)


def _spec(name, args):
    """An extractor's source and options: images at the benchmark's image size; the MiniLM encoder cut between its
    transformer layers (`cache_sequences=True`), so that its probe and freeze depths cover every layer."""
    if name in TEXT_EXTRACTORS:
        source, options = TEXT_EXTRACTORS[name]
        return source, {**options, "cache_sequences": True} if "preprocessor" in options else options
    source, options = IMAGE_EXTRACTORS[name]
    return source, {**options, "image_size": (args.image_size,) * 2}


def tau(args):
    """Each probe score against the validation accuracy of a model trained at the same (extractor, depth) pairs."""
    from scipy.stats import kendalltau

    data, rows, pairs = _data(args.tau_extractors, args), [], []
    for name in args.tau_extractors:
        source, options = _spec(name, args)
        extractor = tfxfer.load_extractor(source, **options)
        data = data.for_extractor(extractor)  # the Keras applications take [0, 255]
        table = tfxfer.probe(data, [extractor]).sort_values("cut")
        pretrained = [w.numpy() for w in extractor.weights]
        cache = tfxfer.FeatureCache()
        for row in table.iloc[::-args.every].itertuples():  # every `every`-th cut, down from the output
            for weight, value in zip(extractor.weights, pretrained):
                weight.assign(value)
            started = time.perf_counter()
            regime = "feature-extraction" if row.cut == extractor.n_blocks else "mid-layer"
            options = {} if regime == "feature-extraction" else {"freeze_blocks": row.cut, "warmup_epochs": 3,
                                                                    "fine_tune_learning_rate": 1e-4}
            model = tfxfer.TransferModel(extractor, regime=regime, epochs=args.epochs, learning_rate=1e-3,
                                         patience=None, cache=cache, seed=0, verbose=0, **options).fit(data)
            trained = max(model.history_["val_accuracy"])
            pairs.append({"extractor": name, "cut": int(row.cut), "linear": row.linear, "knn": row.knn,
                          "logme": row.logme, "trained": trained, "seconds": time.perf_counter() - started})
            print(pairs[-1], flush=True)
    for among in [None, *args.tau_extractors]:  # all pairs, then each extractor's depths alone
        chosen = [p for p in pairs if among in (None, p["extractor"])]
        for score in ("linear", "knn", "logme"):
            statistic, p_value = kendalltau([p[score] for p in chosen], [p["trained"] for p in chosen])
            rows.append({"among": among or "all", "score": score, "kendall_tau": statistic, "p_value": p_value,
                         "pairs": len(chosen)})
            print(rows[-1], flush=True)
    return {"pairs": pairs, "tau": rows}


def search(args):
    """A search across extractors against a search of each extractor alone, with the same trial budget each."""
    import shutil
    import tempfile

    data, folder = _data(args.search_extractors, args), Path(tempfile.mkdtemp(prefix="bench_probe_"))
    common = dict(max_trials=args.trials, epochs=args.epochs, patience=None, seed=0, verbose=0,
                  directory=folder, space=tfxfer.SearchSpace(warmup_epochs=3))
    specs = [_spec(name, args) for name in args.search_extractors]
    runs = []
    started = time.perf_counter()
    across = tfxfer.TransferSearch(extractors=specs, project_name="across", **common)
    table = across.search(data)
    runs.append({"run": "across extractors (probe first)", "trials": len(table), "best_extractor":
                 table.extractor[0], "best_frozen_blocks": int(table.frozen_blocks[0]), "best_score":
                 float(table.score[0]), "seconds": time.perf_counter() - started,
                 "candidates": across.hypermodel_.candidates})
    print(runs[-1], flush=True)
    alone_seconds, alone_best = 0.0, None
    for name, (source, options) in zip(args.search_extractors, specs):
        started = time.perf_counter()
        table = tfxfer.TransferSearch(source, extractor_options=options, project_name=name.replace(" ", "_"),
                                      **common).search(data.for_extractor(tfxfer.load_extractor(source, **options)))
        seconds = time.perf_counter() - started
        alone_seconds += seconds
        runs.append({"run": f"{name} alone", "trials": len(table), "best_extractor": name,
                     "best_frozen_blocks": int(table.frozen_blocks[0]), "best_score": float(table.score[0]),
                     "seconds": seconds})
        print(runs[-1], flush=True)
        if alone_best is None or runs[-1]["best_score"] > alone_best["best_score"]:
            alone_best = runs[-1]
    shutil.rmtree(folder, ignore_errors=True)
    from tfxfer.search.hypermodel import extractor_key

    names = {extractor_key(source, options): name for name, (source, options) in zip(args.search_extractors, specs)}
    chosen = names[runs[0]["best_extractor"]]
    summary = {"same_best_extractor": chosen == alone_best["best_extractor"],
               "score_gap": alone_best["best_score"] - runs[0]["best_score"],
               "time_ratio": runs[0]["seconds"] / alone_seconds}
    print(summary, flush=True)
    return {"runs": runs, "summary": summary}


def plot(args):
    """One probe of several extractors on hymenoptera, drawn for the README."""
    import pandas as pd

    data, tables = _data(args.plot_extractors, args), []
    for name in args.plot_extractors:
        source, options = _spec(name, args)
        extractor = tfxfer.load_extractor(source, **options)
        table = tfxfer.probe(data.for_extractor(extractor), [extractor])
        tables.append(table.assign(extractor=name))
    table = pd.concat(tables, ignore_index=True)
    tfxfer.plot_probe(table, path=args.plot)
    print(table.round(3).to_string(index=False), flush=True)
    return {"plot": args.plot, "table": table.to_dict("records")}


def _all(args):
    images = tfxfer.load_images(HYMENOPTERA, image_size=(224, 224), value_range=(0.0, 1.0), batch_size=32)
    for name, spec in IMAGE_EXTRACTORS.items():
        if not args.only or name in args.only:
            yield name, spec, images
    texts = tfxfer.load_text(SMS_CSV, validation_split=0.2, batch_size=64)
    for name, spec in TEXT_EXTRACTORS.items():
        if not args.only or name in args.only:
            yield name, spec, texts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sections", nargs="+", default=["cost", "tau", "search"],
                        choices=["cost", "tau", "search", "plot", "threads"])
    parser.add_argument("--only", nargs="+", help="cost, threads: extractor names to run (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="cost, threads: timings of each (medians)")
    parser.add_argument("--image-size", type=int, default=224, help="tau and search: image side in pixels")
    parser.add_argument("--epochs", type=int, default=10, help="tau and search: most epochs of each phase")
    parser.add_argument("--every", type=int, default=1, help="tau: every how many cuts a model is trained")
    parser.add_argument("--trials", type=int, default=8, help="search: the trial budget of each search")
    parser.add_argument("--sms-rows", type=int, help="tau and search with text extractors: SMS spam rows to use "
                        "(a stratified sample; default: all 5,574)")
    parser.add_argument("--tau-extractors", nargs="+", default=["keras MobileNetV2 0.35", "keras MobileNet v1 0.25"],
                        choices=[*IMAGE_EXTRACTORS, *TEXT_EXTRACTORS])
    parser.add_argument("--search-extractors", nargs="+", choices=[*IMAGE_EXTRACTORS, *TEXT_EXTRACTORS],
                        default=["keras MobileNetV2 0.35", "keras MobileNet v1 0.25", "hub MobileNet v1 0.25"])
    parser.add_argument("--plot-extractors", nargs="+", choices=list(IMAGE_EXTRACTORS),
                        default=["hub MobileNetV2 1.0", "keras MobileNetV2 0.35", "hub MobileNet v1 0.25"])
    parser.add_argument("--plot", default="bench/probe_hymenoptera.png", help="plot: where the figure goes")
    parser.add_argument("--out", default="bench/probe.json")
    args = parser.parse_args()
    require_assets()
    results = {"machine": machine(), "command": "python " + " ".join(sys.argv), "load_start": os.getloadavg()}
    for section in args.sections:
        results[section] = globals()[section](args)
    results["load_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
