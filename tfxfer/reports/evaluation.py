"""How a model does on one split, as its task allows: a confusion matrix, per-label scores, or predicted against
true values."""

import numpy as np

from tfxfer.data.stratify import SPLITS
from tfxfer.reports.plots import MARKER_COLOR, TRAIN_COLOR, new_figure, save


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


def one_class_note(fitted, data, split="validation", accuracy=None):
    """What to say when a multi-class model predicts one class for every example of a split that holds several: it
    learned the commonest class only, which accuracy hides on skewed data (18 of 19 right by always answering "ham").
    None otherwise.

    `accuracy`, the model's accuracy on the split where known (its fit's history), spares the pass over the split
    when it is no class's share of the split: a model that answers one class scores exactly that class's share.

    Example:
        >>> note = one_class_note(fitted, data)
        >>> note is None or note.startswith("the model predicts")
        True
    """
    task = fitted.task_
    if not task.has_classes or task.uses_threshold or not data.sizes.get(split):  # one class per example only
        return None
    labels = np.asarray(data.examples(split)[1])
    shares = np.bincount(labels.astype(int)) / len(labels)
    if accuracy is not None and not np.any(np.abs(shares - accuracy) < 0.5 / len(labels)):
        return None  # before the split's pipeline is built: it is not needed
    inputs, _ = _split_inputs(data, split)
    predicted = np.asarray(fitted.model_.predict(inputs, verbose=0)).argmax(axis=1)
    if len(np.unique(labels)) < 2 or len(np.unique(predicted)) > 1:
        return None
    name = task.class_names[predicted[0]]
    return (f"the model predicts {name!r} for every {split} example ({np.mean(labels == predicted[0]):.0%} of them "
            f"are {name!r}): it has learned the commonest class only; train longer (epochs=), at another "
            "learning_rate=, or with more examples of the other classes.")


def _confusion(labels, predictions, class_names, split, threshold):
    side = min(max(1.6 + 0.55 * len(class_names), 4.0), 14.0)
    figure = new_figure(side + 0.6, side)
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
    figure = new_figure(6.4, min(max(1.4 + 0.45 * len(class_names), 3.6), 14.0))
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
    figure = new_figure(4.6 * predictions.shape[1], 4.4)
    labels = labels.reshape(len(labels), -1)
    axes = figure.subplots(1, labels.shape[1], squeeze=False)[0]
    for index, (ax, name) in enumerate(zip(axes, class_names)):
        truth, guess = labels[:, index], predictions[:, index]
        low, high = float(min(truth.min(), guess.min())), float(max(truth.max(), guess.max()))
        ax.plot([low, high], [low, high], color=MARKER_COLOR, linestyle=":", label="predicted = true")
        ax.scatter(truth, guess, s=14, alpha=0.7, color=TRAIN_COLOR, label="examples")
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
        path: Where to save the figure (PNG, or the format its suffix names: .svg, .pdf); None to only return it.
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
    from tfxfer.training.inputs import check_trained_on  # TensorFlow: not when the CLI imports one_class_note

    check_trained_on(fitted.task_, data, "plot_confusion")
    extractor = getattr(fitted, "extractor_", None)
    if extractor is not None and hasattr(data, "for_extractor"):  # decoded as the model takes it (size, range)
        data = data.for_extractor(extractor)
    inputs, labels = _split_inputs(data, split)
    predictions = np.asarray(fitted.predict(inputs)).reshape(len(labels), -1)
    names = [str(name) for name in fitted.task_.class_names]
    figure = _EVALUATION_PLOTS[fitted.task_.evaluation_plot](np.asarray(labels, dtype=float), predictions, names,
                                                            split, threshold)
    return save(figure, path)
