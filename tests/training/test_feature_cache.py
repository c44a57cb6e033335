"""Frozen work computed once: cache keys, exactness against end-to-end training, disk caches, refusals."""

import logging
import os
import threading

import numpy as np
import pytest

import tfxfer
from helpers import noise_folders, tiny_cnn
from tfxfer.training import FeatureCache


@pytest.fixture
def folder(tmp_path):
    return noise_folders(tmp_path / "images")


def load(folder, extractor, **options):
    return tfxfer.load_images(folder, extractor=extractor, batch_size=8, validation_split=0.25, seed=3, **options)


@pytest.mark.parametrize("kind, regime, freeze", [("hub", "feature-extraction", None), ("keras", "mid-layer", 2),
                                                  ("keras", "feature-extraction", None)])
def test_cached_training_equals_end_to_end(tiny_hub_model, folder, kind, regime, freeze):
    make = (lambda: tfxfer.load_extractor(tiny_hub_model)) if kind == "hub" else (
        lambda: tfxfer.load_extractor(tiny_cnn()))
    predictions, runs = [], []
    for cache in (False, True):
        extractor = make()
        data = load(folder, extractor)
        model = tfxfer.TransferModel(extractor, regime=regime, freeze_blocks=freeze, epochs=3, patience=None,
                                     seed=7, cache=cache, verbose=0).fit(data)
        predictions.append(model.predict(data.validation))
        runs.append(model)
    assert runs[0].cached_phases_ == [False] and runs[1].cached_phases_ == [True]
    np.testing.assert_allclose(predictions[0], predictions[1], atol=1e-5)
    np.testing.assert_allclose(runs[0].history_["val_loss"], runs[1].history_["val_loss"], atol=1e-5)


def test_key_changes_with_data_extractor_cut_and_size(tiny_hub_model, folder):
    extractor = tfxfer.load_extractor(tiny_cnn())
    cache = FeatureCache(progress=False)
    data = load(folder, extractor)
    base = cache.key(extractor, data, 2, "train")
    assert cache.key(extractor, load(folder, extractor), 2, "train") == base
    assert cache.key(extractor, data, 3, "train") != base
    assert cache.key(tfxfer.load_extractor(tiny_cnn(seed=1)), data, 2, "train") != base
    assert cache.key(extractor, tfxfer.load_images(folder, image_size=(12, 12), value_range=(0, 1), batch_size=8,
                                                   validation_split=0.25, seed=3), 2, "train") != base
    first = sorted((folder / "ants").iterdir())[0]
    os.utime(first, ns=(1, 1))
    assert cache.key(extractor, load(folder, extractor), 2, "train") != base


def test_weights_before_the_cut_are_in_the_key(folder):
    extractor = tfxfer.load_extractor(tiny_cnn())
    data = load(folder, extractor)
    cache = FeatureCache(progress=False)
    before = [cache.key(extractor, data, k, "train") for k in (1, 2)]
    weight = extractor.blocks[1].learnable[0]
    weight.assign(weight.numpy() + 1.0)
    after = [cache.key(extractor, data, k, "train") for k in (1, 2)]
    assert before[0] == after[0] and before[1] != after[1]


def test_hits_and_misses(folder):
    extractor = tfxfer.load_extractor(tiny_cnn())
    data = load(folder, extractor)
    cache = FeatureCache(progress=False)
    first, labels = cache.features(extractor, data, 4, "train")
    again, _ = cache.features(extractor, data, 4, "train")
    assert (cache.hits, cache.misses) == (1, 1) and again is first
    expected = extractor(np.stack([x for x, _ in data.unbatched("train")]), training=False).numpy()
    np.testing.assert_allclose(first, expected, atol=1e-5)
    assert len(labels) == data.sizes["train"]


def test_disk_cache_streams_and_is_reused_by_another_process_cache(folder, tmp_path):
    extractor = tfxfer.load_extractor(tiny_cnn())
    data = load(folder, extractor)
    cache = FeatureCache(tmp_path / "cache", memory_limit_bytes=1, progress=False)
    features, _ = cache.features(extractor, data, 1, "train")
    assert isinstance(features, np.memmap) and cache.misses == 1
    other = FeatureCache(tmp_path / "cache", progress=False)
    reread, _ = other.features(extractor, data, 1, "train")
    assert (other.hits, other.misses) == (1, 0)
    np.testing.assert_array_equal(np.asarray(reread), np.asarray(features))
    model = tfxfer.TransferModel(extractor, regime="mid-layer", freeze_blocks=1, epochs=1, cache=cache,
                                 verbose=0).fit(data)
    assert model.cached_phases_ == [True] and np.isfinite(model.history_["loss"]).all()


def test_augmentation_disables_the_cache_with_a_logged_reason(tiny_hub_model, folder, caplog):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    data = load(folder, extractor, augment=True)
    with caplog.at_level(logging.INFO, logger="tfxfer"):
        model = tfxfer.TransferModel(extractor, epochs=1, verbose=0).fit(data)
    assert model.cached_phases_ == [False]
    assert "augmentation" in caplog.text


def test_hub_models_cache_at_their_cuts(tiny_hub_model, folder):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    data = load(folder, extractor)
    cache = FeatureCache(progress=False)
    features, _ = cache.features(extractor, data, 2, "train")
    assert features.shape == (data.sizes["train"], 16, 16, 4)
    model = tfxfer.TransferModel(extractor, regime="mid-layer", freeze_blocks=2, epochs=1, cache=cache,
                                 verbose=0).fit(data)
    assert model.cached_phases_ == [True] and cache.hits >= 1


@pytest.mark.parametrize("memory_limit_bytes", [1, 2**30], ids=["memory-mapped", "in-memory"])
def test_writers_of_the_same_activations_at_once_do_not_trip_over_each_other(folder, tmp_path, memory_limit_bytes):
    """Workers of a distributed search share the cache folder and may fill the same entry at the same moment."""
    extractor = tfxfer.load_extractor(tiny_cnn())
    data = load(folder, extractor)
    expected = FeatureCache(progress=False).features(extractor, data, 2, "train")[0]
    rounds, barrier, failures = 12, threading.Barrier(2), []

    def fill(round_index):
        cache = FeatureCache(tmp_path / f"cache_{round_index}", memory_limit_bytes=memory_limit_bytes, progress=False)
        barrier.wait()
        try:
            cache.features(extractor, data, 2, "train")
        except Exception as error:  # noqa: BLE001 - every failure of a writer is what this test is about
            failures.append(repr(error))

    for round_index in range(rounds):
        writers = [threading.Thread(target=fill, args=(round_index,)) for _ in range(2)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
    assert failures == []
    for round_index in range(rounds):
        reread = FeatureCache(tmp_path / f"cache_{round_index}", progress=False)
        np.testing.assert_array_equal(np.asarray(reread.features(extractor, data, 2, "train")[0]), expected)
        assert reread.misses == 0
        assert not list((tmp_path / f"cache_{round_index}").rglob("*partial*"))
