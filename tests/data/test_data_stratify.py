"""Seeded stratified splits: reproducible, proportional per class, and an error when a class is too small."""

import numpy as np
import pandas as pd
import pytest

from tfxfer.data import DataError, stratified_split
from tfxfer.data import Task, load_text
from tfxfer.data.stratify import TEST, TRAIN, VALIDATION


def test_split_is_stratified_and_reproducible():
    strata = np.array([0] * 80 + [1] * 20)
    split = stratified_split(strata, 0.2, 0.1, seed=3)
    assert np.array_equal(split, stratified_split(strata, 0.2, 0.1, seed=3))
    assert not np.array_equal(split, stratified_split(strata, 0.2, 0.1, seed=4))
    for group, size in ((0, 80), (1, 20)):
        members = split[strata == group]
        assert (members == VALIDATION).sum() == round(size * 0.2)
        assert (members == TEST).sum() == round(size * 0.1)


def test_split_does_not_depend_on_numpy_random_state():
    strata = np.zeros(50, dtype=int)
    np.random.seed(123)
    first = stratified_split(strata, 0.3, 0.0, seed=0)
    np.random.seed(456)
    assert np.array_equal(first, stratified_split(strata, 0.3, 0.0, seed=0))


def test_every_class_gets_one_example_per_split_when_it_can():
    strata = np.array([0] * 50 + [1] * 3)
    split = stratified_split(strata, 0.1, 0.1, seed=0, class_names=["big", "rare"])
    assert sorted(split[strata == 1].tolist()) == [TRAIN, VALIDATION, TEST]


def test_class_with_too_few_examples_is_named():
    strata = np.array([0] * 10 + [1])
    with pytest.raises(DataError, match=r"class 'rare' has 1 example\(s\); the split needs at least 2") as error:
        stratified_split(strata, 0.2, 0.0, seed=0, class_names=["big", "rare"], source="labels.csv")
    # It advised lowering validation_split to 0 and no more, which the probe and the search then refuse (a tester's).
    assert "but the probe, the search and early stopping score on validation examples" in str(error.value)
    # "class 'big' has 10 example(s); the split needs at least 2" contradicted itself at validation_split=0.99
    with pytest.raises(DataError, match=r"labels.csv: validation_split=0.99 and test_split=0.0 leave class 'big' none "
                                        r"of its 10 examples for training; pass smaller fractions"):
        stratified_split(np.array([0] * 10 + [1] * 10), 0.99, 0.0, seed=0, class_names=["big", "other"],
                         source="labels.csv")


def test_multilabel_strata_follow_the_rarest_label():
    labels = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [0, 0, 0], [1, 0, 0]], dtype=np.float32)
    assert Task("multilabel", ["a", "b", "c"]).strata(labels).tolist() == [0, 1, 2, 3, 0]


def test_a_common_label_is_balanced_across_splits_and_a_split_without_its_negatives_is_noted():
    """Stratified by each row's rarest label alone, all 6 validation rows of a tester's set had 'dark', whose AUC
    was then 0 in a val_auc of 0.07 without a word: sets of labels that 5 or more rows share are groups now."""
    tags = ["ants"] * 8 + ["ants|dark"] * 7 + ["bees"] * 7 + ["bees|dark"] * 8
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "tags": tags})
    data = load_text(frame, label_column="tags", label_delimiter="|", validation_split=0.2, seed=0)
    dark = data.examples("validation")[1][:, data.task.class_names.index("dark")]
    assert 0 < dark.sum() < len(dark) and not data.notes
    assert Task("multilabel", ["a", "b"]).strata(np.array([[1, 0]] * 5 + [[1, 1]], np.float32)).tolist() == \
        [3] * 5 + [1]  # the set {a} (5 rows) is a group; the lone {a, b} goes by its rarest label, b
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(8)], "tags": ["a|b", "a"] * 4})
    data = load_text(frame, label_column="tags", label_delimiter="|", validation_split=0.25, seed=0)
    assert "every validation example has 'a': its AUC there is undefined, and Keras counts it 0 in the mean AUC" \
        in data.notes


def test_regression_strata_are_quantile_bins():
    targets = np.linspace(0, 5, 100).astype(np.float32)[::-1]
    strata = Task("regression", ["target"]).strata(targets)
    assert sorted(set(strata.tolist())) == list(range(10))
    assert strata[0] == 9 and strata[-1] == 0
    split = stratified_split(strata, 0.2, 0.0, seed=0)
    assert (split == VALIDATION).sum() == 20
    assert targets[split == VALIDATION].min() < 1 and targets[split == VALIDATION].max() > 4
