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

from tfxfer.training.phases import regime_name

#: Resolution of every figure; a figure of `figsize` (w, h) inches is saved as `w * DPI` x `h * DPI` pixels.
DPI = 100
TRAIN_COLOR, VALIDATION_COLOR, MARKER_COLOR = "#1f77b4", "#d62728", "0.35"


class ReportFigure(Figure):
    """A matplotlib `Figure` that Jupyter displays as a PNG by itself, with no pyplot or inline backend set up."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def new_figure(width, height):
    """A `ReportFigure` of `width` x `height` inches at `DPI`, laid out by matplotlib's constrained layout."""
    return ReportFigure(figsize=(width, height), dpi=DPI, layout="constrained")


def save(figure, path):
    """Writes the figure at `path` (folders created) when a path is given, in the format its suffix names (.png,
    .svg, .pdf...; PNG for a suffix matplotlib does not write); returns the figure.

    The file appears whole or not at all: it is written beside `path` first and renamed, so an interrupted save
    leaves no partial file for a rerun to trip on.
    """
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = path.suffix[1:].lower()
        partial = path.with_name(f".{path.name}.partial")
        try:
            figure.savefig(partial, dpi=DPI,
                           format=suffix if suffix in figure.canvas.get_supported_filetypes() else "png")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    return figure


def _extractor_name(fitted):
    return _short(getattr(fitted.extractor_, "source", "extractor"))


def plot_history(fitted, path=None):
    """Training curves: the loss and each metric per epoch, training against validation.

    A dotted vertical line marks where each phase of the regime's plan began after the first (for fine-tuning,
    between the last warm-up epoch and the first epoch with unfrozen blocks).

    Args:
        fitted: A fitted `TransferModel` (anything with `history_`, `phases_`, `phase_starts_`, `regime`,
            `extractor_` and `frozen_blocks_`).
        path: Where to save the figure (PNG, or the format its suffix names: .svg, .pdf); None to only return it.

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
    figure = new_figure(4.6 * len(names), 3.8)
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    epochs = np.arange(1, len(history["loss"]) + 1)
    marker = "o" if len(epochs) <= 30 else None
    boundaries = list(zip(fitted.phases_, fitted.phase_starts_))[1:]
    for ax, name in zip(axes, names):
        ax.plot(epochs, history[name], color=TRAIN_COLOR, marker=marker, markersize=3.5, label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], color=VALIDATION_COLOR, marker=marker, markersize=3.5,
                    linestyle="--", label="validation")
        for phase, start in boundaries:
            ax.axvline(start + 0.5, color=MARKER_COLOR, linestyle=":", linewidth=1.5,
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
    return save(figure, path)


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
        path: Where to save the figure (PNG, or the format its suffix names: .svg, .pdf); None to only return it.

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
    figure = new_figure(7.0, 4.4)
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
    return save(figure, path)


def plot_probe(table, score=None, path=None):
    """A probe's scores against block depth, one line per extractor: where the features stop being general.

    Args:
        table: What `tfxfer.probe` returned.
        score: The score to draw; by default the one the table is ranked by.
        path: Where to save the figure (PNG, or the format its suffix names: .svg, .pdf); None to only return it.

    Returns:
        A `ReportFigure`, 7 x 4.4 inches at `DPI`; each extractor's best cut is ringed.

    Example:
        >>> plot_probe(tfxfer.probe(data, [extractor]), path=f"{tmp_dir}/probe.png")
        <ReportFigure size 700x440 with 1 Axes>
    """
    score = score or table.attrs.get("rank_by", "linear")
    if score not in getattr(table, "columns", ()):
        raise ValueError(f"plot_probe needs the table of tfxfer.probe with a {score!r} column.")
    result = new_figure(7.0, 4.4)
    ax = result.subplots()
    for name, rows in table.groupby("extractor", sort=False):
        rows = rows.sort_values("cut")
        line, = ax.plot(rows["cut"], rows[score], marker="o", markersize=4, label=_short(name))
        if rows[score].isna().all():  # nothing scorable (a multi-label split without a label's negatives)
            continue
        best = rows.loc[rows[score].idxmax()]
        ax.scatter([best["cut"]], [best[score]], s=160, facecolors="none", edgecolors=line.get_color(),
                   linewidths=1.5, zorder=4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("blocks before the cut (frozen blocks), input side first")
    ax.set_ylabel(f"{score} on the validation split" if score != "logme" else "LogME (training split)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    ax.set_title(f"Probe of every block boundary ({table.attrs.get('task_type', '')}); rings: each extractor's best",
                 fontsize="medium")
    return save(result, path)


def _short(source):
    source = str(source)
    return Path(source).name if os.sep in source else source
