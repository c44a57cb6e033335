"""Which extractor, and how deep: a probe of every block boundary of several extractors on frozen features.

Each extractor runs once over the training and validation splits; the activations at every cut are pooled to one
vector per example (global average pooling for spatial maps, the mask-aware mean for token sequences) and scored:

- `linear`: the validation score of a regularised linear model fitted to convergence on the pooled training
  features (scikit-learn's logistic regression, one-vs-rest for multi-label, ridge for regression), in the task's
  metric: accuracy, macro AUC, R²;
- `knn`: the same metric for k nearest neighbours by cosine similarity;
- `logme`: LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML 2021),
  the log marginal evidence per example of a Bayesian linear model on the training features, maximised over its
  prior and noise precisions; needs no validation split and no fitting.

Where the scores rise block by block, the extractor's features are still general for this data; where they fall,
they have become specific to what it was pretrained on, and that is where blocks should start training.
"""

import os
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

#: The scores a probe can compute, in the order of the table's columns.
SCORES = ("linear", "knn", "logme")


def pool(activations, mask=None):
    """One vector per example: the mean over the spatial or token axes (only the tokens `mask` marks, if given).

    Example:
        >>> pool(np.ones((2, 4, 4, 3))).shape
        (2, 3)
        >>> pool(np.arange(6.0).reshape(1, 3, 2), mask=np.array([[1, 1, 0]])).tolist()
        [[1.0, 2.0]]
    """
    activations = np.asarray(activations, dtype=np.float32)
    if activations.ndim == 2:
        return activations
    if activations.ndim == 3 and mask is not None:
        weights = np.asarray(mask, dtype=np.float32)[:, :, None]
        return (activations * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
    return activations.reshape(len(activations), -1, activations.shape[-1]).mean(axis=1)


def _pool_cut(output):
    """Pools what the traced pass left whole (`Extractor.pooled_cut_outputs` pools spatial maps and packed
    sequences itself): one tensor, or several (a token sequence and its mask as separate outputs)."""
    if not isinstance(output, (list, tuple, dict)):
        return pool(np.asarray(output))
    parts = [np.asarray(part) for part in (output.values() if isinstance(output, dict) else output)]
    features = max(parts, key=lambda part: part[0].size)
    masks = [part for part in parts if part.ndim == 2 and features.ndim == 3 and part.shape == features.shape[:2]]
    return pool(features, masks[0] if masks else None)


def logme(features, targets):
    """LogME: the maximum log evidence per example of Bayesian linear regression from `features` to each target.

    For each target column y (a class's 0/1 indicator, a label, or a regression target), the model is
    y = F w + noise, w ~ N(0, 1/alpha), noise ~ N(0, 1/beta); alpha and beta are found by the fixed-point updates of
    evidence maximisation (MacKay), on the eigendecomposition of F^T F, and the score is the mean over targets of
    the evidence divided by the number of examples.

    Args:
        features: `[n, d]` pooled features.
        targets: `[n]` class indices (one indicator per class), or `[n, k]` multi-hot labels or regression targets.

    Returns:
        The score, a float (higher is better).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(60, 4))
        >>> logme(x, (x[:, 0] > 0).astype(int)) > logme(rng.normal(size=(60, 4)), (x[:, 0] > 0).astype(int))
        True
    """
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets)
    if targets.ndim == 1 and np.issubdtype(targets.dtype, np.integer):
        targets = (targets[:, None] == np.unique(targets)[None, :]).astype(np.float64)
    targets = targets.reshape(len(targets), -1).astype(np.float64)
    n, d = features.shape
    sigma, vectors = np.linalg.eigh(features.T @ features)
    sigma = np.clip(sigma, 0.0, None)
    projected = vectors.T @ (features.T @ targets)  # [d, k]
    return float(np.mean([_evidence(features, targets[:, j], sigma, vectors, projected[:, j], n, d)
                          for j in range(targets.shape[1])]))


def _evidence(features, y, sigma, vectors, projected, n, d, iterations=100):
    alpha, beta = 1.0, 1.0
    for _ in range(iterations):
        m = vectors @ (beta * projected / (alpha + beta * sigma))
        gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
        residual = float(np.sum((features @ m - y) ** 2))
        new_alpha = gamma / max(float(m @ m), 1e-12)
        new_beta = (n - gamma) / max(residual, 1e-12)
        done = abs(new_alpha - alpha) <= 1e-6 * alpha and abs(new_beta - beta) <= 1e-6 * beta
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m = vectors @ (beta * projected / (alpha + beta * sigma))
    residual = float(np.sum((features @ m - y) ** 2))
    evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
                - beta / 2 * residual - alpha / 2 * float(m @ m) - n / 2 * np.log(2 * np.pi))
    return evidence / n


def linear_score(train, validation, task, C=1.0):
    """The validation score of a regularised linear model on pooled features, in the task's metric.

    Standardised features; logistic regression (L2, `C`) for classes, one-vs-rest for multi-label, ridge regression
    (`alpha = 1 / C`) for targets. Accuracy for multi-class, macro ROC AUC for multi-label, R² for regression (the
    mean over the labels or targets that the validation split can score; NaN where it can score none).

    Args:
        train: `(features, labels)` of the training split.
        validation: `(features, labels)` of the validation split.
        task: The `tfxfer.data.Task`.
        C: Inverse regularisation strength.
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not task.has_classes:
        model = make_pipeline(StandardScaler(), Ridge(alpha=1.0 / C)).fit(*train)
        return _metric(task, validation[1], model.predict(validation[0]))
    classifier = LogisticRegression(C=C, max_iter=5000)
    if task.uses_threshold:
        classifier = OneVsRestClassifier(classifier)
    model = make_pipeline(StandardScaler(), classifier).fit(*train)
    return _metric(task, validation[1], model.predict_proba(validation[0]))


def knn_score(train, validation, task, k=10):
    """The validation score of k nearest neighbours (cosine similarity), in the task's metric (see `linear_score`)."""
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    neighbours = min(k, len(train[1]))
    if not task.has_classes:
        model = KNeighborsRegressor(neighbours).fit(unit(train[0]), train[1])
        return _metric(task, validation[1], model.predict(unit(validation[0])))
    model = KNeighborsClassifier(neighbours).fit(unit(train[0]), train[1])
    scores = model.predict_proba(unit(validation[0]))
    if task.uses_threshold:  # one probability array per label
        scores = np.stack([s[:, -1] if s.shape[1] > 1 else np.full(len(s), float(c[0]))
                           for s, c in zip(scores, model.classes_)], axis=1)
    return _metric(task, validation[1], scores)


def _metric(task, truth, predicted):
    from sklearn.metrics import r2_score, roc_auc_score

    if not task.has_classes:  # the mean over the targets that vary in the split (R² of a constant is undefined)
        truth, predicted = (np.asarray(a, np.float64).reshape(len(a), -1) for a in (truth, predicted))
        varying = [j for j in range(truth.shape[1]) if np.ptp(truth[:, j]) > 0]
        return float(np.mean([r2_score(truth[:, j], predicted[:, j]) for j in varying])) if varying else np.nan
    if task.uses_threshold:  # the mean over the labels that have examples with and without them in the split
        truth, predicted = np.asarray(truth), np.asarray(predicted)
        scorable = [j for j in range(truth.shape[1]) if 0 < truth[:, j].sum() < len(truth)]
        return float(np.mean([roc_auc_score(truth[:, j], predicted[:, j]) for j in scorable])) if scorable else np.nan
    return float(np.mean(np.asarray(predicted).argmax(axis=1) == np.asarray(truth)))


def pooled_features(extractor, data, cuts=None, splits=("train", "validation"), batch_size=32):
    """The pooled activations at each cut of `extractor` for each split, in one pass of the extractor per split.

    Args:
        extractor: An `Extractor`.
        data: A `DataSplits` (decoded for this extractor by `DataSplits.for_extractor`), or `{split: (inputs,
            labels)}` of arrays that the extractor takes as they are.
        cuts: Numbers of leading blocks whose output to take; by default every cut (`extractor.cache_cuts`).
        splits: The splits to read.
        batch_size: Examples per pass, for arrays (a `DataSplits` has its own).

    Returns:
        `{cut: {split: (features [n, d], labels)}}`.
    """
    import tensorflow as tf

    cuts = list(dict.fromkeys(extractor.cache_cuts if cuts is None else cuts))  # each cut once, in the order given
    for k in cuts:
        extractor.check_cut(k)
    if isinstance(data, dict):
        # Images as float32 whatever NumPy made them (float64 failed to bind to the traced pass), so every split
        # fits the one trace.
        dtype = np.float32 if extractor.input_kind == "image" else object
        batches = {split: (tf.data.Dataset.from_tensor_slices((np.asarray(data[split][0], dtype),
                                                               np.asarray(data[split][1]))).batch(batch_size),
                           np.asarray(data[split][1])) for split in splits if split in data}
    else:
        data = data.for_extractor(extractor)
        batches = {split: (_batched(data, split), data.examples(split)[1])
                   for split in splits if data.sizes.get(split)}
    if not batches:
        return {cut: {} for cut in cuts}
    # One trace for every batch of every split (any batch size), kept on the extractor for its next probe; spatial
    # maps are averaged in the graph, token sequences with masks below.
    run = extractor.pooled_cut_outputs(cuts, next(iter(batches.values()))[0].element_spec[0])
    result = {cut: {} for cut in cuts}
    for split, (dataset, labels) in batches.items():
        pooled = {cut: [] for cut in cuts}
        for inputs, _ in dataset:
            for cut, output in zip(cuts, run(inputs)):
                pooled[cut].append(_pool_cut(output))
        for cut in cuts:
            result[cut][split] = (np.concatenate(pooled[cut]), labels)
    return result


def _batched(data, split):
    """A split in batches; images with the next batch decoded while one runs (decoding is about half a pass of a
    small extractor), texts without (they were slower with it, on SMS spam with GloVe)."""
    import tensorflow as tf

    dataset = data.unbatched(split).batch(data.batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE) if data.modality == "image" else dataset


def probe(data, extractors, *, task=None, scores=SCORES, rank_by="linear", C=1.0, k=10):
    """Scores every block boundary of every extractor on frozen features, best first.

    Args:
        data: A `DataSplits` with training and validation splits (each extractor gets it decoded for itself), or
            `{"train": (inputs, labels), "validation": (inputs, labels)}` of arrays with `task`.
        extractors: A list of extractors, sources for `tfxfer.load_extractor`, or `(source, options)` pairs whose
            options are `load_extractor`'s keyword arguments (or one extractor or source alone).
        scores: Which of `SCORES` to compute.
        rank_by: The score the table is sorted by.
        C: The linear probe's inverse regularisation strength.
        k: The neighbours of the k-NN probe.
        task: The `Task`, for arrays (a `DataSplits` brings its own).

    Returns:
        A DataFrame, one row per (extractor, cut): `extractor`, `cut` (blocks before it, the freeze depth that
        trains on it), `block` (the last block before it), `depth` (cut / blocks), `dim`, the scores, and `seconds`
        (of the extractor's pass and its probes), sorted by `rank_by`, best first; `attrs` holds `rank_by` and the
        task type.

    Example:
        >>> table = probe(data, [extractor])
        >>> list(table.columns), sorted(table.cut)
        (['extractor', 'cut', 'block', 'depth', 'dim', 'linear', 'knn', 'logme', 'seconds'], [1, 2, 3, 4])
    """
    from tfxfer.extractors import Extractor

    unknown = [name for name in (*scores, rank_by) if name not in SCORES]
    if unknown:
        raise ValueError(f"probe scores are {SCORES}; got {unknown[0]!r}.")
    task = task or getattr(data, "task", None)
    if task is None:
        raise ValueError("probe needs task= with arrays (a DataSplits from load_images/load_text brings its own).")
    if (data.get("validation") if isinstance(data, dict) else data.validation) is None:
        raise ValueError("A probe scores on the validation split: load the data with validation_split > 0 or a "
                         "val/ folder.")
    from tfxfer.search.hypermodel import extractor_key

    if isinstance(extractors, (str, os.PathLike, Extractor)):  # one, not the characters of its name
        extractors = [extractors]
    if not extractors:
        raise ValueError("probe needs at least one extractor in extractors=[...].")
    given = [source if isinstance(source, tuple) else (source, {}) for source in extractors]
    # A row names its extractor with the options that make it another model (MobileNetV2 at alpha=0.35 or 1.0);
    # sources named alike are refused before any loads.
    check_named_once([extractor_key(source, options or None) for source, options in given
                      if isinstance(source, (str, os.PathLike))])
    rows, names = [], []
    for source, options in given:
        started = time.perf_counter()
        extractor = source if isinstance(source, Extractor) else load_source(source, options)
        name = extractor_key(extractor.source, options or None)
        same = [other for other in names if other == name or other.startswith(f"{name} #")]
        name = f"{name} #{len(same) + 1}" if same else name  # Keras models of one name, other weights
        names.append(name)
        features = pooled_features(extractor, data)
        # One BLAS/OpenMP thread: the scores' matrices are small (examples x channels), and threads cost more than
        # they save, tens of times more for LogME's eigendecomposition on a busy 2-core machine.
        with threadpool_limits(limits=1):
            rows += _score_cuts(extractor, features, task, scores, C, k, name)
        elapsed = time.perf_counter() - started
        for row in rows[-len(features):]:
            row["seconds"] = elapsed
    table = pd.DataFrame(rows).sort_values(rank_by, ascending=False, kind="stable").reset_index(drop=True)
    table.attrs.update(rank_by=rank_by, task_type=task.task_type)
    return table


def check_named_once(names):
    """Refuses extractor sources named twice (their rows would repeat)."""
    twice = next((name for position, name in enumerate(names) if name in names[:position]), None)
    if twice is not None:
        raise ValueError(f"extractors name {twice!r} twice; probe each extractor once (its rows would repeat).")


def load_source(source, options):
    """`load_extractor(source, **options)`, its errors prefixed with the source (a probe loads several)."""
    from tfxfer.extractors import load_extractor

    try:
        return load_extractor(source, **options)
    except Exception as error:
        raise ValueError(f"extractor {source}: {error}") from error


def _score_cuts(extractor, features, task, scores, C, k, name):
    """The probe's rows for one extractor (`name`): `scores` of the pooled `features` at each cut."""
    rows = []
    for cut, splits in features.items():
        train, validation = splits["train"], splits["validation"]
        row = {"extractor": name, "cut": cut, "block": extractor.blocks[cut - 1].name,
               "depth": cut / extractor.n_blocks, "dim": train[0].shape[1]}
        if "linear" in scores:
            row["linear"] = linear_score(train, validation, task, C)
        if "knn" in scores:
            row["knn"] = knn_score(train, validation, task, k)
        if "logme" in scores:
            row["logme"] = logme(*train)
        rows.append(row)
    return rows
