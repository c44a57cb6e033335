"""Every docstring example in tfxfer runs and shows what it says.

The examples use a few names that a reader would have at hand, built here once from tiny models and data:
`extractor` (a Keras extractor of 4 blocks on 16x16 images), `image_folder` (class folders of noise images),
`hub_folder` (a tiny TF Hub SavedModel folder),
`data` (a `DataSplits` of noise images in three classes), `fitted` (a fine-tuned `TransferModel`), `search` (a
finished two-trial `TransferSearch`), `exported_path` and `litert_path` (a SavedModel and a LiteRT export of
`fitted`, each `pathlib.Path` a version folder; made once, for the examples that read an export) and `tmp_dir` (a
folder to write into), besides `keras`, `np`, `pd`, `tf` and `tfxfer`.
"""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfxfer
from helpers import noise_folders, tiny_cnn

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(tfxfer.__path__, "tfxfer.")
                 if not name.endswith("__main__"))


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    images = noise_folders(folder / "images", per_class=8)
    extractor = tfxfer.load_extractor(tiny_cnn())
    data = tfxfer.load_images(images, extractor=extractor, batch_size=8, validation_split=0.25, seed=3)
    fitted = tfxfer.TransferModel(tfxfer.load_extractor(tiny_cnn(seed=1)), regime="fine-tune", warmup_epochs=1,
                                  epochs=1, patience=None, verbose=0).fit(data)
    search = tfxfer.TransferSearch(tiny_cnn(seed=2), max_trials=2, epochs=1, patience=None, directory=folder / "runs",
                                   project_name="docs", space=tfxfer.SearchSpace(frozen_blocks=[3, 4],
                                                                                 warmup_epochs=1), verbose=0)
    search.search(data)
    exports = folder / "exports"
    exported_path = tfxfer.export(fitted, "noise", root=exports, data_summary=data)
    litert_path = tfxfer.export(fitted, "noise_lite", root=exports, format="litert", data_summary=data)
    return {"extractor": extractor, "image_folder": str(images), "data": data, "fitted": fitted, "search": search,
            "hub_folder": str(tfxfer.save_hub_format(tiny_cnn(seed=3), folder / "hub")),
            "exported_path": exported_path, "litert_path": litert_path, "tmp_dir": str(folder / "scratch"),
            "keras": keras, "np": np, "pd": pd, "tf": tf, "tfxfer": tfxfer}


@pytest.mark.slow
def test_every_docstring_example_runs(namespace):
    failures, ran = [], 0
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for name in MODULES:
        module = importlib.import_module(name)
        for test in finder.find(module, name, globs={**vars(module), **namespace}):
            result = runner.run(test, out=lambda text, test=test: failures.append(f"{test.name}:\n{text}"))
            ran += result.attempted
    assert not failures, "\n".join(failures)
    assert ran >= 60, f"only {ran} examples ran"
