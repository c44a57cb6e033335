"""What users actually bring: their folder layouts, files that are no table, resumed searches that differ, flags that
do not fit. Each case is classified as the corpus of `test_faults_corpus.py` classifies its own (a clear error naming
the culprit and the remedy, a counted skip, or accepted), and none may give a silent wrong result.

The cases whose correct behaviour is a result rather than an error (a layout that is read right, a text file that is
predicted as a text) are plain tests below the table.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfxfer
from helpers import class_folders, noise_folders, save_tiny_text_model, tiny_cnn, write_image
from test_faults_corpus import (ACCEPTED, BARE, CLEAR, SILENT, SKIP, Case, NotAsExpected, Workspace, classify,
                                cli_outcomes)
from tfxfer.data import DataError

UNIT = dict(image_size=(8, 8), value_range=(0.0, 1.0))


def _layout(ws, folders, counts=None):
    """`data/<folder>/<class>/` images for each folder name (`""` for class folders at the top)."""
    root = ws.tmp / "data"
    for folder in folders:
        class_folders(root / folder if folder else root, counts or {"cat": 3, "dog": 3})
    return root


def _load(root, **options):
    return tfxfer.load_images(root, **{**UNIT, "validation_split": 0.34, **options})


def _train_beside_classes(ws):
    root = _layout(ws, ["train", "val"])
    class_folders(root / "bird", {"x": 1})
    return _load(root)


def _splits_without_train(ws):
    return _load(_layout(ws, ["val", "test"]))


def _class_named_like_a_split(ws):
    root = _layout(ws, ["train"])
    class_folders(root / "train", {"val": 2})
    return _load(root)


def _two_validation_folders(ws):
    return _load(_layout(ws, ["train", "Val", "validation"]))


def _unlabelled_beside_splits(ws):
    root = _layout(ws, ["train", "val"])
    write_image(root / "unlabeled" / "x.png")
    return _load(root)


def _link_loop(ws):
    root = _layout(ws, [""])
    os.symlink(root / "cat", root / "cat" / "again")
    return _load(root, validation_split=0)


def _jpeg_as_table(ws):
    return _load(write_image(ws.tmp / "photo.jpg"))


def _workbook_as_table(ws):
    (ws.tmp / "labels.xlsx").write_bytes(b"PK\x03\x04" + bytes(200))
    return _load(ws.tmp / "labels.xlsx")


def _empty_frame(ws):
    return tfxfer.load_text(pd.DataFrame({"text": [], "label": []}))


def _duplicate_index(ws):
    frame = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "y", None, "y"]}, index=[0, 1, 1, 2])
    return tfxfer.load_text(frame, validation_split=0)


def _text_extractor_on_images(ws):
    text = type("Glove", (), {"input_kind": "text", "source": "glove"})()
    return tfxfer.load_text(_layout(ws, [""]), extractor=text)


def _images_for_text_folder(ws):
    for name in ("pos", "neg"):
        (ws.tmp / "reviews" / name).mkdir(parents=True)
        (ws.tmp / "reviews" / name / "1.txt").write_text("fine")
    return tfxfer.load_images(ws.tmp / "reviews", **UNIT)


def _texts_table_for_images(ws):
    (ws.tmp / "sms.csv").write_text("text,label\nwin a prize,spam\nsee you,ham\n")
    return tfxfer.load_images(ws.tmp / "sms.csv", **UNIT)


def _search(ws, data, extractor, trials=1):
    return tfxfer.TransferSearch(extractor, max_trials=trials, epochs=1, patience=None, directory=ws.tmp / "runs",
                                 project_name="p", space=tfxfer.SearchSpace(frozen_blocks=[4]), verbose=0)


def _resume_with_other_data(ws):
    first = noise_folders(ws.tmp / "first", per_class=4)
    second = noise_folders(ws.tmp / "second", per_class=5)
    _search(ws, _load(first, image_size=(16, 16)), tiny_cnn()).search(_load(first, image_size=(16, 16)))
    return _search(ws, None, tiny_cnn()).search(_load(second, image_size=(16, 16)))


def _resume_with_other_extractor(ws):
    data = _load(noise_folders(ws.tmp / "images", per_class=4), image_size=(16, 16))
    _search(ws, data, tiny_cnn()).search(data)
    return _search(ws, data, tiny_cnn(seed=7)).search(data)


def _freeze_with_feature_extraction(ws):
    images = np.zeros((4, 16, 16, 3), np.float32)
    return tfxfer.TransferModel(ws.hub, regime="feature-extraction", freeze_blocks=2, verbose=0).fit(
        (images, np.array([0, 1, 0, 1])), task=tfxfer.Task("multiclass", ["a", "b"]))


def _warmup_with_feature_extraction(ws):
    images = np.zeros((4, 16, 16, 3), np.float32)
    return tfxfer.TransferModel(ws.hub, regime="feature-extraction", warmup_epochs=3, verbose=0).fit(
        (images, np.array([0, 1, 0, 1])), task=tfxfer.Task("multiclass", ["a", "b"]))


def _linked_class_folder(ws):
    root = _layout(ws, [""])
    os.symlink(root / "cat", root / "bird")
    return _load(root, validation_split=0)


def _linked_validation_folder(ws):
    root = _layout(ws, ["train"])
    os.symlink(root / "train", root / "val")
    return _load(root)


def _data_set_inside_a_class_folder(ws):
    root = ws.tmp / "wrapper"
    root.mkdir()
    _layout(ws, ["train", "val"]).rename(root / "images")
    class_folders(root / "masks", {"x": 2})
    return _load(root)


def _column_names_short(ws):
    (ws.tmp / "sms.tsv").write_text("ham\ten\thi there\nspam\tfr\tgagne\n")
    return tfxfer.load_text(ws.tmp / "sms.tsv", column_names=["label", "text"])


def _cp1252_csv(ws):
    (ws.tmp / "reviews.csv").write_bytes("text,label\n\u201cgreat\u201d film,pos\n".encode("cp1252"))
    return tfxfer.load_text(ws.tmp / "reviews.csv")


def _semicolon_csv(ws):
    (ws.tmp / "excel.csv").write_text("text;label\ngreat;pos\nawful;neg\n")
    return tfxfer.load_text(ws.tmp / "excel.csv")


def _export_as_extractor(ws):
    return tfxfer.load_extractor(sorted(ws.exported.iterdir())[0])


def _preprocessor_for_images(ws):
    return tfxfer.load_extractor(ws.hub, preprocessor=ws.hub)


def _output_key_for_one_output(ws):
    return tfxfer.load_extractor(ws.hub, output_key="pooled_output")


def _options_for_another_kind_of_extractor(ws):
    return tfxfer.load_extractor("MobileNetV2", weights=None, preprocessor=ws.hub, output_key="pooled_output")


def _text_option_for_a_keras_application(ws):
    return tfxfer.load_extractor("MobileNetV2", sequence_length=64)


def _kerashub_pooling_for_a_keras_application(ws):
    return tfxfer.load_extractor("MobileNetV2", weights=None, pooling="token")


def _granularity_for_a_hub_model(ws):
    return tfxfer.load_extractor(ws.hub, granularity="cut")


def _overwrite_a_folder_of_photos(ws):
    photos = _layout(ws, [""])
    search = tfxfer.TransferSearch(ws.hub, directory=ws.tmp, project_name="data", overwrite=True, verbose=0)
    return search.search(_load(photos, image_size=(16, 16)))


def _cli_empty_export_name(ws):
    return ["train", ws.noise, "--extractor", ws.hub, "--export", ""]


def _cli_weights_on_a_saved_model(ws):
    return ["train", ws.noise, "--extractor", ws.hub, "--weights", "w.h5"]


def _cli_freeze_with_feature_extraction(ws):
    return ["train", ws.noise, "--extractor", ws.hub, "--freeze", "2"]


def _cli_jpeg_as_data(ws):
    return ["train", write_image(ws.tmp / "photo.jpg"), "--extractor", ws.hub]


def _cli_bad_row_in_cli_words(ws):
    write_image(ws.tmp / "a.png")
    (ws.tmp / "photos.csv").write_text("path,label\na.png,x\ngone.png,y\n")
    return ["train", ws.tmp / "photos.csv", "--extractor", ws.hub]


def _cli_bad_fraction(ws):
    return ["train", ws.noise, "--extractor", ws.hub, "--validation-split", "1.5"]


def _cli_overwrite_the_working_folder(ws):
    return ["tune", ws.noise, "--extractor", ws.hub, "--dir", ".", "--overwrite"]


def _search_in_a_project_folder(ws):
    # With --dir "$PWD", a search wrote into the user's folder, and --overwrite then deleted it whole (a tester's)
    photos = _layout(ws, [""])
    (ws.tmp / "notes.txt").write_text("mine")
    search = tfxfer.TransferSearch(ws.hub, directory=ws.tmp.parent, project_name=ws.tmp.name, verbose=0)
    return search.search(_load(photos, image_size=(16, 16)))


def _cli_search_inside_the_data(ws):
    return ["tune", ws.noise, "--extractor", ws.hub, "--dir", ws.noise / "runs"]


def _cli_export_onto_a_file(ws):
    (ws.tmp / "nm").write_text("mine")  # told only after the training, as '[Errno 20] Not a directory' (a tester's)
    return ["train", ws.noise, "--extractor", ws.hub, "--export", "nm", "--root", ws.tmp]


def _cli_flag_for_tables_on_a_folder(ws):
    return ["train", ws.noise, "--extractor", ws.hub, "--text-column", "review"]


def _cli_negative_l2(ws):
    return ["train", ws.noise, "--extractor", ws.hub, "--l2", "-1"]


def _cli_report_onto_a_file(ws):
    (ws.tmp / "notes.py").write_text("x = 1\n")
    return ["train", ws.noise, "--extractor", ws.hub, "--report", ws.tmp / "notes.py"]


def _cli_missing_text_file(ws):
    extractor = tfxfer.load_extractor(save_tiny_text_model(ws.tmp / "text_model"))
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(extractor(inputs)))
    path = tfxfer.export(model, "text", ws.tmp / "exports", task_type="multiclass", class_names=["neg", "pos"])
    return ["predict", path, ws.tmp / "notes.txt"]


CASES = [
    # Folder layouts.
    Case("train/ and val/ beside a class folder", "images", _train_beside_classes, CLEAR,
         lambda ws: ["bird/", "not a split", "move each class folder into"], (DataError,)),
    Case("val/ and test/ but no train/", "images", _splits_without_train, CLEAR,
         lambda ws: ["no train/ folder", "rename it"], (DataError,)),
    Case("a class named like a split inside train/", "images", _class_named_like_a_split, CLEAR,
         lambda ws: ["train/val", "named like a split"], (DataError,)),
    Case("Val/ and validation/ both", "images", _two_validation_folders, CLEAR,
         lambda ws: ["Val/", "validation/", "keep one"], (DataError,)),
    Case("unlabeled/ beside train/ and val/", "images", _unlabelled_beside_splits, SKIP, given=12),
    Case("a link inside a class folder back to it", "images", _link_loop, SKIP, given=6),
    # Files that are no table, and empty or odd tables.
    Case("a JPEG passed as the data table", "tables", _jpeg_as_table, CLEAR,
         lambda ws: ["photo.jpg", "a JPEG image, not a CSV/TSV table"], (DataError,)),
    Case("an Excel workbook passed as the table", "tables", _workbook_as_table, CLEAR,
         lambda ws: ["labels.xlsx", "Excel workbook", "CSV UTF-8"], (DataError,)),
    Case("an empty DataFrame", "tables", _empty_frame, CLEAR, lambda ws: ["DataFrame has no rows"], (DataError,)),
    Case("a bad row in a DataFrame with a repeated index", "tables", _duplicate_index, CLEAR,
         lambda ws: ["row at position 2 (index label 1)", "missing label"], (DataError,)),
    # The other kind of data for the extractor.
    Case("a text extractor on a folder of images", "text", _text_extractor_on_images, CLEAR,
         lambda ws: ["holds images", "pass an image extractor"], (DataError,)),
    Case("an image loader on a folder of .txt files", "images", _images_for_text_folder, CLEAR,
         lambda ws: ["holds texts", "pass a text extractor"], (DataError,)),
    Case("an image loader on a table of texts", "images", _texts_table_for_images, CLEAR,
         lambda ws: ["sms.csv has a 'text' column and no 'path' column", "Pass a text extractor"], (DataError,)),
    # Resuming a different search.
    Case("a search resumed with another data set", "search", _resume_with_other_data, CLEAR,
         lambda ws: ["Cannot resume", "other data", "overwrite=True", "another project_name= or directory="]),
    Case("a search resumed with another extractor", "search", _resume_with_other_extractor, CLEAR,
         lambda ws: ["Cannot resume", "other weights of", "overwrite=True"]),
    # Settings a regime would ignore.
    Case("freeze_blocks with deep feature extraction", "training", _freeze_with_feature_extraction, CLEAR,
         lambda ws: ["freeze_blocks=2", "regime='mid-layer'"]),
    Case("warmup_epochs with deep feature extraction", "training", _warmup_with_feature_extraction, CLEAR,
         lambda ws: ["warmup_epochs=3", "leave it out"]),
    # Found by a hostile user test: links and copies, wrapped data sets, files from Excel, a search's folder.
    Case("a class folder linked to another class folder", "images", _linked_class_folder, CLEAR,
         lambda ws: ["one example, two labels", "same file contents as"], (DataError,)),
    Case("val/ a link to train/", "images", _linked_validation_folder, CLEAR,
         lambda ws: ["duplicate across splits", "which is in train; this one is in validation"], (DataError,)),
    Case("a data set of split folders inside a class folder", "images", _data_set_inside_a_class_folder, CLEAR,
         lambda ws: ["wrapper/images holds split folders", "pass"], (DataError,)),
    Case("column_names naming fewer columns than the file has", "tables", _column_names_short, CLEAR,
         lambda ws: ["column_names gives 2 names", "the file has 3 columns"], (DataError,)),
    Case("a CSV saved by Excel in cp1252, read as UTF-8", "tables", _cp1252_csv, CLEAR,
         lambda ws: ["reviews.csv", "encoding='cp1252'"], (DataError,)),
    Case("a semicolon-separated .csv (European Excel)", "tables", _semicolon_csv, CLEAR,
         lambda ws: ["excel.csv", "separated by ';'", "sep=';'"], (DataError,)),
    Case("a tfxfer export loaded as an extractor", "extractor", _export_as_extractor, CLEAR,
         lambda ws: ["is a tfxfer export", "load_exported"]),
    Case("preprocessor= for an image SavedModel", "extractor", _preprocessor_for_images, CLEAR,
         lambda ws: ["preprocessor= is for BERT-style encoders", "leave preprocessor= out"]),
    # Ignored, silently, before (a tester's find).
    Case("output_key= for a SavedModel of one output", "extractor", _output_key_for_one_output, CLEAR,
         lambda ws: ["returns one output, not a dict of them", "leave output_key= out"]),
    Case("preprocessor= and output_key= for a keras.applications name", "extractor",
         _options_for_another_kind_of_extractor, CLEAR,
         lambda ws: ["preprocessor= and output_key= do nothing for 'MobileNetV2'", "leave them out"]),
    # With ImageNet weights it said "Could not get the ImageNet weights of MobileNetV2 (MobileNetV2() got an
    # unexpected keyword argument 'sequence_length')".
    Case("sequence_length= for a keras.applications name", "extractor", _text_option_for_a_keras_application, CLEAR,
         lambda ws: ["MobileNetV2 takes no sequence_length= here: leave it out", "takes alpha"]),
    Case("pooling='token' (KerasHub's) for a keras.applications name", "extractor",
         _kerashub_pooling_for_a_keras_application, CLEAR,
         lambda ws: ["MobileNetV2 pools its output with pooling='avg' or pooling='max'", "got pooling='token'"]),
    Case("granularity= for a TF Hub model", "extractor", _granularity_for_a_hub_model, CLEAR,
         lambda ws: ["granularity= does nothing for", "whose blocks its variable scopes give: leave it out"]),
    Case("overwrite=True on a folder of photos", "search", _overwrite_a_folder_of_photos, CLEAR,
         lambda ws: ["holds files that no search wrote", "overwrite=True would delete them all"]),
    Case("a search started in a folder of photos and notes", "search", _search_in_a_project_folder, CLEAR,
         lambda ws: ["holds files that no search wrote (", "notes.txt", "which overwrite=True deletes whole"]),
    # The command line.
    Case("tfxfer train --export onto a file", "cli", _cli_export_onto_a_file, CLEAR,
         lambda ws: ["--export nm: ", "nm is a file; it must be a folder"], exit_code=2),
    Case("tfxfer tune --dir inside the data folder", "cli", _cli_search_inside_the_data, CLEAR,
         lambda ws: ["--dir", "is inside the data folder", "pass a --dir outside it"], exit_code=2),
    Case("tfxfer tune --dir . --overwrite", "cli", _cli_overwrite_the_working_folder, CLEAR,
         lambda ws: ["--dir", "not a folder of its own"], exit_code=2),
    Case("tfxfer train --text-column on a folder of images", "cli", _cli_flag_for_tables_on_a_folder, CLEAR,
         lambda ws: ["--text-column does nothing", "a folder:", "leave it out"], exit_code=2),
    Case("tfxfer train --l2 -1", "cli", _cli_negative_l2, CLEAR, lambda ws: ["--l2", "expected a number >= 0"],
         exit_code=2),
    Case("tfxfer train --report onto a file", "cli", _cli_report_onto_a_file, CLEAR,
         lambda ws: ["--report", "is a file"], exit_code=2),
    Case("tfxfer train --export '' (an unset shell variable)", "cli", _cli_empty_export_name, CLEAR,
         lambda ws: ["--export", "Export name ''"], exit_code=2),
    Case("tfxfer train --weights with a SavedModel", "cli", _cli_weights_on_a_saved_model, CLEAR,
         lambda ws: ["--weights applies only to keras.applications", "leave --weights out"], exit_code=2),
    Case("tfxfer train --freeze with the default feature extraction", "cli", _cli_freeze_with_feature_extraction,
         CLEAR, lambda ws: ["--freeze does nothing with --regime feature-extraction"], exit_code=2),
    Case("tfxfer train on a JPEG instead of a folder", "cli", _cli_jpeg_as_data, CLEAR,
         lambda ws: ["photo.jpg is a JPEG image, not a CSV/TSV table", "folder"]),
    Case("tfxfer train on a CSV with a missing file: advice in flags", "cli", _cli_bad_row_in_cli_words, CLEAR,
         lambda ws: ["photos.csv, row 3", "gone.png", "--on-bad skip"]),
    Case("tfxfer train --validation-split 1.5", "cli", _cli_bad_fraction, CLEAR,
         lambda ws: ["--validation-split", "expected a fraction"], exit_code=2),
    Case("tfxfer predict, a text model, on a .txt file that does not exist", "cli", _cli_missing_text_file, CLEAR,
         lambda ws: ["notes.txt does not exist", "or --texts to classify"]),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return tmp_path_factory.mktemp("shared")


@pytest.mark.parametrize("case", [pytest.param(case, id=case.kind) for case in CASES if not case.cli])
def test_what_users_bring_gets_a_clear_error_or_a_counted_skip(case, shared, tmp_path):
    outcome = classify(case, Workspace(tmp_path, shared))
    assert outcome.kind not in (BARE, SILENT), f"{case.kind}: {outcome.kind}: {outcome.detail}"
    if outcome.kind != case.expect:
        raise NotAsExpected(f"{case.kind}: expected {case.expect}, got {outcome.kind}: {outcome.detail}")


@pytest.mark.slow
def test_the_command_line_says_it_in_its_flags(shared, tmp_path):
    cases = [case for case in CASES if case.cli]
    outcomes = cli_outcomes(cases, shared, tmp_path)
    assert [(case.kind, outcome.kind) for case, outcome in zip(cases, outcomes)] == [
        (case.kind, CLEAR) for case in cases], [outcome.detail for outcome in outcomes]


def test_copies_of_one_example_are_carved_into_one_split(tmp_path):
    frame = pd.DataFrame({"text": [f"message {i % 10}" for i in range(40)], "label": ["ham", "spam"] * 20})
    data = tfxfer.load_text(frame, validation_split=0.3)
    train, validation = set(data.examples("train")[0]), set(data.examples("validation")[0])
    assert train and validation and not train & validation
    assert sum(data.sizes.values()) == 40 and "copies of one example kept together" in data.origins["validation"]
    # kept, and said (found by a hostile tester: a CSV's repeated rows counted twice without a word)
    assert data.notes == ["30 example(s) repeat an earlier one's text with its label and split (e.g. DataFrame, row "
                          "10, the same as row 0): kept, so each copy weighs once more; remove the copies if that is "
                          "not meant"]


def test_a_resumed_search_finds_its_extractor_however_the_path_is_spelled(tmp_path, monkeypatch, tiny_hub_model):
    monkeypatch.chdir(tiny_hub_model.parent)
    data = _load(noise_folders(tmp_path / "images", per_class=4), image_size=(16, 16))
    options = dict(max_trials=1, epochs=1, patience=None, directory=tmp_path / "runs", project_name="p",
                   space=tfxfer.SearchSpace(frozen_blocks=[4, 2]), verbose=0)
    first = tfxfer.TransferSearch("tiny_hub", **options).search(data)
    again = tfxfer.TransferSearch(f"./{tiny_hub_model.name}/", **{**options, "max_trials": 2,
                                                                  "space": tfxfer.SearchSpace(frozen_blocks=[2, 4])})
    assert len(again.search(data)) == 2 and first.trial_id[0] in set(again.results().trial_id)
    stored = tfxfer.TransferSearch.from_folder(tmp_path / "runs" / "p", verbose=0)
    assert stored.extractor == str(tiny_hub_model) and sorted(stored.space.frozen_blocks) == [2, 4]
    assert stored.best_model(data).frozen_blocks_ in (2, 4)


def test_a_half_copied_newest_version_is_passed_over(tmp_path, tiny_hub_model):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(extractor(inputs)))
    path = tfxfer.export(model, "m", tmp_path, task_type="multiclass", class_names=["a", "b"])
    (path.parent / "2").mkdir()
    (path.parent / "2" / "saved_model.pb").write_bytes((path / "saved_model.pb").read_bytes()[:100])
    with pytest.warns(UserWarning, match=r"version folder\(s\) 2 are not whole exports"):
        assert tfxfer.load_exported(path.parent).version == 1
    with pytest.raises(ValueError, match=r"m/2 is a SavedModel but not a tfxfer export"):
        tfxfer.load_exported(path.parent / "2")


def test_split_folders_in_any_usual_spelling_are_splits(tmp_path):
    root = tmp_path / "data"
    class_folders(root / "Train", {"cat": 3, "dog": 3})
    class_folders(root / "Validation", {"cat": 1, "dog": 1})
    class_folders(root / "testing", {"cat": 1, "dog": 2})
    data = _load(root)
    assert data.task.class_names == ["cat", "dog"]
    assert data.sizes == {"train": 6, "validation": 2, "test": 3}
    assert data.origins["validation"] == "folder Validation/" and data.origins["test"] == "folder testing/"


def test_a_linked_folder_inside_a_class_folder_is_read(tmp_path):
    outside = class_folders(tmp_path / "elsewhere", {"more": 2})
    root = tmp_path / "data"
    class_folders(root, {"cat": 2, "dog": 2})
    os.symlink(outside[0].parent, root / "cat" / "more")
    data = _load(root, validation_split=0)
    assert data.counts["train"] == {"cat": 4, "dog": 2} and not data.skipped


def test_jpegs_with_an_exif_rotation_are_counted(tmp_path):
    from PIL import Image

    root = tmp_path / "data"
    class_folders(root, {"cat": 2, "dog": 2}, suffix=".jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.open(root / "cat" / "cat_000.jpg").save(root / "cat" / "cat_000.jpg", exif=exif.tobytes())
    # the EXIF block after 130 KB of an ICC profile, as cameras write it: it was not found (a hostile tester's)
    jpeg = (root / "dog" / "dog_000.jpg")
    Image.open(jpeg).save(jpeg, exif=exif.tobytes())
    icc = b"\xff\xe2" + (65002).to_bytes(2, "big") + b"ICC_PROFILE\0\1\1" + bytes(65002 - 2 - 14)
    jpeg.write_bytes(jpeg.read_bytes()[:2] + icc + icc + jpeg.read_bytes()[2:])
    data = _load(root, validation_split=0)
    assert len(data.notes) == 1 and "2 JPEG(s) carry an EXIF rotation" in data.notes[0]
    assert "cat_000.jpg" in data.notes[0] and "not applied" in data.summary()


def test_predict_reads_text_files_as_training_does(tmp_path):
    from tfxfer.serving.client import ExportedModel

    folder = tmp_path / "reviews"
    (folder / "pos").mkdir(parents=True)
    (folder / "pos" / "a.txt").write_text("a fine day\n")
    (folder / "pos" / "b.txt").write_text("lovely")
    extractor = tfxfer.load_extractor(save_tiny_text_model(tmp_path / "text_model"))
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(extractor(inputs)))
    exported = ExportedModel(tfxfer.export(model, "text", tmp_path / "exports", task_type="multiclass",
                                           class_names=["neg", "pos"]))
    from_files = exported.predict([folder, folder / "pos" / "a.txt"])
    from_texts = exported.predict(["a fine day\n", "lovely", "a fine day\n"])
    assert from_files["text"].tolist() == from_texts["text"].tolist()
    assert from_files["file"].tolist()[0].endswith("a.txt")
    np.testing.assert_allclose(from_files["score_pos"], from_texts["score_pos"], atol=1e-6)
    assert exported.predict([str(folder / "pos" / "a.txt")], texts=True)["text"][0].endswith("a.txt")
    with pytest.raises(tfxfer.DataError, match="input 2: empty text"):  # it was scored, as if it said something
        exported.predict(["lovely", "  "], texts=True)
    assert exported.predict(["lovely", ""], on_bad="skip")["text"].tolist() == ["lovely"]
    # A file or folder name is never the text itself (a photo's path was scored as a text).
    (folder / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(ValueError, match="photo.png is not a .txt file"):
        exported.predict([str(folder / "photo.png")])
    with pytest.raises(FileNotFoundError, match="missing does not exist"):
        exported.predict(["missing/"])
    # A .txt table, as `train` reads one: with sep= or column_names= it is a table (its flags were ignored, and the
    # whole file scored as one text, labels inside; a hostile tester's find).
    (tmp_path / "more.txt").write_text("a fine day\t1\nlovely\t1\n")
    table = exported.predict(tmp_path / "more.txt", sep="\t", column_names=["text", "label"])
    assert table["text"].tolist() == ["a fine day", "lovely"]
    assert len(exported.predict(tmp_path / "more.txt")) == 1  # without them, one text, as in a folder of texts


def test_a_saved_model_whose_call_takes_no_training_argument_loads_and_trains(tmp_path):
    model = tiny_cnn()

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32)])
    def call(inputs):
        return model(inputs, training=False)

    root = tf.train.Checkpoint()
    root.__call__ = call
    root.variables = [v.value for v in model.variables]
    root.trainable_variables = [v.value for v in model.trainable_variables]
    tf.saved_model.save(root, str(tmp_path / "no_training"))
    extractor = tfxfer.load_extractor(tmp_path / "no_training")
    images = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(extractor(images).numpy(), model(images).numpy(), atol=1e-5)
    fitted = tfxfer.TransferModel(extractor, epochs=1, verbose=0).fit((images, np.array([0, 1, 0, 1])),
                                                                       task=tfxfer.Task("multiclass", ["a", "b"]))
    assert len(fitted.history_["loss"]) == 1


def test_an_empty_newest_version_does_not_block_predict(tmp_path, tiny_hub_model):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(extractor(inputs)))
    path = tfxfer.export(model, "m", tmp_path, task_type="multiclass", class_names=["a", "b"])
    (path.parent / "2").mkdir()
    with pytest.warns(UserWarning, match=r"version folder\(s\) 2 are not whole exports .* so version 1 is used"):
        exported = tfxfer.load_exported(path.parent)
    assert exported.version == 1


def test_the_corpus_of_users_inputs_covers_every_class():
    areas = {case.area for case in CASES}
    assert len(CASES) >= 20 and {"images", "tables", "text", "search", "training", "cli"} <= areas
    assert {ACCEPTED, CLEAR, SKIP} >= {case.expect for case in CASES}


def test_a_saved_model_without_variables_has_no_blocks_and_inspect_says_so(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
    def call(inputs):
        return tf.reduce_mean(inputs, axis=[1, 2])

    root = tf.train.Checkpoint()
    root.__call__ = call
    tf.saved_model.save(root, str(tmp_path / "no_variables"))
    table = tfxfer.load_extractor(tmp_path / "no_variables").describe()
    assert table.empty and list(table.columns)[:3] == ["name", "layers", "variables"]
    result = subprocess.run([sys.executable, "-m", "tfxfer.cli", "inspect", tmp_path / "no_variables"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "no blocks to freeze" in result.stdout and not result.stderr.strip()
