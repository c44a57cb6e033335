"""Pictures of a run: training curves, a search's results, and how the model does per class, label or target.

The figures are `matplotlib.figure.Figure` objects made without pyplot, so importing this module or plotting never
selects or changes a matplotlib backend (a notebook's stays what it was), and saving needs no display: PNG files are
rendered by Agg. The figures show themselves inline in Jupyter (they render to PNG when displayed), so a notebook
cell ending in `tfxfer.plot_history(fitted)` shows the plot.

Saved PNGs are exactly `figsize * dpi` pixels (no tight bounding box; the layout engine keeps labels inside), so
their size is known in advance.
"""

import io
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from tfxfer.data.stratify import SPLITS
from tfxfer.training.phases import regime_name

#: Resolution of every figure; a figure of `figsize` (w, h) inches is saved as `w * DPI` x `h * DPI` pixels.
DPI = 100
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

    A dotted vertical line marks where each phase of the regime's plan began after the first (for fine-tuning,
    between the last warm-up epoch and the first epoch with unfrozen blocks).

    Args:
        fitted: A fitted `TransferModel` (anything with `history_`, `phases_`, `phase_starts_`, `regime`,
            `extractor_` and `frozen_blocks_`).
        path: Where to save the figure as a PNG; None to only return it.

    Returns:
        A `ReportFigure` (a `matplotlib.figure.Figure`) with one panel per curve (loss first), 4.6 x 3.8 inches
        each at `DPI`.

    Raises:
        ValueError: `fitted` has no per-epoch history (it was not fitted).

    Example:
        >>> plot_history(fitted, f"{tmp_dir}/history.png")
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
    boundaries = list(zip(fitted.phases_, fitted.phase_starts_))[1:]
    for ax, name in zip(axes, names):
        ax.plot(epochs, history[name], color=_TRAIN_COLOR, marker=marker, markersize=3.5, label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], color=_VALIDATION_COLOR, marker=marker, markersize=3.5,
                    linestyle="--", label="validation")
        for phase, start in boundaries:
            ax.axvline(start + 0.5, color=_MARKER_COLOR, linestyle=":", linewidth=1.5,
                       label=f"{phase.title} from epoch {start + 1} (learning rate {phase.learning_rate:g})")
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
        >>> plot_search(tfxfer.search_results(search.directory, search.project_name), f"{tmp_dir}/search.png")
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
    objective = table.attrs.get("objective", "score")
    frozen = scored["frozen_blocks"].to_numpy(dtype=float)
    rates = scored["learning_rate"].to_numpy(dtype=float)
    low, high = rates.min(), rates.max()
    norm = LogNorm(low / 1.5, high * 1.5) if math.isclose(low, high) else LogNorm(low, high)
    if "n_blocks" in table.attrs:
        unfroze = frozen < table.attrs["n_blocks"]
    else:  # a table made by hand: trials that sampled a fine-tuning rate unfroze blocks
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


def _confusion(labels, predictions, class_names, split, threshold):
    side = min(max(1.6 + 0.55 * len(class_names), 4.0), 14.0)
    figure = _figure(side + 0.6, side)
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
    return figure


def _label_scores(labels, predictions, class_names, split, threshold):
    figure = _figure(6.4, min(max(1.4 + 0.45 * len(class_names), 3.6), 14.0))
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
    return figure


def _predicted_vs_true(labels, predictions, class_names, split, threshold):
    figure = _figure(4.6 * predictions.shape[1], 4.4)
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
    return figure


#: The plot of each `Task.evaluation_plot`.
_EVALUATION_PLOTS = {"confusion": _confusion, "label_scores": _label_scores, "predicted_vs_true": _predicted_vs_true}


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
        >>> plot_confusion(fitted, data, "validation", f"{tmp_dir}/confusion.png")
        <ReportFigure size 460x400 with 2 Axes>
    """
    inputs, labels = _split_inputs(data, split)
    predictions = np.asarray(fitted.predict(inputs)).reshape(len(labels), -1)
    names = [str(name) for name in fitted.task_.class_names]
    figure = _EVALUATION_PLOTS[fitted.task_.evaluation_plot](np.asarray(labels, dtype=float), predictions, names,
                                                            split, threshold)
    return _save(figure, path)
