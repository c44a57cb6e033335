"""Shared fixtures: the real assets in ../shared/assets, and tiny extractors that tests build and save."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tfxfer.hub_format import save_hub_format  # noqa: E402

SHARED_ASSETS = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "assets"


@pytest.fixture(scope="session")
def shared_assets():
    """The folder of real pretrained models and data sets; the test is skipped where it is absent (a user's clone)."""
    if not SHARED_ASSETS.is_dir():
        pytest.skip(f"real assets not found at {SHARED_ASSETS}: they exist in the project's CI, not in a user's clone")
    return SHARED_ASSETS


def tiny_cnn(input_shape=(16, 16, 3), seed=0):
    """A small convolutional extractor with BatchNorm and a residual connection, in named stages."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(4, 3, padding="same", name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    y = layers.Conv2D(4, 3, padding="same", name="block_1_conv")(x)
    y = layers.BatchNormalization(name="block_1_bn")(y)
    x = layers.Add(name="block_1_add")([x, y])
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="block_2_conv")(x)
    x = layers.BatchNormalization(name="block_2_bn")(x)
    x = layers.Conv2D(8, 1, name="block_3_conv", kernel_regularizer=keras.regularizers.L2(1e-3))(x)
    x = layers.GlobalAveragePooling2D(name="top_pool")(x)
    return keras.Model(inputs, x, name="tiny_cnn")


@pytest.fixture
def tiny_hub_model(tmp_path):
    """A tiny CNN saved in TF Hub's Reusable SavedModel format; returns its folder."""
    path = tmp_path / "tiny_hub"
    save_hub_format(tiny_cnn(), path)
    return path


@pytest.fixture
def images():
    """A batch of random images in [0, 1] and random labels for 3 classes."""
    rng = np.random.default_rng(0)
    return rng.random((8, 16, 16, 3), dtype=np.float32), rng.integers(0, 3, 8)
