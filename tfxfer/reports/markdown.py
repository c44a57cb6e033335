"""A Markdown report of a run, with its plots beside it: data, blocks, the regime's phases, metrics, search, serving."""

import datetime
import json
import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfxfer.data.errors import count_reasons, printable
from tfxfer.data.stratify import SPLITS
from tfxfer.reports.evaluation import plot_confusion
from tfxfer.reports.folders import PLOT_FILES, check_report_folder
from tfxfer.reports.plots import plot_history, plot_probe, plot_search
from tfxfer.serving.litert_client import LABELS_FILE, LITERT_FILE, verification_summary
from tfxfer.serving.signatures import signature_table
from tfxfer.serving.versioning import METADATA_FILE
from tfxfer.training.inputs import check_trained_on
from tfxfer.training.phases import regime_name

EVALUATION_CAPTIONS = {"confusion": "Confusion matrix", "label_scores": "Per-label scores",
                       "predicted_vs_true": "Predicted against true"}
#: Skipped files listed one by one in a report; the rest are counted by reason.
LISTED_SKIPS = 20


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame):
    """A DataFrame as a Markdown (GitHub) table, without pandas' optional `tabulate` dependency.

    Args:
        frame: A pandas DataFrame; its index is left out (`reset_index()` first to keep it).

    Returns:
        The table as a string of lines.

    Example:
        >>> print(markdown_table(pd.DataFrame({"class": ["ants"], "train": [124]})))
        | class | train |
        |---|---|
        | ants | 124 |
    """
    lines = ["| " + " | ".join(_cell(column) for column in frame.columns) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _data_section(data):
    names = [str(name) for name in data.task.class_names]
    splits = [split for split in SPLITS if data.sizes[split]]
    counts = pd.DataFrame({"class": names + ["all examples"]})
    for split in splits:
        counts[split] = [data.counts[split].get(name, 0) for name in names] + [data.sizes[split]]
    lines = ["## Data", "", f"{data.modality}, {data.task.task_type}, {len(names)} {data.task.noun(len(names))}.",
             ""]
    if data.task.has_classes:
        lines += [markdown_table(counts), ""]
    lines += [f"- {split}: {data.sizes[split]} examples from {data.origins[split]}" for split in splits]
    if data.modality == "image":
        lines.append(f"- images {data.image_size[0]}x{data.image_size[1]}, values in {list(data.value_range)}, "
                     f"batch {data.batch_size}, augmentation {'on' if data.augmented else 'off'}")
    lines.append("")
    if not data.skipped:
        return lines + ["Skipped: nothing; every file or row found was used.", ""]
    reasons = pd.DataFrame(list(count_reasons(data.skipped).items()), columns=["reason", "skipped"])
    lines += [f"Skipped: {len(data.skipped)} files or rows, left out of every split.", "", markdown_table(reasons), ""]
    lines += [printable(f"- `{item.source}`: {item.reason}" + (f" ({item.detail})" if item.detail else ""))
              for item in data.skipped[:LISTED_SKIPS]]
    if len(data.skipped) > LISTED_SKIPS:
        lines.append(f"- ... and {len(data.skipped) - LISTED_SKIPS} more (`data.skipped` lists them all)")
    return lines + [""]


def _extractor_section(fitted):
    extractor = fitted.extractor_
    facts = f"`{extractor.source}`: {extractor.input_kind} extractor, {extractor.n_blocks} blocks"
    if extractor.image_size:
        facts += f", input {extractor.image_size[0]}x{extractor.image_size[1]} in {list(extractor.value_range)}"
    table = extractor.describe().reset_index()
    table["output_shape"] = table["output_shape"].map(lambda shape: None if shape is None else f"`{shape}`")
    return ["## Extractor and blocks", "", facts + ". Blocks are ordered input side first; the state is at the end "
            "of training.", "", markdown_table(table), ""]


def _regime_section(fitted):
    n_blocks = fitted.extractor_.n_blocks
    rows = [("regime", regime_name(fitted.regime))]
    for index, (phase, start, cached) in enumerate(zip(fitted.phases_, fitted.phase_starts_, fitted.cached_phases_)):
        rows.append((f"phase {index + 1}: {phase.title}",
                     f"{phase.frozen_blocks} of {n_blocks} blocks frozen, from epoch {start + 1}, at most "
                     f"{phase.epochs} epochs, learning rate {phase.learning_rate:g}"
                     + (", on cached activations" if cached else ", end to end")))
    rows += [("blocks frozen at the end", f"{fitted.frozen_blocks_} of {n_blocks}"),
             ("learning rate per phase", ", ".join(f"{rate:g}" for rate in fitted.learning_rates_)),
             ("trained on cached activations, per phase",
              ", ".join("yes" if cached else "no" for cached in fitted.cached_phases_)),
             ("epochs run", len(fitted.history_["loss"]))]
    if fitted.fine_tune_epoch_ is not None:
        rows.append(("fine-tuning began at epoch", fitted.fine_tune_epoch_ + 1))
    rows += [("trainable parameters (last phase)", f"{fitted.trainable_params_:,}"),
             ("head", _head_line(fitted)),
             ("fit seconds", f"{fitted.fit_seconds_:.1f}")]
    return ["## Regime", "", markdown_table(pd.DataFrame(rows, columns=["setting", "value"])), ""]


def _head_line(fitted):
    """The head as given and the layers it built under this extractor (its `"auto"` settings resolved)."""
    from tfxfer.training.heads import Head

    head, kind = fitted.head or Head(), fitted.extractor_.input_kind
    units = ", ".join(map(str, head.units(kind))) or "none"
    return (f"{head!r}{'' if fitted.head is not None else ' (default)'}: hidden layers {units}, BatchNorm "
            f"{'on' if head.normalises(kind) else 'off'}")


def _metrics_section(fitted, data, flipped=False):
    rows = []
    for split in ("validation", "test"):
        if data.sizes[split]:
            dataset = data.unbatched(split).batch(data.batch_size)
            rows.append({"split": split, "examples": data.sizes[split], **fitted.evaluate(dataset)})
            if flipped:  # what the export serves
                rows.append({"split": f"{split}, flip-averaged", "examples": data.sizes[split],
                             **fitted.evaluate(dataset, test_time_augmentation=True)})
    if not rows:
        return ["## Metrics", "", "No validation or test split to evaluate on.", ""]
    served = (" The export serves the mean of its outputs for each image and its mirror image (test-time "
              "augmentation): the flip-averaged rows are what it serves.") if flipped else ""
    return ["## Metrics", "", "Evaluated after training, on the model as returned by `fit` (early stopping restores the "
            f"best weights), without random augmentation.{served}", "", markdown_table(pd.DataFrame(rows)), ""]


def _search_section(table, plot):
    columns = [c for c in ("trial_id", "status", "frozen_blocks", "regime", "learning_rate", "fine_tune_learning_rate",
                           "hidden_units", "dropout", "l2", "score", "epochs", "seconds") if c in table]
    shown = "best first" + (", the first ten" if len(table) > 10 else "")
    return ["## Search", "", f"{len(table)} trials, {shown}:", "",
            markdown_table(table[columns].head(10)), "", f"![Search results]({plot})", ""]


def _probe_section(table, plot):
    score = table.attrs.get("rank_by", "linear")
    columns = [c for c in ("extractor", "cut", "block", "dim", "linear", "knn", "logme") if c in table]
    shown = "best first" + (", the first ten" if len(table) > 10 else "")
    return ["## Probe", "", f"Frozen features scored at {len(table)} block boundaries ({score}, {shown}); `cut` is "
            "the number of frozen blocks that trains on them:", "",
            markdown_table(table[columns].head(10)), "", f"![Probe scores against depth]({plot})", ""]


def _recorded(export_path):
    """The metadata an export recorded ({} where it has none to read)."""
    try:
        return json.loads((Path(export_path) / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return {}


#: What each `quantize=` of a LiteRT export holds, in words.
QUANTIZED = {"none": "float32, not quantized", "float16": "float16 weights", "dynamic": "int8 weights (dynamic range)",
             "int8": "full-integer int8"}


def _litert_section(export_path, input_kind, litert):
    model = Path(export_path) / LITERT_FILE
    example = "photo.jpg" if input_kind == "image" else '"some text"'
    tensors = ", ".join(f"{side} {litert[side]['dtype']}" for side in ("input", "output")
                        if litert[side].get("dtype") == "uint8")
    lines = ["## Export", "",
             f"Exported to `{model}` (LiteRT, {QUANTIZED.get(litert['quantize'], litert['quantize'])}"
             f"{', ' + tensors if tensors else ''}; {litert['size_bytes'] / 1e6:.2f} MB), with `{LABELS_FILE}` beside "
             f"it, for phones and boards; {verification_summary(litert)}. The metrics above are the Keras model's; "
             "the verification compares the file with it.", ""]
    if litert["verification"].get("skipped"):  # select TF ops: the interpreter here cannot run it either
        return lines
    return lines + ["Try it here, in the LiteRT interpreter:", "", "```", f"tfxfer predict {model} {example}", "```",
                    ""]


def _serving_section(export_path, input_kind, task_type, flipped):
    export_path = Path(export_path)
    model_folder, name = export_path.parent, export_path.parent.name
    signatures = signature_table(input_kind, task_type)
    inputs = ", ".join(f"`{k}` ({v})" for k, v in signatures["serving_default"]["inputs"].items())
    outputs = ", ".join(f"`{k}` ({v})" for k, v in signatures["serving_default"]["outputs"].items())
    example = "photo.jpg" if input_kind == "image" else '"some text"'
    if input_kind == "image":
        body = '{"instances": [{"b64": "\'"$(base64 -w0 photo.jpg)"\'"}]}'
    else:
        body = '{"instances": ["some text"]}'
    return [
        "## Export and serving", "",
        f"Exported to `{export_path}` (model `{name}`, version {export_path.name}), a SavedModel that TF Serving and "
        "TensorFlow alone load.", "",
        f"- `serving_default` takes {inputs} and returns {outputs}.",
        *(["- Its outputs are the mean of each image's and its mirror image's (test-time augmentation): the "
            "flip-averaged metrics above."] if flipped else []),
        "- `metadata` (no inputs) returns the class names, task type and training metadata.", "",
        "Try it here, and look at its signatures:", "",
        "```",
        f"tfxfer predict {model_folder} {example}",
        f"saved_model_cli show --dir {export_path} --tag_set serve --signature_def serving_default",
        "```", "",
        "Serve it with TF Serving's docker image (it serves the highest version under the model folder) and call "
        "its REST API" + ("; JSON carries bytes as `{\"b64\": ...}`, which TF Serving decodes:" if input_kind == "image"
                          else ":"), "",
        "```",
        f"docker run --rm -p 8501:8501 --mount type=bind,source={model_folder.resolve()},target=/models/{name} "
        f"-e MODEL_NAME={name} -t tensorflow/serving",
        f"curl -s -d '{body}' http://localhost:8501/v1/models/{name}:predict",
        "```", "",
    ]


def write_report(fitted, data, folder, export_path=None, search_table=None, probe_table=None, overwrite=False):
    """Writes a Markdown report of a run, with its plots beside it, for people to read.

    `folder/report.md` has the data (examples per class and split, where they came from, what was skipped and
    why), the extractor's blocks, the regime, metrics on the validation and test splits, the plots (relative links
    to PNGs in `folder`), the probe's best cuts when `probe_table` is given, the search's best trials when
    `search_table` is given, and, with `export_path`, how to run and serve the export (`tfxfer predict`,
    `saved_model_cli`, TF Serving's docker image and a REST call; for a LiteRT export, its file and verification).
    An export that averages each image's scores with its mirror image's (`test_time_augmentation=True`) is said so,
    and its flip-averaged metrics are shown beside the plain ones.

    Args:
        fitted: A fitted `TransferModel`.
        data: The `DataSplits` it was trained on, from `tfxfer.load_images`/`load_text`.
        folder: Where to write `report.md` and the PNGs (created if needed), e.g. beside the export.
        export_path: The version folder `tfxfer.export` returned, if the model was exported.
        search_table: A search's results table, if the model came from `TransferSearch`.
        probe_table: What `tfxfer.probe` returned, if the extractor and depth were probed first.
        overwrite: Replace the report and plots that `folder` holds; by default such a folder is refused.

    Returns:
        The `pathlib.Path` of `report.md`.

    Raises:
        TypeError: `data` is not a DataSplits.
        FileExistsError: `folder` is a file, or holds a report and `overwrite` is False.

    Example:
        >>> path = write_report(fitted, data, f"{tmp_dir}/report")
        >>> path.name, sorted(p.name for p in path.parent.glob("*.png"))
        ('report.md', ['confusion.png', 'history.png'])
    """
    if not hasattr(data, "skipped") or not hasattr(data, "unbatched"):
        raise TypeError(f"write_report needs the DataSplits from tfxfer.load_images/load_text (its counts and "
                        f"skipped files go in the report); got {type(data).__name__}.")
    if not hasattr(fitted, "task_"):
        raise RuntimeError("This TransferModel is not fitted: call fit(data) first, then write its report.")
    check_trained_on(fitted.task_, data, "write_report")
    if not overwrite:
        check_report_folder(folder, ", or pass overwrite=True to replace it")
    data = data.for_extractor(fitted.extractor_)  # decoded as the model takes it, whatever it was loaded for
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    task = fitted.task_
    split = "test" if data.sizes["test"] else "validation" if data.sizes["validation"] else "train"
    plot_history(fitted, folder / PLOT_FILES["history"])
    evaluation_file = PLOT_FILES[task.evaluation_plot]
    plot_confusion(fitted, data, split, folder / evaluation_file)
    caption = EVALUATION_CAPTIONS[task.evaluation_plot]
    lines = [f"# {regime_name(fitted.regime)} on `{fitted.extractor_.source}`", "",
             f"Written {datetime.datetime.now().isoformat(timespec='seconds')} by tfxfer "
             f"(TensorFlow {tf.__version__}, Keras {keras.__version__}).", ""]
    lines += _data_section(data) + _extractor_section(fitted) + _regime_section(fitted)
    recorded = {} if export_path is None else _recorded(export_path)
    flipped = recorded.get("test_time_augmentation", False)
    lines += _metrics_section(fitted, data, flipped)
    lines += ["## Plots", "", f"![Training history]({PLOT_FILES['history']})", "",
              f"![{caption}, {split} split]({evaluation_file})", ""]
    if probe_table is not None:
        plot_probe(probe_table, path=folder / PLOT_FILES["probe"])
        lines += _probe_section(probe_table, PLOT_FILES["probe"])
    if search_table is not None:
        plot_search(search_table, folder / PLOT_FILES["search"])
        lines += _search_section(search_table, PLOT_FILES["search"])
    if "litert" in recorded:
        lines += _litert_section(export_path, fitted.extractor_.input_kind, recorded["litert"])
    elif export_path is not None:
        lines += _serving_section(export_path, fitted.extractor_.input_kind, task.task_type, flipped)
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
