"""KerasExtractor: blocks at true cuts, freezing with BatchNorm in inference mode, applications by name."""

import keras
import numpy as np
import pytest

import tfxfer
from helpers import tiny_cnn
from helpers import assert_freezing_held, step_changes
from tfxfer.extractors import split_blocks


def test_stage_blocks_are_named_and_never_split_a_residual():
    extractor = tfxfer.load_extractor(tiny_cnn())
    assert list(extractor.describe()["name"]) == ["stem_conv", "block_1", "block_2", "block_3"]
    by_cut = split_blocks(tiny_cnn(), granularity="cut")
    holder = next(b for b in by_cut if any(layer.name == "block_1_conv" for layer in b.layers))
    assert "block_1_add" in [layer.name for layer in holder.layers]
    assert len(by_cut) > extractor.n_blocks


def test_block_pattern_overrides_grouping():
    extractor = tfxfer.load_extractor(tiny_cnn(), block_pattern=r"^(stem|block_[12])")
    assert list(extractor.describe()["name"]) == ["stem_conv", "block_1", "block_2"]
    # cache_sequences=False asks for nothing, and was refused as cache_sequences=True is (a tester's find)
    assert tfxfer.load_extractor(tiny_cnn(), cache_sequences=False).n_blocks == 4
    with pytest.raises(ValueError, match="cache_sequences= is for TF Hub BERT-style encoders"):
        tfxfer.load_extractor(tiny_cnn(), cache_sequences=True)


def test_output_equals_plain_model(images):
    model = tiny_cnn()
    extractor = tfxfer.load_extractor(model)
    np.testing.assert_allclose(extractor(images[0]).numpy(), model(images[0], training=False).numpy(), atol=1e-6)


@pytest.mark.parametrize("k", [0, 1, 3, 4])
def test_one_step_moves_exactly_the_unfrozen_blocks(images, k):
    extractor = tfxfer.load_extractor(tiny_cnn())
    report = step_changes(extractor, *images, freeze=k)
    learnable = {w.path for block in extractor.blocks for w in block.learnable}
    assert_freezing_held(extractor, report, learnable, k)


def test_freeze_out_of_range_names_the_limit():
    extractor = tfxfer.load_extractor(tiny_cnn())
    for bad in (5, -1, 1.5, "some"):
        with pytest.raises(ValueError, match="from 0 to 4"):
            extractor.freeze(bad)


@pytest.mark.parametrize("name, n_blocks, first, last", [
    ("MobileNetV2", 19, "Conv1", "Conv_1"),
    ("ResNet50", 5, "conv1", "conv5"),
    ("EfficientNetB0", 9, "stem_conv", "top_conv"),
])
def test_applications_split_into_their_stages(name, n_blocks, first, last):
    extractor = tfxfer.load_extractor(name, weights=None)
    names = list(extractor.describe()["name"])
    assert len(names) == n_blocks and names[0] == first and names[-1] == last
    assert extractor.value_range == (0.0, 255.0) and extractor.image_size == (224, 224)


def test_application_applies_its_own_preprocessing():
    extractor = tfxfer.load_extractor("MobileNetV2", weights=None, image_size=(96, 96))
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    expected = extractor.model(keras.applications.mobilenet_v2.preprocess_input(pixels.copy()), training=False)
    np.testing.assert_allclose(extractor(pixels).numpy(), expected.numpy(), atol=1e-5)


def test_unknown_application_name_is_refused_with_suggestions():
    with pytest.raises(ValueError, match="'MobileNetV9'.*MobileNetV2"):
        tfxfer.load_extractor("MobileNetV9")


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.weights.h5"):
        tfxfer.load_extractor("MobileNetV2", weights=str(tmp_path / "nothere.weights.h5"))


def test_imagenet_weights_offline_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    try:
        tfxfer.load_extractor("MobileNetV2", weights="imagenet", image_size=(96, 96))
    except OSError as error:
        assert "MobileNetV2" in str(error) and "weights=" in str(error)
    else:
        pytest.skip("the ImageNet weights downloaded: this machine has network access")


def test_keras_file_round_trip(tmp_path, images):
    extractor = tfxfer.load_extractor(tiny_cnn()).freeze(2)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(extractor(inputs)))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(images[0], verbose=0), model.predict(images[0], verbose=0), atol=1e-6)
