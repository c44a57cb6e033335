"""TF Hub SavedModels cut at their block boundaries: prefix then suffix is the whole model, gradients stay in the
suffix, training on a cut is training end to end, uncuttable models say why, exports are whole."""

import json
import logging
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from helpers import noise_folders
from tfxfer.data import decode_image
from tfxfer.extractors import save_hub_format

HUB = "models/hub"


def hymenoptera(shared_assets, extractor, count=2):
    """A few real photos, decoded as training decodes them."""
    folder = shared_assets / "data/hymenoptera/hymenoptera_data/val"
    files = sorted((folder / "ants").glob("*.jpg"))[:1] + sorted((folder / "bees").glob("*.jpg"))[: count - 1]
    return tf.stack([decode_image(tf.io.read_file(str(f)), extractor.image_size, extractor.value_range)
                     for f in files])


def assert_cuts_join_to_the_whole(extractor, inputs):
    whole = extractor(inputs, training=False).numpy()
    activations = extractor.cut_outputs(extractor.cache_cuts)(inputs)
    for k, cached in zip(extractor.cache_cuts, activations):
        np.testing.assert_allclose(extractor.suffix(k)(cached).numpy(), whole, atol=1e-5, err_msg=f"cut {k}")
    np.testing.assert_allclose(extractor.prefix(extractor.cache_cuts[0])(inputs), activations[0], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("folder, n_cuts", [("mobilenet_v2_100_224_feature_vector", 19),
                                            ("mobilenet_v1_025_224_feature_vector", 13)])
def test_every_cut_of_the_image_assets_joins_to_the_whole(shared_assets, folder, n_cuts):
    extractor = tfxfer.load_extractor(shared_assets / HUB / folder, image_size=(96, 96))
    assert extractor.cache_cuts == list(range(1, n_cuts + 1)) == list(range(1, extractor.n_blocks + 1))
    table = extractor.describe()
    assert table["cut"].all() and table.attrs["cuts"].startswith(f"Cut (activations cached) after {table.name[0]}")
    assert_cuts_join_to_the_whole(extractor, hymenoptera(shared_assets, extractor))


@pytest.mark.slow
def test_minilm_cuts_between_layers_only_when_asked(shared_assets):
    encoder, preprocess = (shared_assets / HUB / f"all_minilm_l6_v2_{part}" for part in ("encoder", "preprocess"))
    default = tfxfer.load_extractor(encoder, preprocessor=preprocess)
    assert default.cache_cuts == [7] and "cache_sequences=True" in default.describe().attrs["cuts"]
    with pytest.raises(ValueError, match="197 KB"):
        default.prefix(3)
    extractor = tfxfer.load_extractor(encoder, preprocessor=preprocess, cache_sequences=True)
    assert [b.name for b in extractor.blocks][1:3] == ["encoder/layer_0", "encoder/layer_1"]
    assert extractor.cache_cuts == list(range(1, 8))
    texts = tf.constant(["Ants march in a line to their nest.", "Free entry! Text WIN to 80086 now"])
    sequence = extractor.prefix(3)(texts)
    assert sequence.shape == (2, 128, 385)  # the sequence, and the mask as its last channel
    np.testing.assert_array_equal(sequence[..., -1] > 0, sequence[..., :-1].numpy().any(-1) & (sequence[..., -1] > 0))
    assert_cuts_join_to_the_whole(extractor, texts)
    # the probe's vector at a cut is the mean over the tokens the mask marks, without the mask channel
    assert extractor.packed_inputs(3) == (384, ["input_mask"]) and extractor.packed_inputs(7) == (None, [])
    pooled = extractor.pooled_cut_outputs([3], tf.TensorSpec([None], tf.string))(texts)[0].numpy()
    mask = sequence[..., -1:].numpy()
    np.testing.assert_allclose(pooled, (sequence[..., :-1].numpy() * mask).sum(1) / mask.sum(1), atol=1e-5)


def test_gradients_reach_the_suffix_and_not_the_prefix(tiny_hub_model, images):
    extractor = tfxfer.load_extractor(tiny_hub_model).freeze(2)
    suffix = extractor.suffix(2)
    after = {id(w) for block in extractor.blocks[2:] for w in block.learnable}
    assert {id(w) for w in suffix.trainable_weights} == after
    everything = [w for block in extractor.blocks for w in block.learnable]
    cached = extractor.prefix(2)(images[0])
    with tf.GradientTape() as tape:  # watching only the variables it sees read, as Keras' train step does
        loss = tf.reduce_sum(suffix(cached) ** 2)
    gradients = tape.gradient(loss, [w.value for w in everything])
    for weight, gradient in zip(everything, gradients):
        if id(weight) in after:
            assert gradient is not None and np.abs(gradient.numpy()).sum() > 0, weight.path
        else:
            assert gradient is None, weight.path


@pytest.fixture
def data_folder(tmp_path):
    return noise_folders(tmp_path / "images")


def fit(extractor, folder, cache, **options):
    data = tfxfer.load_images(folder, extractor=extractor, batch_size=8, validation_split=0.25, seed=3)
    model = tfxfer.TransferModel(extractor, regime="mid-layer", freeze_blocks=2, epochs=2, patience=None, seed=7,
                                 cache=cache, verbose=0, **options).fit(data)
    return model, data


@pytest.mark.slow
def test_training_on_a_cut_equals_training_end_to_end_and_exports_whole(tiny_hub_model, data_folder, tmp_path):
    runs = [fit(tfxfer.load_extractor(tiny_hub_model), data_folder, cache) for cache in (False, True)]
    assert [model.cached_phases_ for model, _ in runs] == [[False], [True]]
    (whole, data), (cut, _) = runs
    images = np.stack([x.numpy() for x, _ in data.unbatched("validation")])
    np.testing.assert_allclose(whole.predict(images), cut.predict(images), atol=1e-4)
    moved = [w.numpy() for w in whole.extractor_.blocks[3].learnable]
    np.testing.assert_allclose(moved[0], cut.extractor_.blocks[3].learnable[0].numpy(), atol=1e-4)
    # The export of the model trained on the cut is one SavedModel, prefix and suffix joined.
    path = tfxfer.export(cut, "cut", tmp_path / "saved_models")
    np.save(tmp_path / "pixels.npy", images * 255.0)  # serving_images takes [0, 255] and scales as training did
    result = subprocess.run([sys.executable, "-c", CLIENT, str(path), str(tmp_path / "pixels.npy")], text=True,
                            capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    served = np.asarray(json.loads(result.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(served, cut.predict(images), atol=1e-5)


CLIENT = textwrap.dedent("""
    import json, sys
    sys.modules["tfxfer"] = sys.modules["tensorflow_hub"] = None
    import numpy as np, tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    images = tf.constant(np.load(sys.argv[2]))
    print(json.dumps(model.signatures["serving_images"](images=images)["scores"].numpy().tolist()))
""")


def tiny_uncuttable(path):
    """Three blocks that each read the input: no single tensor lies between them."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    branches = [keras.layers.Conv2D(4, 3, padding="same", name=f"block_{i}_conv")(inputs) for i in (1, 2, 3)]
    x = keras.layers.Add(name="block_3_add")(branches)
    return save_hub_format(keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="top")(x)), path)


def test_a_model_that_cannot_be_cut_says_why_and_still_trains(tmp_path, data_folder, caplog):
    extractor = tfxfer.load_extractor(tiny_uncuttable(tmp_path / "uncuttable"))
    assert extractor.cache_cuts == [3]
    reason = extractor.describe().attrs["cuts"]
    assert reason.startswith("Cached only at its output: no block boundary is a cut") and not any(
        extractor.describe()["cut"][:2])
    with pytest.raises(ValueError, match="cannot be cut after 1 blocks; it can after \\[3\\]"):
        extractor.suffix(1)
    with caplog.at_level(logging.INFO, logger="tfxfer"):
        model, _ = fit(extractor, data_folder, True, learning_rate=1e-2)
    assert model.cached_phases_ == [False] and "can only be cached after blocks [3]" in caplog.text
    assert model.history_["loss"][-1] < model.history_["loss"][0]

