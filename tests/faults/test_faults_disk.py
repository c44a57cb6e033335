"""Disk and memory pressure on real file systems: a full disk (a 1 MiB tmpfs), a read-only one (a read-only bind
mount), and a data set far larger than the memory the caches may use.

Mounting needs root; where it is refused, those tests skip and say so.
"""

import contextlib
import errno
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfxfer
from helpers import tiny_cnn
from helpers import TESTS, checksums, noise_folders
from tfxfer.data import DataError
from tfxfer.serving import versions

CLASSES = ["ants", "bees", "wasps"]


@contextlib.contextmanager
def mounted(where, *arguments):
    """Mounts at `where` for the block (`mount ARGUMENTS where`), or skips the test when mounting is refused."""
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", *arguments, str(where)], capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount a test file system here ({result.stderr.strip()}); these tests need root")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@contextlib.contextmanager
def small_disk(where, size="1m"):
    """A tmpfs of `size` at `where`: a disk that fills up."""
    with mounted(where, "-t", "tmpfs", "-o", f"size={size}", "tmpfs") as folder:
        yield folder


@contextlib.contextmanager
def read_only_view(source, where):
    """`source` seen read-only at `where` (a bind mount remounted read-only; root's permissions cannot bypass it)."""
    with mounted(where, "--bind", str(source)):
        result = subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"cannot remount read-only ({result.stderr.strip()})")
        yield where


def classifier(extractor, hidden=0):
    """The extractor under a 3-class head; `hidden` units of a dense layer in between make the export larger."""
    inputs = keras.Input((*extractor.image_size, 3))
    features = extractor(inputs)
    if hidden:
        features = keras.layers.Dense(hidden)(features)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(features))


@pytest.fixture(scope="module")
def extractor():
    return tfxfer.load_extractor(tiny_cnn())


def test_export_to_a_full_disk_fails_clearly_and_keeps_earlier_versions(extractor, tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        first = tfxfer.export(classifier(extractor), "noise", disk, task_type="multiclass", class_names=CLASSES)
        before = checksums(first)
        # 8 x 40000 float32 weights: 1.3 MB, more than the disk has left.
        with pytest.raises(OSError, match=rf"Could not write an export in {disk / 'noise'} \(.*No space left on "
                                          r"device\); free space there") as error:
            tfxfer.export(classifier(extractor, hidden=40000), "noise", disk, task_type="multiclass",
                          class_names=CLASSES)
        assert error.value.errno == errno.ENOSPC
        assert versions(disk / "noise") == [1] and checksums(first) == before
        assert sorted(os.listdir(disk / "noise")) == ["1"], "the failed export left files behind"
        again = tfxfer.export(classifier(extractor), "noise", disk, task_type="multiclass", class_names=CLASSES)
        assert again.name == "2" and checksums(first) == before


def test_export_to_a_read_only_target_fails_clearly_and_keeps_earlier_versions(extractor, tmp_path):
    first = tfxfer.export(classifier(extractor), "noise", tmp_path / "models", task_type="multiclass",
                          class_names=CLASSES)
    before = checksums(first)
    with read_only_view(tmp_path / "models", tmp_path / "view") as view:
        for name in ("noise", "new_model"):  # a model folder that exists, and one export would have to create
            with pytest.raises(OSError, match=rf"Could not write an export in {view / name} \(Read-only file "
                                              r"system\)") as error:
                tfxfer.export(classifier(extractor), name, view, task_type="multiclass", class_names=CLASSES)
            assert error.value.errno == errno.EROFS
    assert sorted(os.listdir(tmp_path / "models")) == ["noise"]
    assert sorted(os.listdir(tmp_path / "models" / "noise")) == ["1"] and checksums(first) == before


def test_a_decoded_image_cache_that_does_not_fit_is_refused_before_training(extractor, tmp_path):
    images = noise_folders(tmp_path / "images", per_class=10)
    with small_disk(tmp_path / "disk", size="64k") as disk:
        # 30 images decoded to 16x16x3 float32: 92 KB, more than the disk holds.
        data = tfxfer.load_images(images, extractor=extractor, batch_size=8, validation_split=0.2,
                                  cache=disk / "decoded")
        with pytest.raises(DataError, match=rf"cache folder {disk / 'decoded'} has [\d,]+ bytes free, but the "
                                            r"decoded images need about 92,160 \(24 train \+ 6 validation images"):
            tfxfer.TransferModel(extractor, epochs=1, cache=False, verbose=0).fit(data)
        assert os.listdir(disk / "decoded") == []
    with read_only_view(tmp_path / "images", tmp_path / "view") as view:
        data = tfxfer.load_images(images, extractor=extractor, batch_size=8, validation_split=0.2, cache=view)
        with pytest.raises(DataError, match=rf"cache folder {view} is not writable"):
            data.train


def test_a_data_set_far_larger_than_the_memory_limit_streams_from_disk(tmp_path):
    """Decoded images (for the fine-tuning phase) and activations (for the warm-up) both come from disk caches; the
    feature cache may keep 64 bytes in memory, against 1.5 MB of decoded images and 40 KB of activations."""
    extractor = tfxfer.load_extractor(tiny_cnn())
    folder = noise_folders(tmp_path / "images", per_class=40)
    data = tfxfer.load_images(folder, extractor=extractor, batch_size=16, validation_split=0.25,
                              cache=tmp_path / "decoded")
    cache = tfxfer.FeatureCache(tmp_path / "features", memory_limit_bytes=64, progress=False)
    model = tfxfer.TransferModel(extractor, regime="fine-tune", warmup_epochs=2, epochs=2, freeze_blocks=0,
                                 patience=None, cache=cache, verbose=0).fit(data)
    assert model.cached_phases_ == [True, False] and len(model.history_["loss"]) == 4
    assert np.isfinite(model.history_["loss"]).all()
    features, _ = cache.features(extractor.freeze("all"), data, extractor.n_blocks, "train")
    assert isinstance(features, np.memmap) and cache._memory == {}, "activations were held in memory"
    decoded = sum(path.stat().st_size for path in (tmp_path / "decoded").glob("train-*.data-*"))
    assert decoded >= data.sizes["train"] * 16 * 16 * 3 * 4  # every decoded training image is on disk


#: Computes a feature cache on a disk too small for it, in a process of its own (a crash must not take pytest).
FEATURES_ON_A_FULL_DISK = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[3])
    import tfxfer
    from helpers import tiny_cnn
    extractor = tfxfer.load_extractor(tiny_cnn())
    data = tfxfer.load_images(sys.argv[1], extractor=extractor, batch_size=8, validation_split=0)
    try:
        tfxfer.FeatureCache(sys.argv[2], memory_limit_bytes=1, progress=False).features(extractor, data, 1, "train")
    except OSError as error:
        print(f"OSError: {error}")
        sys.exit(1)
""")


class DiedWithoutAWord(AssertionError):
    """The process was killed by a signal instead of raising an error."""


def test_a_feature_cache_on_a_full_disk_fails_with_a_message(tmp_path):
    images = noise_folders(tmp_path / "images", per_class=30)  # 90 x 16x16x4 float32 activations: 369 KB
    with small_disk(tmp_path / "disk", size="128k") as disk:
        result = subprocess.run([sys.executable, "-c", FEATURES_ON_A_FULL_DISK, str(images), str(disk),
                                 str(TESTS)], capture_output=True, text=True, timeout=300,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode < 0:
        raise DiedWithoutAWord(f"killed by signal {-result.returncode}; stderr: {result.stderr[-500:]}")
    assert result.returncode == 1 and str(disk) in result.stdout, result.stderr[-2000:]
