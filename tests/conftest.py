"""Shared fixtures: the real assets in ../shared/assets, and tiny extractors that tests build and save."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under pytest-xdist, each worker's TensorFlow (and the subprocesses its tests start) gets its share of the cores:
# two workers each running thread pools as wide as the machine spin and switch against each other (on the 2-core
# VM, side by side: tests/training with tests/data, and tests/search with the export and CLI tests, ran 8-9% slower
# so; tests/serving with the docstring examples ran the same). Set before TensorFlow is imported; a variable already
# set is kept.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_name, _threads)

import pathlib  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import tiny_cnn  # noqa: E402
from tfxfer.extractors import save_hub_format  # noqa: E402

SHARED_ASSETS = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "assets"


@pytest.fixture(scope="session")
def shared_assets():
    """The folder of real pretrained models and data sets; the test is skipped where it is absent (a user's clone)."""
    if not SHARED_ASSETS.is_dir():
        pytest.skip(f"real assets not found at {SHARED_ASSETS}: they exist in the project's CI, not in a user's clone")
    return SHARED_ASSETS


@pytest.fixture(scope="session")
def _saved_tiny_hub_model(tmp_path_factory):
    """The tiny CNN saved once per test process (a save takes about a second; a copy, milliseconds)."""
    return save_hub_format(tiny_cnn(), tmp_path_factory.mktemp("hub") / "tiny_hub")


@pytest.fixture
def tiny_hub_model(tmp_path, _saved_tiny_hub_model):
    """A tiny CNN saved in TF Hub's Reusable SavedModel format, a copy of its own in the test's folder."""
    return pathlib.Path(shutil.copytree(_saved_tiny_hub_model, tmp_path / "tiny_hub"))


@pytest.fixture
def images():
    """A batch of random images in [0, 1] and random labels for 3 classes."""
    rng = np.random.default_rng(0)
    return rng.random((8, 16, 16, 3), dtype=np.float32), rng.integers(0, 3, 8)

