"""Seeded, stratified train/validation/test splits that come out the same on every run and machine."""

import hashlib
import math

import numpy as np

from tfxfer.data.errors import DataError

SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = range(3)
SPLIT_ALIASES = {"train": TRAIN, "training": TRAIN, "val": VALIDATION, "valid": VALIDATION,
                 "validation": VALIDATION, "dev": VALIDATION, "test": TEST, "testing": TEST}


def check_fractions(validation_split, test_split):
    """Raises unless both fractions are in `[0, 1)` and leave some examples for training."""
    for name, value in (("validation_split", validation_split), ("test_split", test_split)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1); got {value!r}.")
    if validation_split + test_split >= 1:
        raise ValueError(
            f"validation_split + test_split must leave examples for training; got {validation_split} + {test_split}."
        )


def _order(positions, seed):
    """A seeded shuffle that depends only on the seed and positions: a hash, not a library's random stream."""
    def key(position):
        return hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest()
    return sorted(positions, key=key)


def _quotas(sizes, fraction, at_least_one):
    """Examples per group for one split: proportional, and summing to `round(total * fraction)` (largest remainders
    get the rounding; ties go to the earlier group), or at least one per group when `at_least_one`."""
    if fraction == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    exact = sizes * fraction
    quotas = np.floor(exact).astype(np.int64)
    missing = math.floor(sizes.sum() * fraction + 0.5) - quotas.sum()
    quotas[np.argsort(-(exact - quotas), kind="stable")[:max(missing, 0)]] += 1
    return np.maximum(quotas, 1) if at_least_one else quotas


def stratified_split(strata, validation_split, test_split, seed, *, class_names=None, source=""):
    """Assigns each example to train, validation or test, group by group.

    Each group gives validation and test their share of its examples (rounded so that the totals are
    `round(n * fraction)`); within a group the examples are ordered by a hash of `(seed, position)`, and the first
    go to validation, the next to test, the rest to training. The result depends only on the seed and the examples'
    order (sorted paths, or table rows), not on library versions.

    Args:
        strata: Group id per example (see `Task.strata`).
        validation_split: Fraction for validation.
        test_split: Fraction for test.
        seed: Any integer.
        class_names: For multi-class groups (one per class): the names, which also makes every class with enough
            examples appear in each requested split, and a class with too few an error.
        source: The data source, for messages.

    Returns:
        An int8 array of split ids (`TRAIN`, `VALIDATION`, `TEST`), one per example.

    Raises:
        DataError: A class has fewer examples than one per requested split.

    Example:
        >>> stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.25, 0.0, seed=0).tolist().count(VALIDATION)
        2
    """
    split = np.full(len(strata), TRAIN, dtype=np.int8)
    strict = class_names is not None
    groups, sizes = np.unique(strata, return_counts=True)
    n_validation = _quotas(sizes, validation_split, strict)
    n_test = np.minimum(_quotas(sizes, test_split, strict), sizes - n_validation)
    for group, size, to_validation, to_test in zip(groups, sizes, n_validation, n_test):
        needed = 1 + (validation_split > 0) + (test_split > 0)
        if strict and size - to_validation - to_test < 1 and size >= needed:  # the fractions take every example
            raise DataError(f"{source}: validation_split={validation_split} and test_split={test_split} leave class "
                            f"{class_names[group]!r} none of its {size} examples for training; pass smaller "
                            "fractions (0.2 is usual).")
        if strict and size - to_validation - to_test < 1:
            raise DataError(
                f"{source}: class {class_names[group]!r} has {size} example(s); the split needs at least "
                f"{needed} (one for training and one per validation/test split). Add examples of it or remove the "
                "class. (validation_split=0 and test_split=0 train without those splits, but the probe, the search "
                "and early stopping score on validation examples.)"
            )
        ordered = np.asarray(_order(np.flatnonzero(strata == group).tolist(), seed), dtype=np.int64)
        split[ordered[:to_validation]] = VALIDATION
        split[ordered[to_validation:to_validation + to_test]] = TEST
    return split
