"""A fine-tuned teacher and its LiteRT exports, and distilled small students in int8, side by side on hymenoptera.

Teacher: the TF Hub MobileNetV2 1.0 224 of ../shared/assets under a softmax head, fine-tuned with the library's
defaults (`tfxfer.TransferModel(regime="fine-tune")`: the head warmed up on cached features, then every block at a
low rate; `--teacher-regime feature-extraction` trains the head alone on the frozen extractor, as runs before
2026-12-07 did). It is exported with `tfxfer.export` as a SavedModel and as
LiteRT files: float32, float16, dynamic-range and full-integer int8 (calibrated on 200 seeded training images, the
default). One more int8 file is converted the same way with per-tensor weight scales (TensorFlow's private
`_experimental_disable_per_channel` converter flag; tfxfer does not offer it): the size that per-channel
quantization parameters cost, and the accuracy they buy.

Students (`--students`, by default both): MobileNet v1 0.25 224 (TF Hub form) and MobileNetV2 0.35 224 (Keras
form), frozen, each under a head trained by `tfxfer.distill` on the teacher's soft scores at each
`--distillation` setting (temperature:alpha; the first is distill's default), and under a head trained on the labels
alone; those heads are trained with every seed of `--seeds` (mean and spread), and the first seed's student at
each setting is exported in int8 (the first setting also in float32).

For each file: size, accuracy on all 153 validation images (LiteRT files in the `ai_edge_litert` interpreter, the
SavedModel through its `serving_images` signature, both on the pixels `decode_image` gives), and latency per image
(batch of one, decoded 224x224 pixels in, scores out to NumPy) with the interpreter at 1 and 2 threads and with the
SavedModel signature (TensorFlow's own thread pools). Latency calls are interleaved: one call of each variant per
round, in rotating order, after a warm-up, so drift in a shared machine's speed hits all alike. Prints Markdown and
writes bench/litert.json.

Usage:
    python bench/bench_litert.py [--teacher-regime fine-tune] [--epochs 20] [--student-epochs 40] [--rounds 60] [--root /tmp/bench_litert]
        [--students "hub MobileNet v1 0.25" "keras MobileNetV2 0.35"] [--distillation 4:0.7 2:0.5] [--seeds 0 1 2]
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxfer  # noqa: E402
from common import ASSETS, HUB_MOBILENET_V2, HYMENOPTERA, machine, require_assets  # noqa: E402
from tfxfer.serving.litert_client import LiteRTRunner, litert_input  # noqa: E402

STUDENTS = {
    "hub MobileNet v1 0.25": (str(ASSETS / "models" / "hub" / "mobilenet_v1_025_224_feature_vector"), {}),
    "keras MobileNetV2 0.35": ("MobileNetV2", {"alpha": 0.35, "weights": str(
        ASSETS / "models" / "keras" / "mobilenet_v2_0.35_224_no_top" / "mobilenet_v2_0.35_224_tm_no_top.weights.h5")}),
}


def _percentiles(seconds):
    return {"p50_ms": round(1000 * float(np.percentile(seconds, 50)), 2),
            "p95_ms": round(1000 * float(np.percentile(seconds, 95)), 2)}


def per_tensor_int8(model, data, root):
    """The teacher's int8 file as `tfxfer.export` converts it, but with one weight scale per tensor instead of per
    channel; written as a version folder beside the others, its metadata copied from a regular int8 export."""
    from tfxfer.serving import litert

    original = litert._configure

    def configure(converter, *args, **kwargs):
        record = original(converter, *args, **kwargs)
        converter._experimental_disable_per_channel = True
        return record

    litert._configure = configure
    try:
        return tfxfer.export(model, "teacher_per_tensor", root=root, format="litert", quantize="int8",
                             data_summary=data, verification_size=20)
    finally:
        litert._configure = original


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-regime", default="fine-tune", choices=["fine-tune", "feature-extraction"],
                        help="fine-tune: the library's defaults (5 warm-up epochs of the head on cached features, then "
                             "every block at 1e-5, patience 3); feature-extraction: the head alone, --epochs epochs")
    parser.add_argument("--epochs", type=int, default=20, help="teacher epochs (of the fine-tuning phase with fine-tune)")
    parser.add_argument("--student-epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=60, help="timed calls per variant")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench_litert"))
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument("--distillation", nargs="+", default=["4:0.7", "2:0.5"], help="temperature:alpha settings")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    require_assets()
    shutil.rmtree(args.root, ignore_errors=True)
    load_before, started = os.getloadavg()[0], time.perf_counter()

    teacher_extractor = tfxfer.load_extractor(HUB_MOBILENET_V2)
    data = tfxfer.load_images(HYMENOPTERA, extractor=teacher_extractor, batch_size=32, seed=0)
    if args.teacher_regime == "fine-tune":
        teacher = tfxfer.TransferModel(teacher_extractor, regime="fine-tune", epochs=args.epochs, seed=0,
                                       verbose=0).fit(data)
    else:
        teacher = tfxfer.TransferModel(teacher_extractor, epochs=args.epochs, patience=None, seed=0, verbose=0).fit(data)
    teacher_seconds = round(time.perf_counter() - started, 1)
    settings = [tuple(float(v) for v in setting.split(":")) for setting in args.distillation]
    students, accuracies = {}, {}
    for student_name in args.students:
        source, options = STUDENTS[student_name]
        student_extractor = tfxfer.load_extractor(source, **options)
        student_data = data.for_extractor(student_extractor)
        for temperature, alpha in settings:
            runs = {seed: tfxfer.distill(teacher, student_extractor, student_data, temperature=temperature, alpha=alpha,
                                         epochs=args.student_epochs, patience=None, seed=seed) for seed in args.seeds}
            name = f"{student_name} distilled T={temperature:g} alpha={alpha:g}"
            students[name] = (runs[args.seeds[0]], student_data)
            accuracies[name] = [runs[seed].evaluate(student_data.validation)["accuracy"] for seed in args.seeds]
        accuracies[f"{student_name} labels alone"] = [tfxfer.TransferModel(
            student_extractor, epochs=args.student_epochs, patience=None, seed=seed, verbose=0).fit(
            student_data).evaluate(student_data.validation)["accuracy"] for seed in args.seeds]
    trained = time.perf_counter() - started

    exports = {"teacher SavedModel": tfxfer.export(teacher, "teacher", root=args.root / "saved", data_summary=data)}
    for quantize in ("none", "float16", "dynamic", "int8"):
        exports[f"teacher LiteRT {'float32' if quantize == 'none' else quantize}"] = tfxfer.export(
            teacher, "teacher", root=args.root / "lite", format="litert", quantize=quantize, data_summary=data,
            verification_size=20)
    exports["teacher LiteRT int8, per-tensor weight scales (not offered)"] = per_tensor_int8(
        teacher, data, args.root / "per_tensor")
    for index, (name, (student, student_data)) in enumerate(students.items()):
        first_setting = index % len(settings) == 0
        for quantize in ("none", "int8") if first_setting else ("int8",):
            exports[f"{name} LiteRT {'float32' if quantize == 'none' else quantize}"] = tfxfer.export(
                student, f"student{index}", root=args.root / "lite", format="litert", quantize=quantize,
                data_summary=student_data, verification_size=20)
    exported = time.perf_counter() - started - trained

    paths, labels = data.examples("validation")
    rows, calls = {}, {}
    for name, path in exports.items():
        metadata = tfxfer.load_exported(path).metadata
        if name.endswith("SavedModel"):
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "assets.extra" not in str(f))
            signature = tf.saved_model.load(str(path)).signatures["serving_images"]
            pixels = [litert_input(p, metadata, np.float32) for p in paths]
            predicted = np.concatenate([signature(images=tf.constant(x))["scores"].numpy() for x in pixels])
            calls[name] = lambda x=pixels[0], s=signature: s(images=tf.constant(x))["scores"].numpy()
        else:
            size = (path / "model.tflite").stat().st_size
            dtype = np.dtype(metadata["litert"]["input"]["dtype"])
            pixels = [litert_input(p, metadata, dtype) for p in paths]
            runners = {threads: LiteRTRunner(path / "model.tflite", num_threads=threads) for threads in (1, 2)}
            predicted = np.concatenate([runners[2].run(x) for x in pixels])
            for threads, runner in runners.items():
                calls[f"{name} @{threads}"] = lambda x=pixels[0], r=runner: r.run(x)
        rows[name] = {"size_bytes": size, "val_accuracy": round(float(np.mean(predicted.argmax(1) == labels)), 4)}
        if "litert" in metadata:
            rows[name]["verification"] = metadata["litert"]["verification"]
            rows[name]["converter_size_bytes"] = metadata["litert"]["converter_size_bytes"]
    for name, values in accuracies.items():
        rows[f"{name} (Keras, seeds {args.seeds})"] = {"val_accuracy": round(float(np.mean(values)), 4),
                                                      "val_accuracy_sd": round(float(np.std(values)), 4),
                                                      "val_accuracies": [round(v, 4) for v in values]}
    rows["teacher Keras"] = {"val_accuracy": round(teacher.evaluate(data.validation)["accuracy"], 4)}

    timings = {name: [] for name in calls}
    for _ in range(args.warmup):
        for call in calls.values():
            call()
    order = list(calls)
    for round_ in range(args.rounds):
        for name in order[round_ % len(order):] + order[:round_ % len(order)]:
            start = time.perf_counter()
            calls[name]()
            timings[name].append(time.perf_counter() - start)
    for name, seconds in timings.items():
        model, _, threads = name.partition(" @")
        rows[model][f"latency_{threads}_threads" if threads else "latency_tf"] = _percentiles(seconds)

    report = {"machine": machine(), "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
              "seconds_training": round(trained, 1), "seconds_exporting": round(exported, 1),
              "seconds_total": round(time.perf_counter() - started, 1), "rounds": args.rounds,
              "teacher_regime": args.teacher_regime, "teacher_epochs": args.epochs,
              "teacher_epochs_run": len(teacher.history_["loss"]), "teacher_seconds": teacher_seconds,
              "student_epochs": args.student_epochs, "rows": rows,
              "distillation_settings": args.distillation,
              "students": args.students, "seeds": args.seeds}
    (Path(__file__).resolve().parent / "litert.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['machine']}; load average {load_before:.1f} before, {report['load_average_after']:.1f} after; "
          f"{report['seconds_total']:.0f} s; teacher {args.teacher_regime}, {report['teacher_epochs_run']} epochs "
          f"in {teacher_seconds:.0f} s")
    print("| model | size | size as converted | val accuracy | LiteRT 1 thread p50 / p95 ms | "
          "LiteRT 2 threads p50 / p95 ms | SavedModel p50 / p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        accuracy = f"{row['val_accuracy']:.3f}" + (f" ± {row['val_accuracy_sd']:.3f}" if "val_accuracy_sd" in row else "")
        cells = [f"{row[key] / 1e6:.2f} MB" if key in row else "" for key in ("size_bytes", "converter_size_bytes")]
        cells.append(accuracy)
        for key in ("latency_1_threads", "latency_2_threads", "latency_tf"):
            cells.append(f"{row[key]['p50_ms']} / {row[key]['p95_ms']}" if key in row else "")
        print(f"| {name} | " + " | ".join(cells) + " |")
    float32, int8 = rows["teacher LiteRT float32"], rows["teacher LiteRT int8"]
    print(f"teacher int8 against float32: {float32['size_bytes'] / int8['size_bytes']:.2f}x smaller as written, "
          f"{float32['converter_size_bytes'] / int8['converter_size_bytes']:.2f}x as converted; accuracy "
          f"{float32['val_accuracy']:.3f} -> {int8['val_accuracy']:.3f}")


if __name__ == "__main__":
    main()
