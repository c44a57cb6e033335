"""Bad input: each case is an error naming the culprit, or with on_bad="skip" a counted, listed skip."""

import io
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from helpers import COLOURS, class_folders, jpeg_bytes, write_image
from PIL import Image

from tfxfer.data import DataError, Skipped, load_images, load_text
from tfxfer.data.errors import count_reasons

UNIT = dict(image_size=(8, 8), value_range=(0.0, 1.0), validation_split=0)
# Every load that skips warns; the warning itself is checked once, in test_skip_counts_reasons_over_a_mixed_table.
pytestmark = pytest.mark.filterwarnings("ignore:.*left out or not read:UserWarning")


@pytest.fixture
def pets(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 3, "dog": 3})
    return tmp_path / "pets"


BAD_FILES = {
    "random.jpg": (bytes(range(256)) * 4, r"not an image: no JPEG/PNG/GIF/BMP/WebP signature"),
    "truncated.jpg": (jpeg_bytes()[:1500], r"truncated or corrupt JPEG: jpeg::Uncompress failed"),
    "zero.png": (b"", r"empty file \(0 bytes\)"),
    "notes.png": (b"these are my notes, not a picture\n", r"not an image: text \(it starts with 'these are my "),
    # what often passes for an image (found by a hostile tester: a TIFF was "no JPEG/PNG/GIF/BMP/WebP signature")
    "scan.jpg": (b"II*\0" + bytes(64), r"not an image TensorFlow reads: a TIFF image; convert it to PNG or JPEG"),
    "IMG_0001.jpg": (bytes(4) + b"ftypheic" + bytes(64),
                     r"not an image TensorFlow reads: an HEIC/HEIF photo \(as iPhones take\); convert it"),
    "cut.png": (None, r"truncated or corrupt PNG"),
    # Valid files that TensorFlow's decoders misread or cannot read (found by a hostile tester): a palette BMP was
    # read as its colour indices in grey, silently; these two were called corrupt.
    "palette.bmp": ("P", r"BMP with a colour table .* would read the colour indices as grey levels; convert it"),
    "alpha.webp": ("RGBA", r"a WebP with transparency, which TensorFlow's decoder cannot read; convert it to PNG"),
}


def _bad_file_bytes(name):
    contents, _ = BAD_FILES[name]
    if contents in ("P", "RGBA"):
        buffer = io.BytesIO()
        pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 4), dtype=np.uint8)
        image = Image.fromarray(pixels, "RGBA")
        image = image.convert("RGB").convert("P", palette=Image.ADAPTIVE) if contents == "P" else image
        image.save(buffer, name.rsplit(".", 1)[1].upper())
        return buffer.getvalue()
    if contents is None:
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
        contents = buffer.getvalue()[:-40]
    return contents


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_undecodable_image_is_named_or_skipped(pets, name):
    (pets / "dog" / name).write_bytes(_bad_file_bytes(name))
    with pytest.raises(DataError, match=rf"pets/dog/{name}: not a decodable image \({BAD_FILES[name][1]}.*"
                                        r"remove it or pass on_bad=\"skip\""):
        load_images(pets, **UNIT)
    data = load_images(pets, on_bad="skip", **UNIT)
    assert data.sizes["train"] == 6
    assert [(item.source.rsplit("/", 2)[-2:], item.reason) for item in data.skipped] == [
        (["dog", name], "not a decodable image")]
    assert "skipped: 1 (not a decodable image 1)" in data.summary()


def test_the_decoder_refuses_a_palette_bmp_and_reads_a_grey_one():
    """decode_image is also the served graph's decoding: a palette BMP sent to TF Serving is refused there too."""
    from tfxfer.data import decode_image

    with pytest.raises(tf.errors.InvalidArgumentError, match="BMP with a colour table"):
        decode_image(tf.constant(_bad_file_bytes("palette.bmp")), (8, 8), (0.0, 1.0))
    buffer = io.BytesIO()
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L").save(buffer, "BMP")  # a grey ramp table
    grey = decode_image(tf.constant(buffer.getvalue()), (16, 16), (0.0, 255.0)).numpy()
    np.testing.assert_array_equal(grey[..., 0], np.arange(256).reshape(16, 16))


def test_undecodable_image_in_a_csv_names_row_and_file(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png", COLOURS[1])
    (tmp_path / "c.jpg").write_bytes(jpeg_bytes()[:900])
    (tmp_path / "labels.csv").write_text("path,label\na.png,x\nb.png,y\nc.jpg,y\n")
    with pytest.raises(DataError, match=r"labels\.csv, row 4 \(.*c\.jpg\): not a decodable image \(truncated"):
        load_images(tmp_path / "labels.csv", **UNIT)
    assert load_images(tmp_path / "labels.csv", on_bad="skip", **UNIT).sizes["train"] == 2


def test_animated_gif_gives_its_first_frame(pets):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(pets / "cat" / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    data = load_images(pets, **UNIT)
    paths, _ = data.examples("train")
    images = np.concatenate([x.numpy() for x, _ in data.unbatched("train").batch(16)])
    red = images[[p.endswith("anim.gif") for p in paths]][0]
    np.testing.assert_allclose(red[4, 4], [1.0, 0.0, 0.0], atol=0.02)


def _png16(path):
    array = np.dstack([np.full((6, 6), value, np.uint16) for value in (65535, 32896, 0)])
    tf.io.write_file(str(path), tf.io.encode_png(array))


ODD_PNGS = {
    "gray": (lambda path: Image.new("L", (6, 6), 128).save(path), [128 / 255] * 3),
    "rgba": (lambda path: Image.new("RGBA", (6, 6), (10, 200, 30, 7)).save(path), [10 / 255, 200 / 255, 30 / 255]),
    "16-bit": (_png16, [1.0, 0.502, 0.0]),
}


@pytest.mark.parametrize("kind", sorted(ODD_PNGS))
def test_grayscale_rgba_and_16_bit_pngs_become_rgb(pets, kind):
    write, expected = ODD_PNGS[kind]
    write(pets / "cat" / "odd.png")
    data = load_images(pets, **UNIT)
    paths, _ = data.examples("train")
    images = np.concatenate([x.numpy() for x, _ in data.unbatched("train").batch(16)])
    odd = images[[p.endswith("odd.png") for p in paths]][0]
    assert odd.shape == (8, 8, 3)
    np.testing.assert_allclose(odd[3, 3], expected, atol=0.01)


def test_unsupported_extensions_are_listed_not_read(pets):
    (pets / "cat" / "readme.txt").write_text("not an image")
    (pets / "cat" / "scan.tiff").write_bytes(b"II*\x00")
    (pets / "dog" / ".DS_Store").write_bytes(b"\x00\x00")
    (pets / "dog" / "upper.PNG").write_bytes((pets / "dog" / "dog_000.png").read_bytes())
    data = load_images(pets, **UNIT)
    assert data.sizes["train"] == 7
    listed = {item.source.rsplit("/", 1)[-1]: item.reason for item in data.skipped}
    assert listed == {"readme.txt": "unsupported extension", "scan.tiff": "unsupported extension",
                      ".DS_Store": "hidden file"}
    assert "'.tiff' is not one of .bmp, .gif, .jpeg, .jpg, .png, .webp" in str(data.skipped[1])


def test_empty_class_folder_is_named_or_skipped(pets):
    (pets / "bird").mkdir()
    (pets / "bird" / "notes.txt").write_text("no images yet")
    with pytest.raises(DataError, match=r"pets/bird: empty class folder \(no .bmp/.gif/.jpeg/.jpg/.png/.webp"):
        load_images(pets, **UNIT)
    data = load_images(pets, on_bad="skip", **UNIT)
    assert data.task.class_names == ["cat", "dog"]
    assert count_reasons(data.skipped) == {"unsupported extension": 1, "empty class folder": 1}


def test_single_class_folder_is_an_error(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 3})
    with pytest.raises(DataError, match=r"pets has 1 usable class folder\(s\) \['cat'\]; a classifier needs at "
                                        r"least two"):
        load_images(tmp_path / "pets", **UNIT)


def test_class_too_small_for_the_split_is_named(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 5, "dog": 1})
    with pytest.raises(DataError, match=r"class 'dog' has 1 example\(s\); the split needs at least 2"):
        load_images(tmp_path / "pets", image_size=(8, 8), value_range=(0.0, 1.0), validation_split=0.2)


def test_folder_classes_outside_class_names(tmp_path):
    class_folders(tmp_path / "data" / "train", {"cat": 2, "dog": 2})
    class_folders(tmp_path / "data" / "val", {"cat": 1, "dog": 1, "fox": 2})
    # "label not in --class-names" where no class names were given (a hostile tester's find)
    with pytest.raises(DataError, match=r"data/val/fox/fox_000\.png: class not in the training folder \(folder 'fox' "
                                        r"is not one of \['cat', 'dog'\]\)"):
        load_images(tmp_path / "data", **UNIT)
    data = load_images(tmp_path / "data", on_bad="skip", **UNIT)
    assert data.sizes == {"train": 4, "validation": 2, "test": 0}
    assert count_reasons(data.skipped) == {"class not in the training folder": 2}
    assert data.notes == []
    # A class that validation lacks: its accuracy said nothing of that class, without a word (a tester's find).
    shutil.rmtree(tmp_path / "data" / "val" / "dog")
    data = load_images(tmp_path / "data", on_bad="skip", **UNIT)
    assert data.notes == ["the validation split has no 'dog': its scores say nothing of that class"]
    assert "note: the validation split has no 'dog'" in str(data)
    with pytest.raises(DataError, match=r"class 'bird' in class_names has no folder in .*data/train"):
        load_images(tmp_path / "data", class_names=["cat", "bird"], **UNIT)


def test_table_labels_outside_class_names():
    frame = pd.DataFrame({"text": list("abcd"), "label": ["x", "y", "z", "x"]})
    with pytest.raises(DataError, match=r"DataFrame, row 2: label not in class_names \('z' is not one of"):
        load_text(frame, class_names=["x", "y"])
    data = load_text(frame, class_names=["x", "y"], on_bad="skip", validation_split=0)
    assert data.skipped == [Skipped("DataFrame, row 2", "label not in class_names", "'z' is not one of ['x', 'y']")]


def test_missing_or_empty_text_and_missing_labels(tmp_path):
    path = tmp_path / "texts.csv"
    path.write_text('text,label\nfine,a\n"   ",b\n,a\nalso fine,\nok,b\nyes,a\nno,b\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"texts\.csv, row 3: missing or empty text \(column 'text' is empty\)"):
        load_text(path)
    data = load_text(path, on_bad="skip", validation_split=0)
    assert data.sizes["train"] == 4
    assert [(item.source.rsplit("/", 1)[-1], item.reason) for item in data.skipped] == [
        ("texts.csv, row 3", "missing or empty text"), ("texts.csv, row 4", "missing or empty text"),
        ("texts.csv, row 5", "missing label")]


@pytest.mark.parametrize("value,reason", [("nan", "missing target"), ("inf", "target not finite"),
                                          ("", "missing target"), ("high", "target not a number")])
def test_bad_regression_targets(tmp_path, value, reason):
    path = tmp_path / "scores.csv"
    path.write_text(f"text,score\na,0.5\nb,{value}\nc,1.5\nd,2.5\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"scores\.csv, row 3: {reason}"):
        load_text(path, label_column="score", task="regression")
    data = load_text(path, label_column="score", task="regression", on_bad="skip", validation_split=0)
    assert data.sizes["train"] == 3 and count_reasons(data.skipped) == {reason: 1}


def test_non_finite_targets_in_a_dataframe():
    frame = pd.DataFrame({"text": list("abcd"), "score": [0.5, np.inf, np.nan, 1.25]})
    with pytest.raises(DataError, match=r"DataFrame, row 1: target not finite \(column 'score' holds inf\)"):
        load_text(frame, label_column="score")
    data = load_text(frame, label_column="score", on_bad="skip", validation_split=0)
    assert count_reasons(data.skipped) == {"target not finite": 1, "missing target": 1}


def test_missing_columns_list_the_columns(tmp_path):
    path = tmp_path / "sms.tsv"
    path.write_text("ham\tHello there\nspam\tWin now\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"sms\.tsv: text_column='text' is not a column; "
                                        r"the columns are \['ham', 'Hello there'\]\. .*column_names="):
        load_text(path)
    frame = pd.DataFrame({"image": ["a.png"], "label": ["x"]})
    with pytest.raises(DataError, match=r"DataFrame: path_column='path' is not a column; the columns are "
                                        r"\['image', 'label'\]\.$"):
        load_images(frame, **UNIT)
    # Excel's "Text" and "Label" headers: the columns listed, but the near miss not named (a tester's find).
    frame = pd.DataFrame({"Text": ["bees"], "Label": ["x"]})
    with pytest.raises(DataError, match=r"DataFrame: text_column='text' is not a column, but 'Text' is \(names are "
                                        r"matched with their case\); pass text_column='Text'\.$"):
        load_text(frame)


def test_duplicate_columns_in_a_dataframe():
    frame = pd.DataFrame([["a", "x", "y"]], columns=["text", "label", "label"])
    with pytest.raises(DataError, match=r"DataFrame: column name 'label' appears more than once"):
        load_text(frame)


def test_unreadable_encodings_name_file_and_byte_offset(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes("text,label\ngood,1\nna\u00efve,0\n".encode("cp1252"))
    with pytest.raises(DataError, match=r"reviews\.csv: byte offset 20 \(line 3\) is not valid utf-8"):
        load_text(path)
    assert load_text(path, encoding="cp1252", validation_split=0).sizes["train"] == 2

    for name, texts in (("pos", ["great", "fine"]), ("neg", ["bad", "awful"])):
        (tmp_path / "reviews" / name).mkdir(parents=True)
        for i, text in enumerate(texts):
            (tmp_path / "reviews" / name / f"{i}.txt").write_text(text, encoding="utf-8")
    (tmp_path / "reviews" / "neg" / "2.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match=r"reviews/neg/2\.txt: not decodable text \(byte offset 3 \(line 1\) is "
                                        r"not valid utf-8"):
        load_text(tmp_path / "reviews")
    assert load_text(tmp_path / "reviews", on_bad="skip", validation_split=0).sizes["train"] == 4


def test_paths_that_do_not_exist_name_row_and_path(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png", COLOURS[1])
    write_image(tmp_path / "c.png", COLOURS[1])
    frame = pd.DataFrame({"path": ["a.png", "b.png", "gone.png", "c.png", ""], "label": ["x", "y", "x", "y", "x"]})
    with pytest.raises(DataError, match=r"DataFrame, row 2: path does not exist \('.*gone\.png' is not a file\)"):
        load_images(frame, base_dir=tmp_path, **UNIT)
    frame = frame.drop(index=2)
    with pytest.raises(DataError, match=r"DataFrame, row at position 3 \(index label 4\): missing path"):
        load_images(frame, base_dir=tmp_path, **UNIT)
    # What a path that is not found may be, said (found by a hostile tester: '~' and file:// were not explained)
    import os

    os.symlink(tmp_path / "moved.png", tmp_path / "link.png")
    for written, hint in [("~/pics/a.png", "~ is not expanded here"), ("file:///tmp/a.png", "it is a file:// URL"),
                          ("https://example.com/a.png", "URLs are not read"),  # shown as written, not https:/example
                          ("pics/*.png", "it is a pattern"), ("link.png", r"it is a link to .*moved\.png, which does not")]:
        frame = pd.DataFrame({"path": ["a.png", "b.png", written], "label": ["x", "y", "x"]})
        with pytest.raises(DataError, match=rf"row 2: path does not exist \(.* is not a file; {hint}") as error:
            load_images(frame, base_dir=tmp_path, **UNIT)
        assert "://" not in written or f"'{written}' is not a file" in str(error.value)


def test_skip_counts_reasons_over_a_mixed_table(tmp_path):
    for name in ("a", "b", "c", "d"):
        write_image(tmp_path / f"{name}.png", COLOURS[ord(name) % 2])
    (tmp_path / "e.png").write_bytes(b"")
    (tmp_path / "list.csv").write_text("path,label\na.png,x\nb.png,y\nmissing.png,x\ne.png,y\nc.png,\n"
                                       "d.png,z\nb.png,x\na.png,y\n")
    # a.png and b.png are listed twice, with two labels each: their second rows are bad input too.
    with pytest.warns(UserWarning, match=r"list\.csv: 6 files or rows left out or not read \(one example, two labels 2, "
                                         r"path does not exist 1, not a decodable image 1, missing label 1, label not "
                                         r"in class_names 1\)"):
        data = load_images(tmp_path / "list.csv", class_names=["x", "y"], on_bad="skip", **UNIT)
    assert data.sizes["train"] == 2
    assert count_reasons(data.skipped) == {"one example, two labels": 2, "path does not exist": 1,
                                           "not a decodable image": 1, "missing label": 1,
                                           "label not in class_names": 1}
    assert "skipped: 6" in data.summary()


def test_on_bad_is_checked():
    with pytest.raises(ValueError, match=r'on_bad must be "error" or "skip"; got \'ignore\''):
        load_text(pd.DataFrame({"text": ["a"], "label": ["b"]}), on_bad="ignore")


def test_unknown_split_values_are_named():
    frame = pd.DataFrame({"text": list("abcd"), "label": list("xyxy"), "split": ["train", "train", "holdout", "val"]})
    with pytest.raises(DataError, match=r"DataFrame, row 2: unknown split \(column 'split' holds 'holdout'"):
        load_text(frame, split_column="split")


def test_a_table_path_relative_to_the_working_folder_is_named_as_such(tmp_path, monkeypatch):
    """'sub/img/0.png is not a file' left a user whose paths worked from the shell guessing (a hostile tester's)."""
    monkeypatch.chdir(tmp_path)
    class_folders(tmp_path / "img", {"cat": 2, "dog": 2})
    (tmp_path / "sub").mkdir()
    rows = [f"img/{name}/{name}_{i:03d}.png,{name}" for name in ("cat", "dog") for i in range(2)]
    (tmp_path / "sub" / "photos.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"img/cat/cat_000.png is a file relative to the working folder, but a "
                                        r"table's paths are read relative to its own folder"):
        load_images(tmp_path / "sub" / "photos.csv", image_size=(16, 16), value_range=(0, 1))
    # With base_dir, "its own folder" was not where they were read from (a tester's find).
    with pytest.raises(DataError, match=r"read relative to base_dir='sub': write them so"):
        load_images(tmp_path / "sub" / "photos.csv", base_dir="sub", image_size=(16, 16), value_range=(0, 1))
