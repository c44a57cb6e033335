"""The real data sets in ../shared/assets/data load with their published counts, and every image decodes."""

import keras
import numpy as np
import pytest

from tfxfer.data import load_images, load_text

SENTIMENT_FILES = ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt")


def test_hymenoptera_loads_every_image(shared_assets):
    root = shared_assets / "data" / "hymenoptera" / "hymenoptera_data"
    data = load_images(root, image_size=(64, 64), value_range=(0.0, 1.0), batch_size=64)
    assert data.task.class_names == ["ants", "bees"]
    assert data.counts == {"train": {"ants": 124, "bees": 121}, "validation": {"ants": 70, "bees": 83}, "test": {}}
    assert data.skipped == [] and data.test is None
    assert any(path.endswith("train/ants/imageNotFound.gif") for path in data.examples("train")[0])
    for split, size in (("train", 245), ("validation", 153)):
        images = np.concatenate([x.numpy() for x, _ in getattr(data, split)])
        assert images.shape == (size, 64, 64, 3) and np.isfinite(images).all()
        assert images.min() >= 0.0 and images.max() <= 1.0


def test_hymenoptera_pixels_equal_keras_loader(shared_assets):
    folder = shared_assets / "data" / "hymenoptera" / "hymenoptera_data" / "val"
    ours = load_images(folder.parent, image_size=(64, 64), value_range=(0.0, 255.0))
    theirs = keras.utils.image_dataset_from_directory(folder, image_size=(64, 64), shuffle=False, verbose=False)
    assert theirs.class_names == ours.task.class_names
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in ours.validation]),
                                  np.concatenate([x.numpy() for x, _ in theirs]))


def test_sms_spam_tsv_and_csv(shared_assets):
    folder = shared_assets / "data" / "sms_spam"
    tsv = load_text(folder / "smsspamcollection" / "SMSSpamCollection", sep="\t", column_names=["label", "text"],
                    validation_split=0)
    csv = load_text(folder / "sms_spam.csv", validation_split=0)
    for data in (tsv, csv):
        assert data.counts["train"] == {"ham": 4827, "spam": 747} and data.skipped == []
    assert tsv.examples("train")[0] == csv.examples("train")[0]
    assert tsv.task.class_weights == pytest.approx({0: 5574 / (2 * 4827), 1: 5574 / (2 * 747)})


def test_sms_spam_split_is_stratified(shared_assets):
    path = shared_assets / "data" / "sms_spam" / "sms_spam.csv"
    data = load_text(path, validation_split=0.2, seed=0)
    # 20% of the 5171 distinct texts (the 403 repeated ones go where their first copy goes): 1123 messages.
    assert data.counts["validation"] == {"ham": 972, "spam": 151}
    assert data.origins["validation"].startswith("1123 (20% asked; copies of one example kept together)")
    assert data.examples("validation")[0] == load_text(path, validation_split=0.2, seed=0).examples("validation")[0]


@pytest.mark.parametrize("name", SENTIMENT_FILES)
def test_sentiment_sentences(shared_assets, name):
    path = shared_assets / "data" / "sentiment_labelled_sentences" / "sentiment labelled sentences" / name
    data = load_text(path, column_names=["text", "label"], validation_split=0)
    assert data.task.class_names == ["0", "1"] and data.counts["train"] == {"0": 500, "1": 500}
    assert data.skipped == []
    if name.startswith("imdb"):
        assert sum("\u0085" in text for text in data.examples("train")[0]) == 2


def test_stsb_is_regression(shared_assets):
    path = shared_assets / "data" / "stsb" / "STS-B" / "train.tsv"
    data = load_text(path, text_column=["sentence1", "sentence2"], label_column="score", validation_split=0)
    assert (data.task.task_type, data.task.class_names, data.task.label_encoding) == ("regression", ["score"], "float")
    texts, scores = data.examples("train")
    assert len(texts) == 5749 and scores.min() == 0.0 and scores.max() == 5.0
    assert texts[0] == "A plane is taking off. An air plane is taking off."
    assert float(scores.mean()) == pytest.approx(2.701, abs=1e-3)
