"""Texts from CSV/TSV files, DataFrames and class folders of .txt files, as batches of strings."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfxfer.data import load_text


def test_batches_are_strings_and_labels(tmp_path):
    frame = pd.DataFrame({"text": [f"message {i}" for i in range(10)], "label": ["ham", "spam"] * 5})
    data = load_text(frame, batch_size=4, validation_split=0.2)
    texts, labels = next(iter(data.train))
    assert texts.dtype == tf.string and texts.shape == (4,) and labels.dtype == tf.int32
    assert data.sizes == {"train": 8, "validation": 2, "test": 0}
    assert data.image_size is None and "texts, multiclass, 2 classes ['ham', 'spam']" in data.summary()


def test_texts_reach_the_pipeline_unchanged():
    texts = ["  leading spaces", "trailing\u0085nel   ", "tab\tinside", "quote \"unbalanced"]
    data = load_text(pd.DataFrame({"text": texts, "label": [0, 1, 0, 1]}), validation_split=0)
    got = [t.decode() for t, _ in data.unbatched("train").as_numpy_iterator()]
    assert got == texts


def test_training_order_is_reshuffled_each_epoch_and_seeded():
    frame = pd.DataFrame({"text": [str(i) for i in range(40)], "label": [0, 1] * 20})

    def epochs(seed):
        data = load_text(frame, validation_split=0, batch_size=40, seed=seed)
        train = data.train
        return [next(iter(train))[0].numpy().tolist() for _ in range(2)], data

    (first, second), data = epochs(seed=5)
    assert first != second and sorted(first) == sorted(second)
    assert epochs(seed=5)[0] == [first, second]
    # Each pipeline starts from the seed's first order, whatever iterated another before it (a search's trials).
    assert next(iter(data.train))[0].numpy().tolist() == first


def test_validation_order_is_fixed():
    frame = pd.DataFrame({"text": [str(i) for i in range(20)], "label": [0, 1] * 10})
    data = load_text(frame, validation_split=0.5, batch_size=20)
    once, again = (next(iter(data.validation))[0].numpy().tolist() for _ in range(2))
    assert once == again == [t.encode() for t in data.examples("validation")[0]]


def test_sentence_pairs_are_joined_with_the_separator():
    frame = pd.DataFrame({"s1": ["A plane takes off.", "A man sings."], "s2": ["A jet departs.", "A cat sleeps."],
                          "score": [4.8, 0.2]})
    data = load_text(frame, text_column=["s1", "s2"], label_column="score", text_separator=" [SEP] ",
                     validation_split=0)
    assert data.examples("train")[0] == ["A plane takes off. [SEP] A jet departs.", "A man sings. [SEP] A cat sleeps."]
    assert data.task.task_type == "regression"


def test_class_folders_of_txt_files(tmp_path):
    for split, counts in (("train", {"neg": 3, "pos": 4}), ("test", {"neg": 1, "pos": 1})):
        for name, count in counts.items():
            folder = tmp_path / "reviews" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}.txt").write_text(f"{name} {split} review {i}\nsecond line", encoding="utf-8")
    (tmp_path / "reviews" / "train" / "pos" / "urls.csv").write_text("not read")
    with pytest.warns(UserWarning, match=r"1 file or row left out or not read \(unsupported extension 1\)"):
        data = load_text(tmp_path / "reviews", validation_split=0)
    assert data.task.class_names == ["neg", "pos"]
    assert data.sizes == {"train": 7, "validation": 0, "test": 2}
    assert data.origins["test"] == "folder test/"
    assert "neg train review 0\nsecond line" in data.examples("train")[0]
    assert [item.reason for item in data.skipped] == ["unsupported extension"]


def test_csv_labels_and_split_column(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label,split\n" + "".join(
        f"text {i},{'ab'[i % 2]},{['train', 'train', 'test'][i % 3]}\n" for i in range(12)), encoding="utf-8")
    data = load_text(path, split_column="split", validation_split=0.25)
    assert data.sizes == {"train": 6, "validation": 2, "test": 4}
    assert data.origins["test"] == "rows with split = test"
    assert np.all(data.examples("validation")[1] == [0, 1])


def test_dataframe_with_a_repeated_index():
    frame = pd.concat([pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})] * 2)
    data = load_text(frame, validation_split=0)
    assert data.examples("train")[0] == ["a", "b", "a", "b"]


def test_both_loaders_take_the_extractor_and_refuse_the_wrong_kind(tiny_hub_model, tmp_path):
    import tfxfer

    images = tfxfer.load_extractor(tiny_hub_model)
    frame = pd.DataFrame({"text": ["a b", "c d", "e f", "g h"], "label": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match=r"takes images, not texts: load its data with tfxfer.load_images"):
        load_text(frame, extractor=images)
    texts = type("TextExtractor", (), {"input_kind": "text", "source": "glove", "image_size": None,
                                       "value_range": None})()
    assert load_text(frame, extractor=texts, validation_split=0).sizes["train"] == 4
    with pytest.raises(ValueError, match=r"'glove' takes texts, not images: load its data with tfxfer.load_text"):
        tfxfer.load_images(tmp_path, extractor=texts)


def test_labels_that_differ_only_in_case_warn():
    """'Spam' and 'spam' were two classes without a word (found by a hostile tester); they may be one, or two."""
    frame = pd.DataFrame({"text": ["a b", "c d", "e f", "g h"], "label": ["spam", "Spam", "ham", "ham"]})
    with pytest.warns(UserWarning, match="labels 'Spam' and 'spam' in column 'label' differ only in case"):
        assert load_text(frame, validation_split=0).task.class_names == ["Spam", "ham", "spam"]


def test_labels_with_spaces_around_them_are_one_class_and_a_note(tmp_path):
    """'ham ' from a spreadsheet became 'ham' without a word (a hostile tester's find): merged, and now noted."""
    path = tmp_path / "sms.csv"
    path.write_text("text,label\na b,ham \nc d,ham\ne f, spam\ng h,spam\n")
    splits = load_text(path, validation_split=0)
    assert splits.task.class_names == ["ham", "spam"]
    assert splits.notes == ["2 label(s) in column 'label' have spaces around them (e.g. 'ham '): read without them, "
                            "as 'ham'"]
    assert "note: 2 label(s) in column 'label' have spaces" in str(splits)

def test_utf16_files_without_a_byte_order_mark_are_named_and_read_when_told(tmp_path):
    """They were 'a binary file', even with encoding='utf-16-le' given (found by a hostile tester)."""
    from tfxfer.data import DataError

    for label in ("ham", "spam"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.txt").write_bytes(f"{label} message {i}".encode("utf-16-le"))
    with pytest.raises(DataError, match=r"0.txt: not text \(it looks like UTF-16 text without a byte order mark "
                                        r"\(pass encoding='utf-16-le'\)\)"):
        load_text(tmp_path)
    data = load_text(tmp_path, encoding="utf-16-le", validation_split=0)
    assert sorted(text.decode() for text, _ in data.unbatched("train").as_numpy_iterator())[0] == "ham message 0"


def test_a_utf16_file_with_its_byte_order_mark_is_named_as_utf16(tmp_path):
    """It was 'not valid UTF-8' (a tester's), where its byte order mark says what it is."""
    from tfxfer.data import DataError

    for label in ("ham", "spam"):
        (tmp_path / label).mkdir()
        for i in range(2):
            (tmp_path / label / f"{i}.txt").write_text(f"{label} message {i}", encoding="utf-8")
    (tmp_path / "spam" / "2.txt").write_text("spam from Windows", encoding="utf-16")
    with pytest.raises(DataError, match=r"2.txt: not decodable text \(it starts with a UTF-16 byte order mark, so it "
                                        r"is UTF-16 text, not utf-8\); pass encoding='utf-16' if the files are UTF-16, or "
                                        r"save it as utf-8, or pass on_bad="):
        load_text(tmp_path)
    with pytest.warns(UserWarning, match="1 file or row left out or not read"):
        assert load_text(tmp_path, on_bad="skip", validation_split=0).skipped[0].reason == "not decodable text"


def test_a_table_without_rows_says_so_without_classes(tmp_path):
    """'...a data set needs at least one example per class' was wrong for predict's CSV (a hostile tester's find)."""
    from tfxfer.data import DataError

    (tmp_path / "header.csv").write_text("text,label\n")
    with pytest.raises(DataError, match=r"header.csv has no rows of data, only a header row\.$"):
        load_text(tmp_path / "header.csv")
    with pytest.raises(DataError, match=r"^The DataFrame has no rows\.$"):
        load_text(pd.DataFrame({"text": [], "label": []}))
