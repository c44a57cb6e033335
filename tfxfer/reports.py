"""Pictures and reports of a run: training curves, a search's results, a confusion matrix, a Markdown report.

The figures are `matplotlib.figure.Figure` objects made without pyplot, so importing this module or plotting never
selects or changes a matplotlib backend (a notebook's stays what it was), and saving needs no display: PNG files are
rendered by Agg. The figures show themselves inline in Jupyter (they render to PNG when displayed), so a notebook
cell ending in `tfxfer.plot_history(fitted)` shows the plot.

Saved PNGs are exactly `figsize * dpi` pixels (no tight bounding box; the layout engine keeps labels inside), so
their size is known in advance.
"""

import datetime
import io
import math
import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from tfxfer.data.errors import count_reasons
from tfxfer.data.splits import SPLITS
from tfxfer.export import signature_table
from tfxfer.regimes import regime_name

#: Resolution of every figure; a figure of `figsize` (w, h) inches is saved as `w * DPI` x `h * DPI` pixels.
DPI = 100
#: The plots `write_report` writes for each task type, by file name.
PLOT_FILES = {"history": "history.png", "search": "search.png", "multiclass": "confusion.png",
              "multilabel": "label_scores.png", "regression": "predicted_vs_true.png"}
#: Skipped files listed one by one in a report; the rest are counted by reason.
LISTED_SKIPS = 20
_TRAIN_COLOR, _VALIDATION_COLOR, _MARKER_COLOR = "#1f77b4", "#d62728", "0.35"


class ReportFigure(Figure):
    """A matplotlib `Figure` that Jupyter displays as a PNG by itself, with no pyplot or inline backend set up."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def _figure(width, height):
    return ReportFigure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(figure, path):
    """Writes the figure as a PNG at `path` (folders created) when a path is given; returns the figure."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=DPI)
    return figure


def _extractor_name(fitted):
    source = str(getattr(fitted.extractor_, "source", "extractor"))
    return Path(source).name if os.sep in source else source


def plot_history(fitted, path=None):
    """Training curves: the loss and each metric per epoch, training against validation.

    For the fine-tune regime a dotted vertical line marks where fine-tuning began, between the last warm-up epoch
    and the first epoch with unfrozen blocks (`fitted.fine_tune_epoch_`).

    Args:
        fitted: A fitted `TransferModel` (anything with `history_`, `fine_tune_epoch_`, `regime`, `extractor_` and
            `frozen_blocks_`).
        path: Where to save the figure as a PNG; None to only return it.

    Returns:
        A `ReportFigure` (a `matplotlib.figure.Figure`) with one panel per curve (loss first), 4.6 x 3.8 inches
        each at `DPI`.

    Raises:
        ValueError: `fitted` has no per-epoch history (it was not fitted).

    Example:
        >>> tfxfer.plot_history(fitted, "run/history.png")  # doctest: +SKIP
        <ReportFigure size 920x380 with 2 Axes>
    """
    history = getattr(fitted, "history_", None) or {}
    if not history.get("loss"):
        raise ValueError("plot_history needs a fitted TransferModel: its history_ has no per-epoch loss; call fit "
                         "first.")
    names = ["loss"] + [name for name in history if name != "loss" and not name.startswith("val_")]
    figure = _figure(4.6 * len(names), 3.8)
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    epochs = np.arange(1, len(history["loss"]) + 1)
    marker = "o" if len(epochs) <= 30 else None
    switch = fitted.fine_tune_epoch_
    for ax, name in zip(axes, names):
        ax.plot(epochs, history[name], color=_TRAIN_COLOR, marker=marker, markersize=3.5, label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], color=_VALIDATION_COLOR, marker=marker, markersize=3.5,
                    linestyle="--", label="validation")
        if switch:
            ax.axvline(switch + 0.5, color=_MARKER_COLOR, linestyle=":", linewidth=1.5,
                       label=f"fine-tuning from epoch {switch + 1} (learning rate {fitted.learning_rates_[-1]:g})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_xlim(0.5, len(epochs) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    # One legend for all panels, below them, where it covers no curve.
    figure.legend(handles=axes[0].get_legend_handles_labels()[0], loc="outside lower center",
                  ncols=3, fontsize="small", frameon=False)
    figure.suptitle(f"{regime_name(fitted.regime)}, {_extractor_name(fitted)}: "
                    f"{fitted.frozen_blocks_} of {fitted.extractor_.n_blocks} blocks frozen at the end")
    return _save(figure, path)


def _objective_name(table, scored):
    """The column the search scored by: the validation metric equal to `score` in every trial, else "score"."""
    for column in table.columns:
        if column.startswith("val_") and np.allclose(scored[column].astype(float), scored["score"].astype(float),
                                                     equal_nan=True):
            return column
    return "score"


def _spread(groups, width=0.3):
    """Sideways offsets within each group of equal x values, so trials with the same frozen blocks do not hide."""
    offsets = np.zeros(len(groups))
    for value in np.unique(groups):
        members = np.flatnonzero(groups == value)
        if len(members) > 1:
            half = min(width, 0.06 * (len(members) - 1))
            offsets[members] = np.linspace(-half, half, len(members))
    return offsets


def plot_search(table, path=None):
    """A search's results: each trial's objective against its frozen blocks, coloured by learning rate (log scale).

    Circles are trials that trained the head only (every block frozen); triangles are trials that then unfroze
    blocks at `fine_tune_learning_rate`. The colour is the head's `learning_rate`. Trials with the same number of
    frozen blocks are spread a little sideways so none hides another; the best is ringed.

    Args:
        table: The results table of `TransferSearch.search` or `tfxfer.search_results`: one row per trial with
            `frozen_blocks`, `learning_rate` and `score`, best first.
        path: Where to save the figure as a PNG; None to only return it.

    Returns:
        A `ReportFigure` (a `matplotlib.figure.Figure`), 7 x 4.4 inches at `DPI`.

    Raises:
        ValueError: A needed column is missing, or no trial has a score yet.

    Example:
        >>> tfxfer.plot_search(tfxfer.search_results("runs", "ants"), "runs/search.png")  # doctest: +SKIP
        <ReportFigure size 700x440 with 2 Axes>
    """
    missing = [c for c in ("frozen_blocks", "learning_rate", "score") if c not in getattr(table, "columns", ())]
    if missing:
        raise ValueError(f"plot_search needs a search results table with columns frozen_blocks, learning_rate and "
                         f"score (from TransferSearch.search or tfxfer.search_results); missing {missing}.")
    scored = table[table["score"].notna()].reset_index(drop=True)
    if scored.empty:
        statuses = dict(table["status"].value_counts()) if "status" in table else {}
        raise ValueError(f"plot_search: no trial has a score yet ({len(table)} trials, statuses {statuses}); "
                         "run the search until a trial completes.")
    objective = _objective_name(table, scored)
    frozen = scored["frozen_blocks"].to_numpy(dtype=float)
    rates = scored["learning_rate"].to_numpy(dtype=float)
    low, high = rates.min(), rates.max()
    norm = LogNorm(low / 1.5, high * 1.5) if math.isclose(low, high) else LogNorm(low, high)
    unfroze = (scored["fine_tune_learning_rate"].notna().to_numpy() if "fine_tune_learning_rate" in scored
               else np.zeros(len(scored), bool))
    x = frozen + _spread(frozen)
    figure = _figure(7.0, 4.4)
    ax = figure.subplots()
    for mask, marker in ((~unfroze, "o"), (unfroze, "^")):
        points = ax.scatter(x[mask], scored["score"][mask], c=rates[mask], cmap="viridis", norm=norm, marker=marker,
                            s=70, edgecolors="0.2", linewidths=0.6, zorder=3)
    ax.scatter(x[:1], scored["score"][:1], s=260, facecolors="none", edgecolors="black", linewidths=1.5, zorder=4)
    colorbar = figure.colorbar(points, ax=ax)
    colorbar.set_label("learning_rate (head), log scale")
    ax.legend(handles=[Line2D([], [], marker="o", linestyle="", color="0.5", label="head only (all frozen)"),
                       Line2D([], [], marker="^", linestyle="", color="0.5", label="warm-up, then unfrozen"),
                       Line2D([], [], marker="o", linestyle="", markersize=13, markerfacecolor="none",
                              markeredgecolor="black", label="best trial")],
              fontsize="small", loc="best")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # Room for the sideways spread and for the best trial's ring.
    ax.set_xlim(frozen.min() - 0.8, frozen.max() + 0.8)
    ax.margins(y=0.12)
    ax.set_xlabel("frozen blocks (input side first)")
    ax.set_ylabel(objective)
    ax.grid(alpha=0.3)
    unscored = len(table) - len(scored)
    best = scored.iloc[0]
    ax.set_title(f"Search: {len(scored)} trials scored" + (f", {unscored} without a score" if unscored else "")
                 + f"; best {objective} {best['score']:.4g} with {int(best['frozen_blocks'])} frozen blocks",
                 fontsize="medium")
    return _save(figure, path)


def _split_inputs(data, split):
    """`(inputs for predict, true labels)` of one split of a DataSplits, in a fixed order; or the given arrays."""
    if isinstance(data, tuple) and len(data) == 2:
        return data[0], np.asarray(data[1])
    if not hasattr(data, "unbatched"):
        raise TypeError(f"data must be the DataSplits from tfxfer.load_images/load_text or a tuple (x, y) of arrays; "
                        f"got {type(data).__name__}.")
    dataset = data.unbatched(split)
    if dataset is None:
        raise ValueError(f"The {split} split is empty; pass split= one of "
                         f"{[s for s in SPLITS if data.sizes[s]]}.")
    return dataset.batch(data.batch_size), data.examples(split)[1]


def _confusion_axes(figure, labels, predictions, class_names, split):
    predicted = predictions.argmax(axis=1)
    n = len(class_names)
    counts = np.zeros((n, n), int)
    np.add.at(counts, (labels.astype(int), predicted), 1)
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax = figure.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    if n <= 30:
        for (row, column), count in np.ndenumerate(counts):
            ax.text(column, row, str(count), ha="center", va="center", fontsize="medium" if n <= 10 else "x-small",
                    color="white" if fractions[row, column] > 0.5 else "black")
    slanted = max(map(len, class_names)) > 4  # long names would run into each other under the columns
    ax.set_xticks(range(n), class_names, rotation=45 if slanted else 0, ha="right" if slanted else "center")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    figure.colorbar(image, ax=ax, shrink=0.8).set_label("fraction of the true class")
    accuracy = float((predicted == labels).mean())
    ax.set_title(f"Confusion matrix, {split}: accuracy {accuracy:.3f} ({len(labels)} examples)", fontsize="medium")


def _label_scores_axes(figure, labels, predictions, class_names, split, threshold):
    chosen, truth = predictions > threshold, labels > 0.5
    hits = (chosen & truth).sum(axis=0)
    precision = hits / np.maximum(chosen.sum(axis=0), 1)
    recall = hits / np.maximum(truth.sum(axis=0), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    ax = figure.subplots()
    positions = np.arange(len(class_names))
    for offset, values, name in ((-0.27, precision, "precision"), (0.0, recall, "recall"), (0.27, f1, "F1")):
        bars = ax.barh(positions + offset, values, height=0.26, label=name)
        # Written values, so that a score of 0 reads as 0 rather than as a missing bar.
        ax.bar_label(bars, fmt="%.2f", padding=2, fontsize="x-small")
    ax.set_yticks(positions, [f"{name} ({count})" for name, count in zip(class_names, truth.sum(axis=0))])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(f"score at threshold {threshold:g}")
    ax.set_ylabel("label (examples with it)")
    ax.grid(axis="x", alpha=0.3)
    figure.legend(loc="outside lower center", ncols=3, fontsize="small", frameon=False)
    ax.set_title(f"Per-label scores, {split} ({len(labels)} examples)", fontsize="medium")


def _regression_axes(figure, labels, predictions, class_names, split):
    labels = labels.reshape(len(labels), -1)
    axes = figure.subplots(1, labels.shape[1], squeeze=False)[0]
    for index, (ax, name) in enumerate(zip(axes, class_names)):
        truth, guess = labels[:, index], predictions[:, index]
        low, high = float(min(truth.min(), guess.min())), float(max(truth.max(), guess.max()))
        ax.plot([low, high], [low, high], color=_MARKER_COLOR, linestyle=":", label="predicted = true")
        ax.scatter(truth, guess, s=14, alpha=0.7, color=_TRAIN_COLOR, label="examples")
        total = float(((truth - truth.mean()) ** 2).sum())
        r2 = 1.0 - float(((truth - guess) ** 2).sum()) / total if total else float("nan")
        ax.set_title(f"{name}, {split}: MAE {np.abs(truth - guess).mean():.3g}, R² {r2:.3f}", fontsize="medium")
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"predicted {name}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")


def plot_confusion(fitted, data, split="validation", path=None, *, threshold=0.5):
    """How the model does on one split, as the task allows: a confusion matrix, per-label scores, or a scatter.

    - multiclass: the confusion matrix (true classes in rows, predicted in columns), cells coloured by the fraction
      of the true class and labelled with counts; the accuracy in the title.
    - multilabel: precision, recall and F1 of each label at `threshold`, with the number of examples per label.
    - regression: predicted against true values, one panel per target, with the line predicted = true, MAE and R².

    Args:
        fitted: A fitted `TransferModel` (anything with `predict` and `task_`).
        data: The `DataSplits` from `tfxfer.load_images`/`load_text` (its `split` is read in a fixed order, never
            augmented), or a tuple `(x, y)` of arrays.
        split: `"train"`, `"validation"` or `"test"`; for arrays it only names them in the title.
        path: Where to save the figure as a PNG; None to only return it.
        threshold: Multilabel: a score above it predicts the label.

    Returns:
        A `ReportFigure` (a `matplotlib.figure.Figure`).

    Raises:
        ValueError: The split is empty (the message lists the splits that are not).
        TypeError: `data` is neither a DataSplits nor a tuple of arrays.

    Example:
        >>> tfxfer.plot_confusion(fitted, data, "test", "run/confusion.png")  # doctest: +SKIP
        <ReportFigure size 460x400 with 2 Axes>
    """
    inputs, labels = _split_inputs(data, split)
    predictions = np.asarray(fitted.predict(inputs)).reshape(len(labels), -1)
    task = fitted.task_
    names = [str(name) for name in task.class_names]
    if task.task_type == "multiclass":
        side = min(max(1.6 + 0.55 * len(names), 4.0), 14.0)
        figure = _figure(side + 0.6, side)
        _confusion_axes(figure, np.asarray(labels), predictions, names, split)
    elif task.task_type == "multilabel":
        figure = _figure(6.4, min(max(1.4 + 0.45 * len(names), 3.6), 14.0))
        _label_scores_axes(figure, np.asarray(labels), predictions, names, split, threshold)
    else:
        figure = _figure(4.6 * predictions.shape[1], 4.4)
        _regression_axes(figure, np.asarray(labels, dtype=float), predictions, names, split)
    return _save(figure, path)


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
    lines = ["## Data", "", f"{data.modality}, {data.task.task_type}, {len(names)} "
             f"{'targets' if data.task.task_type == 'regression' else 'classes'}.", ""]
    if data.task.task_type != "regression":
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
    lines += [f"- `{item.source}`: {item.reason}" + (f" ({item.detail})" if item.detail else "")
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
    regime = regime_name(fitted.regime)
    rows = [("regime", regime),
            ("blocks frozen at the end", f"{fitted.frozen_blocks_} of {fitted.extractor_.n_blocks}"),
            ("learning rate per phase", ", ".join(f"{rate:g}" for rate in fitted.learning_rates_)),
            ("trained on cached activations, per phase",
             ", ".join("yes" if cached else "no" for cached in fitted.cached_phases_)),
            ("epochs run", len(fitted.history_["loss"]))]
    if regime == "fine-tune":
        rows.append(("fine-tuning began at epoch", "-" if fitted.fine_tune_epoch_ is None
                     else fitted.fine_tune_epoch_ + 1))
    rows += [("trainable parameters (last phase)", f"{fitted.trainable_params_:,}"),
             ("head", repr(fitted.head) if fitted.head is not None else "Head() (default)"),
             ("fit seconds", f"{fitted.fit_seconds_:.1f}")]
    return ["## Regime", "", markdown_table(pd.DataFrame(rows, columns=["setting", "value"])), ""]


def _metrics_section(fitted, data):
    rows = []
    for split in ("validation", "test"):
        if data.sizes[split]:
            dataset = data.unbatched(split).batch(data.batch_size)
            rows.append({"split": split, "examples": data.sizes[split], **fitted.evaluate(dataset)})
    if not rows:
        return ["## Metrics", "", "No validation or test split to evaluate on.", ""]
    return ["## Metrics", "", "Evaluated on the model as returned by `fit` (early stopping restores the best weights), "
            "unaugmented, after training.", "", markdown_table(pd.DataFrame(rows)), ""]


def _search_section(table, plot):
    columns = [c for c in ("trial_id", "status", "frozen_blocks", "learning_rate", "fine_tune_learning_rate",
                           "hidden_units", "dropout", "l2", "score", "epochs", "seconds") if c in table]
    shown = "best first" + (", the first ten" if len(table) > 10 else "")
    return ["## Search", "", f"{len(table)} trials, {shown}:", "",
            markdown_table(table[columns].head(10)), "", f"![Search results]({plot})", ""]


def _serving_section(export_path, input_kind, task_type):
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
        "- `metadata` (no inputs) returns the class names, task type and training metadata.", "",
        "Try it here, and look at its signatures:", "",
        "```",
        f"tfxfer predict {model_folder} {example}",
        f"saved_model_cli show --dir {export_path} --tag_set serve --signature_def serving_default",
        "```", "",
        "Serve it with TF Serving's docker image (it serves the highest version under the model folder) and call "
        "its REST API; JSON carries bytes as `{\"b64\": ...}`, which TF Serving decodes:", "",
        "```",
        f"docker run --rm -p 8501:8501 --mount type=bind,source={model_folder.resolve()},target=/models/{name} "
        f"-e MODEL_NAME={name} -t tensorflow/serving",
        f"curl -s -d '{body}' http://localhost:8501/v1/models/{name}:predict",
        "```", "",
    ]


def write_report(fitted, data, folder, export_path=None, search_table=None):
    """Writes a Markdown report of a run, with its plots beside it, for people to read.

    `folder/report.md` has the data (examples per class and split, where they came from, what was skipped and
    why), the extractor's blocks, the regime, metrics on the validation and test splits, the plots (relative links
    to PNGs in `folder`), the search's best trials when `search_table` is given, and, with `export_path`, how to
    run and serve the export (`tfxfer predict`, `saved_model_cli`, TF Serving's docker image and a REST call).

    Args:
        fitted: A fitted `TransferModel`.
        data: The `DataSplits` it was trained on, from `tfxfer.load_images`/`load_text`.
        folder: Where to write `report.md` and the PNGs (created if needed), e.g. beside the export.
        export_path: The version folder `tfxfer.export` returned, if the model was exported.
        search_table: A search's results table, if the model came from `TransferSearch`.

    Returns:
        The `pathlib.Path` of `report.md`.

    Raises:
        TypeError: `data` is not a DataSplits.

    Example:
        >>> tfxfer.write_report(fitted, data, "runs/ants", export_path=path)  # doctest: +SKIP
        PosixPath('runs/ants/report.md')
    """
    if not hasattr(data, "skipped") or not hasattr(data, "unbatched"):
        raise TypeError(f"write_report needs the DataSplits from tfxfer.load_images/load_text (its counts and "
                        f"skipped files go in the report); got {type(data).__name__}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    task_type = fitted.task_.task_type
    split = "test" if data.sizes["test"] else "validation" if data.sizes["validation"] else "train"
    plot_history(fitted, folder / PLOT_FILES["history"])
    plot_confusion(fitted, data, split, folder / PLOT_FILES[task_type])
    caption = {"multiclass": "Confusion matrix", "multilabel": "Per-label scores",
               "regression": "Predicted against true"}[task_type]
    lines = [f"# {regime_name(fitted.regime)} on `{fitted.extractor_.source}`", "",
             f"Written {datetime.datetime.now().isoformat(timespec='seconds')} by tfxfer "
             f"(TensorFlow {tf.__version__}, Keras {keras.__version__}).", ""]
    lines += _data_section(data) + _extractor_section(fitted) + _regime_section(fitted)
    lines += _metrics_section(fitted, data)
    lines += ["## Plots", "", f"![Training history]({PLOT_FILES['history']})", "",
              f"![{caption}, {split} split]({PLOT_FILES[task_type]})", ""]
    if search_table is not None:
        plot_search(search_table, folder / PLOT_FILES["search"])
        lines += _search_section(search_table, PLOT_FILES["search"])
    if export_path is not None:
        lines += _serving_section(export_path, fitted.extractor_.input_kind, task_type)
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
