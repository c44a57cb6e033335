"""LiteRT exports: the .tflite file against the SavedModel, quantized exports, multi-label and regression, versions
that are never overwritten, the error of an op LiteRT lacks, and int8 on a real MobileNet and real photos."""

import shutil

import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from helpers import checksums, noise_folders, save_tiny_text_model, tiny_cnn
from test_export import decoded, head_model, image_files
from tfxfer.extractors import save_hub_format
from tfxfer.serving import LiteRTRunner, load_exported, write_models_config
from tfxfer.serving.formats import is_litert_export

pytestmark = pytest.mark.xdist_group("litert")  # one worker builds the module fixtures once

CLASSES = ["ants", "bees", "wasps"]


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    """Noise images in three classes, their `DataSplits`, and a model fitted on them."""
    folder = tmp_path_factory.mktemp("litert")
    extractor = tfxfer.load_extractor(save_hub_format(tiny_cnn(), folder / "hub"))
    data = tfxfer.load_images(noise_folders(folder / "images", per_class=8), extractor=extractor, batch_size=8,
                              validation_split=0.25, seed=3)
    fitted = tfxfer.TransferModel(extractor, epochs=2, learning_rate=1e-2, patience=None, verbose=0).fit(data)
    return {"folder": folder, "data": data, "fitted": fitted, "files": image_files(folder / "files")}


def test_float_litert_gives_the_savedmodel_scores_and_keeps_labels_and_metadata(noise, tmp_path):
    saved = tfxfer.export(noise["fitted"], "ants", root=tmp_path / "sm", data_summary=noise["data"])
    lite = tfxfer.export(noise["fitted"], "ants", root=tmp_path / "lite", format="tflite", data_summary=noise["data"])
    assert sorted(p.name for p in lite.iterdir()) == ["assets.extra", "labels.txt", "model.tflite"]
    assert (lite / "labels.txt").read_text().split() == CLASSES
    serving_images = tf.saved_model.load(str(saved)).signatures["serving_images"]
    runner = LiteRTRunner(lite / "model.tflite", num_threads=1)
    for shape in [(1, 16, 16, 3), (1, 37, 23, 3)]:  # the extractor's size and another: resized inside
        pixels = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
        expected = serving_images(images=tf.constant(pixels))["scores"].numpy()
        np.testing.assert_allclose(runner.run(pixels), expected, atol=1e-4)
    files = [str(path) for path in noise["files"]]
    from_lite, from_saved = load_exported(lite / "model.tflite").predict(files), load_exported(saved).predict(files)
    assert list(from_lite.columns) == list(from_saved.columns) and list(from_lite["class"]) == list(from_saved["class"])
    np.testing.assert_allclose(from_lite["score_bees"], from_saved["score_bees"], atol=1e-4)
    metadata = load_exported(lite).metadata
    litert = metadata["litert"]
    assert metadata["class_names"] == CLASSES and metadata["export_format"] == "litert"
    assert litert["size_bytes"] == (lite / "model.tflite").stat().st_size and litert["quantize"] == "none"
    assert litert["verification"]["source"] == "validation split" and litert["verification"]["examples"] == 6
    assert litert["verification"]["max_score_difference"] < 1e-4 and litert["verification"]["top1_agreement"] == 1.0
    assert litert["input"]["shape"] == [1, -1, -1, 3] and litert["output"]["name"] == "scores"


def test_int8_with_integer_input_and_output_is_calibrated_and_dequantized(noise, tmp_path):
    path = tfxfer.export(noise["fitted"], "ants", root=tmp_path, format="litert", quantize="int8",
                         input_type="uint8", output_type="uint8", calibration_size=10, data_summary=noise["data"])
    litert = load_exported(path).metadata["litert"]
    assert litert["calibration"] == {"split": "train", "examples": 10, "seed": 0}
    assert litert["input"]["dtype"] == "uint8" and litert["output"]["dtype"] == "uint8"
    assert litert["output"]["quantization"]["scale"] > 0
    assert litert["size_bytes"] < litert["converter_size_bytes"]  # repacked, and kept: same scores bit for bit
    assert litert["verification"]["max_score_difference"] < 0.05
    table = load_exported(path).predict([str(p) for p in noise["files"]])
    assert table["score"].between(0, 1).all() and set(table["class"]) <= set(CLASSES)


def test_multilabel_and_regression_exports_run(tmp_path):
    extractor = tfxfer.load_extractor(tiny_cnn(seed=1))
    files = [str(path) for path in image_files(tmp_path / "files")]
    multilabel = head_model(extractor, 3, "sigmoid")
    multilabel.layers[-1].bias.assign([4.0, -4.0, 0.0])  # one label always above the threshold, one never
    path = tfxfer.export(multilabel, "labels", root=tmp_path, format="litert", quantize="dynamic",
                         task_type="multilabel", class_names=CLASSES, verification_size=2)
    table = load_exported(path).predict(files)
    assert all(labels.startswith("ants") and "bees" not in labels for labels in table["labels"])
    regression = head_model(extractor, 2, None)
    path = tfxfer.export(regression, "sizes", root=tmp_path, format="litert", quantize="float16",
                         task_type="regression", class_names=["length", "weight"], verification_size=2)
    exported = load_exported(path)
    table = exported.predict(files)
    expected = regression(decoded(files, extractor), training=False).numpy()
    assert list(table.columns) == ["file", "length", "weight"]
    np.testing.assert_allclose(table[["length", "weight"]].to_numpy(), expected, atol=1e-2)  # float16 weights
    assert exported.metadata["litert"]["verification"]["top1_agreement"] is None


def test_versions_are_never_overwritten_and_formats_never_mixed(noise, tmp_path):
    first = tfxfer.export(noise["fitted"], "ants", root=tmp_path, format="litert")
    before = checksums(first)
    second = tfxfer.export(noise["fitted"], "ants", root=tmp_path, format="litert", quantize="dynamic")
    assert (first.name, second.name) == ("1", "2") and checksums(first) == before
    with pytest.raises(ValueError, match="holds litert exports .versions 1, 2.*another name"):
        tfxfer.export(noise["fitted"], "ants", root=tmp_path)
    tfxfer.export(noise["fitted"], "served", root=tmp_path)
    with pytest.raises(ValueError, match="holds savedmodel exports"):
        tfxfer.export(noise["fitted"], "served", root=tmp_path, format="litert")
    assert '"served"' in write_models_config(tmp_path).read_text() and '"ants"' not in (
        tmp_path / "models.config").read_text()
    assert sorted(p.name for p in (tmp_path / "ants").iterdir()) == ["1", "2"]


def test_an_op_litert_lacks_is_named_with_the_option(tmp_path):
    text = tfxfer.load_extractor(save_tiny_text_model(tmp_path / "tiny_text"))
    model = head_model(text, 3, "softmax")
    with pytest.raises(ValueError, match=r"cannot express .*tf\.StringSplitV2.*select_tf_ops=True"):
        tfxfer.export(model, "texts", root=tmp_path, format="litert", task_type="multiclass", class_names=CLASSES)
    assert not (tmp_path / "texts").exists()
    path = tfxfer.export(model, "texts", root=tmp_path, format="litert", task_type="multiclass",
                         class_names=CLASSES, select_tf_ops=True)
    exported = load_exported(path)
    assert exported.metadata["litert"]["select_tf_ops"] and "Flex" in exported.metadata["litert"]["verification"][
        "skipped"]
    with pytest.raises(RuntimeError, match="select TF ops .*FlexString.*Flex delegate"):
        exported.predict(["bees make honey"])


@pytest.mark.parametrize("options, message", [
    (dict(format="onnx"), "format must be"),
    (dict(format="litert", quantize="int4"), "quantize must be one of"),
    (dict(format="litert", output_type="uint8"), "output_type='uint8' is for full-integer"),
    (dict(format="litert", quantize="int8"), "calibrates on training examples: pass calibration_data="),
    (dict(quantize="int8"), "quantize applies to LiteRT exports; pass format='litert' with it"),
    (dict(format="litert", models_config=True), "models_config=True lists SavedModels"),
])
def test_bad_litert_arguments_are_named(noise, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        tfxfer.export(noise["fitted"], "bad", root=tmp_path, **options)
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_int8_mobilenet_agrees_with_the_float_model_on_the_hymenoptera_validation_photos(shared_assets, tmp_path):
    extractor = tfxfer.load_extractor(shared_assets / "models/hub/mobilenet_v2_100_224_feature_vector")
    data = tfxfer.load_images(shared_assets / "data/hymenoptera/hymenoptera_data", extractor=extractor,
                              batch_size=32, seed=0)
    fitted = tfxfer.TransferModel(extractor, epochs=10, patience=None, seed=0, verbose=0).fit(data)
    path = tfxfer.export(fitted, "ants_bees", root=tmp_path, format="litert", quantize="int8", data_summary=data,
                         calibration_size=48, verification_size=data.sizes["validation"])
    litert = load_exported(path).metadata["litert"]
    check = litert["verification"]
    assert check["examples"] == data.sizes["validation"] == 153 and check["source"] == "validation split"
    assert check["top1_agreement"] >= 0.98, check
    # The converter's int64 zero points, one per channel of every kernel and bias, are stored once per length.
    assert litert["converter_size_bytes"] - litert["size_bytes"] > 200_000, litert


def test_converting_in_two_threads_gives_stderr_back():
    """File descriptor 2 is the process's: two conversions at once left it on one's deleted capture file, and every
    later message of the process was lost (a reviewer's find)."""
    import os
    import threading
    import time

    from tfxfer.serving.litert import _held_stderr

    before = os.fstat(2)

    def convert():
        with _held_stderr():
            time.sleep(0.2)

    threads = [threading.Thread(target=convert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_paths_a_user_gives_load_the_export_they_name_or_say_why_not(noise, tmp_path):
    """A hostile tester's finds: another .tflite file in a version folder ran that folder's model.tflite, silently;
    a SavedModel export named `ants.tflite` was taken for a LiteRT file; a LiteRT name whose newest version was
    half copied was "not an export"; metadata that is JSON but no object failed in Python's words."""
    lite = tfxfer.export(noise["fitted"], "ants", root=tmp_path / "lite", format="litert")
    picture = [str(noise["files"][0])]
    shutil.copy(lite / "model.tflite", lite / "copy.tflite")
    with pytest.raises(ValueError, match=r"copy.tflite is not the model.tflite of a tfxfer export"):
        load_exported(lite / "copy.tflite")
    (tmp_path / "phone.tflite").symlink_to(lite / "model.tflite")  # a link to the file runs it, in its folder
    assert load_exported(tmp_path / "phone.tflite").predict(picture)["class"].tolist() == \
        load_exported(lite).predict(picture)["class"].tolist()
    (lite.parent / "2").mkdir()  # a newer version, half copied: the whole one is loaded, with a warning
    shutil.copy(lite / "labels.txt", lite.parent / "2")
    with pytest.warns(UserWarning, match=r"version folder\(s\) 2 are not whole exports"):
        assert load_exported(lite.parent).version == 1
    assert is_litert_export(lite.parent)
    saved = tfxfer.export(noise["fitted"], "ants.tflite", root=tmp_path / "sm")  # a SavedModel, named so
    assert not is_litert_export(saved.parent) and type(load_exported(saved.parent)).__name__ == "ExportedModel"
    assert not is_litert_export(tmp_path / "missing.tflite")
    with pytest.raises(FileNotFoundError, match=r"missing.tflite does not exist"):  # "is not an export: it holds..."
        load_exported(tmp_path / "missing.tflite")
    for damage in ("[1, 2]", '"image"', "{}"):
        (lite / "assets.extra" / "tfxfer.json").write_text(damage)
        with pytest.raises(ValueError, match=r"tfxfer.json is damaged \((TypeError|AttributeError|KeyError)"):
            load_exported(lite)
