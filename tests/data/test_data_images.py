"""Images from folders, CSV files and DataFrames: sizes, value ranges, splits, augmentation, cache, raw access."""

import types
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from helpers import COLOURS, class_folders, write_image

from tfxfer.data import DataError, decode_image, load_images

UNIT = dict(image_size=(8, 8), value_range=(0.0, 1.0))


def _all(dataset):
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
    return np.concatenate(images), np.concatenate(labels)


def test_folder_without_splits_is_split_stratified_and_reproducibly(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 10, "dog": 5})
    data = load_images(tmp_path / "pets", validation_split=0.2, test_split=0.2, seed=1, **UNIT)
    assert data.task.class_names == ["cat", "dog"]
    assert data.counts == {"train": {"cat": 6, "dog": 3}, "validation": {"cat": 2, "dog": 1},
                           "test": {"cat": 2, "dog": 1}}
    again = load_images(tmp_path / "pets", validation_split=0.2, test_split=0.2, seed=1, **UNIT)
    other = load_images(tmp_path / "pets", validation_split=0.2, test_split=0.2, seed=2, **UNIT)
    assert again.examples("validation")[0] == data.examples("validation")[0]
    assert other.examples("validation")[0] != data.examples("validation")[0]
    paths = [set(data.examples(split)[0]) for split in ("train", "validation", "test")]
    assert sum(map(len, paths)) == len(set.union(*paths)) == 15


def test_images_are_sized_scaled_and_labelled(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 3, "dog": 3}, size=(20, 30))
    for value_range in ((0.0, 1.0), (0.0, 255.0), (-1.0, 1.0)):
        data = load_images(tmp_path / "pets", image_size=(6, 4), value_range=value_range, validation_split=0)
        images, labels = _all(data.train)
        assert images.shape == (6, 6, 4, 3) and images.dtype == np.float32 and labels.dtype == np.int32
        low, high = value_range
        for image, label in zip(images, labels):
            expected = low + np.asarray(COLOURS[label], dtype=np.float32) / 255.0 * (high - low)
            np.testing.assert_allclose(image[2, 2], expected, rtol=1e-5, atol=1e-5)


def test_size_and_range_come_from_the_extractor_unless_given(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 2, "dog": 2})
    extractor = types.SimpleNamespace(image_size=(5, 7), value_range=(0.0, 255.0))
    data = load_images(tmp_path / "pets", extractor=extractor, validation_split=0)
    assert (data.image_size, data.value_range) == ((5, 7), (0.0, 255.0))
    data = load_images(tmp_path / "pets", extractor=extractor, image_size=(3, 3), validation_split=0)
    assert data.image_size == (3, 3) and next(iter(data.train))[0].shape[1:] == (3, 3, 3)
    with pytest.raises(ValueError, match=r"needs the image_size and value_range the extractor expects.*extractor="):
        load_images(tmp_path / "pets")
    with pytest.raises(ValueError, match=r"needs the value_range"):
        load_images(tmp_path / "pets", image_size=(8, 8))


def test_split_folders_are_used_as_they_are(tmp_path):
    class_folders(tmp_path / "data" / "train", {"cat": 4, "dog": 3})
    class_folders(tmp_path / "data" / "validation", {"cat": 1, "dog": 2})
    class_folders(tmp_path / "data" / "test", {"cat": 2, "dog": 0})
    data = load_images(tmp_path / "data", **UNIT)
    assert data.sizes == {"train": 7, "validation": 3, "test": 2}
    assert data.origins["validation"] == "folder validation/"
    assert data.counts["test"] == {"cat": 2, "dog": 0}


def test_training_split_is_carved_when_only_train_exists(tmp_path):
    class_folders(tmp_path / "data" / "train", {"cat": 5, "dog": 5})
    data = load_images(tmp_path / "data", validation_split=0.2, **UNIT)
    assert data.counts["validation"] == {"cat": 1, "dog": 1}
    assert data.origins == {"train": "folder train/ less validation", "test": "",
                            "validation": "20% of folder train/, stratified by label, seed 0"}


def test_csv_with_relative_and_absolute_paths(tmp_path):
    write_image(tmp_path / "img" / "a.png", COLOURS[0])
    # 48 x 48, so the pixel that marks the file lies in another JPEG block than the centre (in a 12 x 10 JPEG its
    # colour, which follows the path, bled into the whole image's chroma).
    write_image(tmp_path / "img" / "b.jpg", COLOURS[1], size=(48, 48))
    absolute = write_image(tmp_path / "elsewhere" / "c.png", COLOURS[0])
    (tmp_path / "labels.csv").write_text(f"file,kind\nimg/a.png,red\nimg/b.jpg,green\n{absolute},red\n")
    data = load_images(tmp_path / "labels.csv", path_column="file", label_column="kind", validation_split=0,
                       batch_size=3, **UNIT)
    images, labels = _all(data.unbatched("train").batch(3))
    assert data.task.class_names == ["green", "red"] and labels.tolist() == [1, 0, 1]
    np.testing.assert_allclose(images[1, 4, 4], np.asarray(COLOURS[1]) / 255.0, atol=0.03)


def test_multilabel_images_from_a_csv_and_regression_images_from_a_dataframe(tmp_path):
    paths = class_folders(tmp_path / "img", {"x": 6})
    rows = "\n".join(f"{p},{tags}" for p, tags in zip(paths, ["sky|sea", "sea", "sky", "sand|sea", "sand", "sky"]))
    (tmp_path / "tags.csv").write_text("path,tags\n" + rows + "\n")
    data = load_images(tmp_path / "tags.csv", label_column="tags", validation_split=0, **UNIT)
    assert data.task.task_type == "multilabel" and data.task.class_names == ["sand", "sea", "sky"]
    _, labels = _all(data.unbatched("train").batch(6))
    assert labels.tolist()[0] == [0, 1, 1] and labels.dtype == np.float32

    frame = pd.DataFrame({"image": [p.name for p in paths], "age": [1.5, 2.0, 7.25, 3.0, 4.5, 9.0]})
    data = load_images(frame, path_column="image", label_column="age", base_dir=tmp_path / "img" / "x",
                       validation_split=0, **UNIT)
    assert (data.task.task_type, data.task.class_names, data.task.label_encoding) == ("regression", ["age"], "float")
    assert sorted(_all(data.train)[1].tolist()) == [1.5, 2.0, 3.0, 4.5, 7.25, 9.0]


def test_split_column_assigns_rows(tmp_path):
    paths = class_folders(tmp_path / "img", {"a": 3, "b": 3})
    frame = pd.DataFrame({"path": [str(p) for p in paths], "label": ["a"] * 3 + ["b"] * 3,
                          "fold": ["train", "train", "val", "TRAIN", "train", "dev"]})
    data = load_images(frame, split_column="fold", **UNIT)
    assert data.sizes == {"train": 4, "validation": 2, "test": 0}
    assert data.origins["validation"] == "rows with fold = validation"


def test_augmentation_runs_on_training_batches_only_and_stays_in_range(tmp_path):
    for k in range(4):
        rng = np.random.default_rng(k)
        path = tmp_path / "pets" / ("cat" if k % 2 else "dog") / f"{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tf.io.write_file(str(path), tf.io.encode_png(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
    plain = load_images(tmp_path / "pets", image_size=(16, 16), value_range=(-1.0, 1.0), validation_split=0)
    assert not plain.augmented and plain.augmentation is None
    data = load_images(tmp_path / "pets", image_size=(16, 16), value_range=(-1.0, 1.0), validation_split=0,
                       augment=True, seed=3)
    assert data.augmented and isinstance(data.augmentation, keras.Sequential)
    assert [type(layer).__name__ for layer in data.augmentation.layers] == [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast"]
    unaugmented = np.sort(_all(data.unbatched("train").batch(4))[0].reshape(4, -1), axis=0)
    first, second = (np.sort(_all(data.train)[0].reshape(4, -1), axis=0) for _ in range(2))
    assert not np.allclose(first, unaugmented) and not np.allclose(first, second)
    assert first.min() >= -1.0 and first.max() <= 1.0


def test_custom_augmentation_layer(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 2, "dog": 2})
    flip = keras.layers.RandomFlip("vertical")
    assert load_images(tmp_path / "pets", augment=flip, validation_split=0, **UNIT).augmentation is flip
    with pytest.raises(ValueError, match="augment must be True, False or a Keras layer"):
        load_images(tmp_path / "pets", augment="yes", **UNIT)


def test_cache_gives_the_same_images_and_names_its_files_by_content(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 3, "dog": 3})
    plain = load_images(tmp_path / "pets", validation_split=0.5, **UNIT)
    memory = load_images(tmp_path / "pets", validation_split=0.5, cache=True, **UNIT)
    on_disk = load_images(tmp_path / "pets", validation_split=0.5, cache=tmp_path / "cache", **UNIT)
    expected = _all(plain.validation)
    for data in (memory, on_disk):
        for _ in range(2):
            np.testing.assert_array_equal(_all(data.validation)[0], expected[0])
    assert sorted(np.sort(_all(on_disk.train)[0].reshape(3, -1), axis=0).ravel()) == sorted(
        np.sort(_all(plain.train)[0].reshape(3, -1), axis=0).ravel())
    files = {path.name.split(".")[0] for path in (tmp_path / "cache").iterdir()}
    assert {name.split("-")[0] for name in files} == {"train", "validation"}
    before = {split: on_disk._cache_file(split) for split in ("train", "validation")}
    write_image(tmp_path / "pets" / "cat" / "cat_000.png", COLOURS[1], size=(13, 10))
    changed = load_images(tmp_path / "pets", validation_split=0.5, cache=tmp_path / "cache", **UNIT)
    assert {split: changed._cache_file(split) for split in before} != before


def test_examples_give_paths_and_labels_per_split(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 2, "dog": 2})
    data = load_images(tmp_path / "pets", validation_split=0, **UNIT)
    paths, labels = data.examples("train")
    assert [p.rsplit("/", 2)[-2] for p in paths] == ["cat", "cat", "dog", "dog"] and labels.tolist() == [0, 0, 1, 1]
    assert data.validation is None and data.unbatched("test") is None
    with pytest.raises(ValueError, match="split must be one of"):
        data.examples("dev")


def test_summary_names_task_splits_and_pipeline(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 5, "dog": 5})
    text = repr(load_images(tmp_path / "pets", **UNIT))
    assert "images 8x8 in [0, 1], multiclass, 2 classes ['cat', 'dog']" in text
    assert "validation: 2 (cat 1, dog 1) from 20% of all examples, stratified by label, seed 0" in text
    assert "skipped: 0" in text and "augmentation off" in text


def test_decode_image_matches_keras_loader_pixels(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(2):
        array = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
        tf.io.write_file(str(tmp_path / "pets" / f"c{k}" / "x.jpg"), tf.io.encode_jpeg(array))
    ours = load_images(tmp_path / "pets", image_size=(11, 13), value_range=(0.0, 255.0), validation_split=0)
    theirs = keras.utils.image_dataset_from_directory(tmp_path / "pets", image_size=(11, 13), shuffle=False,
                                                      verbose=False)
    np.testing.assert_array_equal(_all(ours.unbatched("train").batch(2))[0], next(iter(theirs))[0].numpy())


def test_decode_image_on_bytes():
    png = tf.io.encode_png(tf.fill([4, 6, 3], tf.constant(255, tf.uint8)))
    image = decode_image(png, (2, 3), (-1.0, 1.0))
    assert image.shape == (2, 3, 3) and np.allclose(image.numpy(), 1.0)


def test_decoding_file_by_file_gives_the_eager_pixels_and_names_a_bad_file(tmp_path):
    from tfxfer.data.decoding import decode_file

    array = np.random.default_rng(1).integers(0, 256, (23, 31, 3), dtype=np.uint8)
    path = tmp_path / "caf\u00e9.jpg"
    tf.io.write_file(str(path), tf.io.encode_jpeg(array))
    for size, value_range in (((11, 13), [0, 255]), ((5, 7), (-1.0, 1.0))):  # lists and ints, as callers pass them
        eager = decode_image(tf.io.read_file(str(path)), size, value_range)
        np.testing.assert_array_equal(decode_file(path, list(size), value_range).numpy(), eager.numpy())
    (tmp_path / "notes.jpg").write_bytes(b"not a jpeg at all")
    for name in ("notes.jpg", "missing.png", ""):  # undecodable, absent, a folder: each named (a tester's find)
        with pytest.raises(ValueError, match=f"{tmp_path / name}: "):
            decode_file(tmp_path / name, (4, 4), (0.0, 1.0))
    with pytest.raises(tf.errors.InvalidArgumentError):  # a size of 0 is the caller's error, not the file's
        decode_file(path, (0, 8), (0.0, 1.0))


def test_non_ascii_file_names(tmp_path):
    write_image(tmp_path / "fotos" / "caf\u00e9" / "cr\u00e8me br\u00fbl\u00e9e.png", COLOURS[0])
    write_image(tmp_path / "fotos" / "\u732b" / "\u5199\u771f.jpg", COLOURS[1])
    data = load_images(tmp_path / "fotos", validation_split=0, **UNIT)
    assert data.task.class_names == ["caf\u00e9", "\u732b"]
    assert _all(data.unbatched("train").batch(2))[0].shape == (2, 8, 8, 3)


def test_class_folder_names_that_look_alike_or_break_a_labels_file(tmp_path):
    """Found by a hostile tester: "caf\u00e9" from Linux beside "cafe\u0301" from macOS were two classes that look
    the same everywhere; a line break in a folder name gave a LiteRT export's labels.txt a line too many."""
    write_image(tmp_path / "nfc" / "caf\u00e9" / "0.png", COLOURS[0])
    write_image(tmp_path / "nfc" / "cafe\u0301" / "0.png", COLOURS[1])
    with pytest.raises(DataError, match="are one name written two ways"):
        load_images(tmp_path / "nfc", validation_split=0, **UNIT)
    write_image(tmp_path / "newline" / "good\nbad" / "0.png", COLOURS[0])
    write_image(tmp_path / "newline" / "ok" / "0.png", COLOURS[1])
    with pytest.raises(DataError, match=r"'good\\nbad' .* holds a control character"):
        load_images(tmp_path / "newline", validation_split=0, **UNIT)
    write_image(tmp_path / "cased" / "A" / "0.png", COLOURS[0])  # letters: "A" and "a" may well be two classes
    write_image(tmp_path / "cased" / "a" / "0.png", COLOURS[1])
    with pytest.warns(UserWarning, match="'A' and 'a' .* differ only in case"):
        assert load_images(tmp_path / "cased", validation_split=0, **UNIT).task.class_names == ["A", "a"]


def test_a_file_name_that_is_not_utf8_is_read(tmp_path, capsys):
    """Latin-1 bytes in a name (old archives, Windows shares) stopped a whole folder with 'Unable to convert element
    to UTF-8' and no file named (found by a hostile tester)."""
    import os

    write_image(tmp_path / "fotos" / "a" / "0.png", COLOURS[0])
    write_image(tmp_path / "fotos" / "b" / "0.png", COLOURS[1])
    os.rename(tmp_path / "fotos" / "b" / "0.png", os.fsencode(tmp_path / "fotos" / "b") + b"/caf\xe9.png")
    data = load_images(tmp_path / "fotos", validation_split=0, **UNIT)
    assert data.sizes["train"] == 2 and not data.skipped
    assert any(path.endswith("caf\udce9.png") for path in data.examples("train")[0])
    images, labels = _all(data.unbatched("train").batch(2))
    assert sorted(labels.tolist()) == [0, 1] and images.shape == (2, 8, 8, 3)
    # Skipped, eleven such names crashed `tfxfer train` writing the list of skips, and its report after training
    # ("surrogates not allowed"); a class folder with such a name reached the export, whose labels file cannot hold it.
    from tfxfer.cli.terminal import print_skipped
    from tfxfer.reports.markdown import _data_section

    for index in range(11):
        (tmp_path / "fotos" / "a" / f"bad{index}.png").write_bytes(b"not an image")
        os.rename(tmp_path / "fotos" / "a" / f"bad{index}.png", os.fsencode(tmp_path / "fotos" / "a") +
                  b"/bad\xe9%d.png" % index)
    data = load_images(tmp_path / "fotos", validation_split=0, on_bad="skip", **UNIT)
    assert len(data.skipped) == 11 and str(data.skipped[0]).endswith("bad\\xe90.png: not a decodable image (not an "
                                                                       "image: text (it starts with 'not an image'))")
    print_skipped(data.skipped)
    listing = capsys.readouterr().err
    assert "a/bad\\xe90.png: not a decodable image" in listing and "udce9" not in listing
    assert "bad\\xe910.png" in Path(listing.split("listed in ")[1].strip()).read_text()
    assert "`" + str(tmp_path / "fotos" / "a") + "/bad\\xe90.png`: not a decodable image" in "\n".join(
        _data_section(data))
    os.rename(tmp_path / "fotos" / "b", os.fsencode(tmp_path / "fotos") + b"/caf\xe9")
    with pytest.raises(DataError, match=r"class folder 'caf\\xe9' in .*fotos: its name is not UTF-8 .* rename it"):
        load_images(tmp_path / "fotos", validation_split=0, on_bad="skip", **UNIT)


def test_source_must_be_a_path_or_a_dataframe():
    with pytest.raises(ValueError, match="source must be a folder, a CSV/TSV path or a pandas DataFrame; got list"):
        load_images(["a.png"], **UNIT)
