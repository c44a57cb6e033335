"""Keras Tuner search over freeze depth, learning rate and head: table, cache reuse, workers. (Resuming after SIGKILL:
test_extractor_search.py, on a search across two extractors, which resumes through the same path.)"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfxfer
from helpers import TESTS, completed_trials, free_port, noise_folders, tiny_cnn
from tfxfer.search import SearchSpace, TransferSearch, search_results
from tfxfer.search.hypermodel import _custom_gradients
from tfxfer.training import pick_strategy

@pytest.fixture
def data(tmp_path):
    folder = noise_folders(tmp_path / "images", per_class=8)
    return tfxfer.load_images(folder, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0.25,
                              seed=3)



def test_a_search_decodes_the_data_for_its_extractor(tmp_path):
    """Data decoded in [0, 255] for an extractor that takes [0, 1]: every trial once failed on it (and the search
    ended with none completed); the search decodes it for its extractor, as a search across extractors does."""
    folder = noise_folders(tmp_path / "images", per_class=8)
    data = tfxfer.load_images(folder, image_size=(24, 24), value_range=(0, 255), batch_size=8, validation_split=0.25,
                              seed=3)
    extractor = tfxfer.load_extractor(tiny_cnn())
    pretrained = [weight.numpy() for weight in extractor.weights]
    search = TransferSearch(extractor, max_trials=1, epochs=1, directory=tmp_path / "runs", project_name="p",
                            space=SearchSpace(frozen_blocks=[0], warmup_epochs=1), verbose=0)
    assert list(search.search(data).status) == ["COMPLETED"]
    # The fine-tuning trial trained the extractor passed in; the search gives it its pretrained weights back, so
    # the same search on it resumes (it was refused as 'another extractor, whose weights differ').
    assert all(np.array_equal(weight.numpy(), value) for weight, value in zip(extractor.weights, pretrained))
    assert len(TransferSearch(extractor, max_trials=1, epochs=1, directory=tmp_path / "runs", project_name="p",
                              space=SearchSpace(frozen_blocks=[0], warmup_epochs=1), verbose=0).search(data)) == 1
    assert search.best_model(data).model_.input_shape[1:3] == (16, 16)
    other = tfxfer.load_images(noise_folders(tmp_path / "other", per_class=8, seed=9), image_size=(16, 16),
                               value_range=(0, 1), batch_size=8, validation_split=0.25, seed=3)
    with pytest.raises(ValueError, match=r"the search in .* ran on other data \(\d+ train, \d+ validation examples\); "
                                         "pass the data it ran on"):
        search.best_model(other)


class _Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise ValueError("boom from a callback")


def test_a_search_whose_every_trial_failed_says_so(data, tmp_path):
    search = TransferSearch(tiny_cnn(), max_trials=2, epochs=1, directory=tmp_path / "runs", project_name="p",
                            space=SearchSpace(frozen_blocks=[4]), verbose=0)
    with pytest.raises(RuntimeError, match=r"Every trial of the search failed \(\d of \d\); the first with: "
                                           r"ValueError: boom from a callback"):
        search.search(data, callbacks=[_Boom()])

def test_search_table_has_a_row_per_trial_and_every_hyperparameter(data, tmp_path):
    search = TransferSearch(tiny_cnn(), max_trials=4, epochs=1, directory=tmp_path / "runs", project_name="p",
                            space=SearchSpace(frozen_blocks=[2, 4], warmup_epochs=1), verbose=0)
    registered_before = _custom_gradients()
    table = search.search(data)
    # TensorFlow registers a gradient function, holding the whole traced train step, every time Keras traces one;
    # only the last trial's may stay registered.
    registered = _custom_gradients() - registered_before
    assert 1 <= len(registered) <= 3, f"{len(registered)} traced train steps kept for 4 trials"
    assert len(table) == 4 and set(table.status) == {"COMPLETED"}
    for column in ("trial_id", "status", "frozen_blocks", "learning_rate", "fine_tune_learning_rate", "hidden_units",
                   "dropout", "l2", "batch_norm", "score", "val_accuracy", "val_loss", "accuracy", "epochs", "seconds"):
        assert column in table, column
    assert table.score.is_monotonic_decreasing
    assert set(table.frozen_blocks) <= {2, 4}
    frozen_all = table[table.frozen_blocks == 4]
    assert frozen_all.fine_tune_learning_rate.isna().all()  # feature extraction does not use it
    pd.testing.assert_frame_equal(search_results(tmp_path / "runs", "p"), table)
    cache = search.hypermodel_.cache
    # Activations after 4 (every warm-up and feature-extraction trial) and after 2 blocks: computed once per split.
    assert cache.misses <= 4 and cache.hits >= 4
    extractor = search.hypermodel_.extractor
    assert len(extractor._outbound_nodes) <= 2, "earlier trials' models are still attached to the extractor"
    best = search.best_model(data)
    assert best.frozen_blocks_ == search.best_hyperparameters_["frozen_blocks"]
    assert set(table.batch_norm) == {False}  # "auto", shown as what it means under an image extractor: off
    assert "head_batch_norm" not in [layer.name for layer in best.model_.get_layer("head").layers]
    # A search recorded before heads normalised their input (no batch_norm in its space) is rebuilt as it ran.
    record = tmp_path / "runs" / "p" / "tfxfer_search.json"
    stored = json.loads(record.read_text())
    del stored["space"]["batch_norm"]
    record.write_text(json.dumps(stored))
    assert TransferSearch.from_folder(tmp_path / "runs" / "p", verbose=0).space.batch_norm is False


def test_the_same_search_twice_gives_the_same_trials_and_scores(tmp_path):
    """Two runs of one `tfxfer tune` command sampled the same trials and scored them differently (each trial's head
    started from random weights), so which trial won was chance (a hostile tester's find)."""
    folder = noise_folders(tmp_path / "images", per_class=8)
    tables = []
    for run in ("a", "resumed"):
        keras.utils.set_random_seed(5)  # the same "pretrained" weights in every run
        data = tfxfer.load_images(folder, image_size=(16, 16), value_range=(0, 1), batch_size=8,
                                  validation_split=0.25, seed=3)
        extractor = tiny_cnn()
        for trials in (1, 3) if run == "resumed" else (3,):
            search = TransferSearch(extractor, max_trials=trials, epochs=1, directory=tmp_path / run,
                                    project_name="p", space=SearchSpace(frozen_blocks=[4]), verbose=0)
            table = search.search(data)
        tables.append(table.sort_values("trial_id").reset_index(drop=True))
    # The same search again, stopped after a trial and resumed, scores its trials as one run does: each trial's
    # data starts from the seed's first order (the shuffle's state carried over from the trials before it, a hostile
    # tester's find).
    columns = ["learning_rate", "hidden_units", "dropout", "val_loss", "loss"]
    pd.testing.assert_frame_equal(tables[0][columns], tables[1][columns], rtol=1e-5)


def test_numpy_numbers_are_numbers_in_a_space():
    """np.float32(0.8) was refused as a layer_decay, which TransferModel takes (a hostile tester's find)."""
    assert SearchSpace(frozen_blocks=[3], layer_decay=np.float32(0.8), l2=[np.float32(1e-4)],
                       learning_rate=(np.float32(1e-4), 1e-2)).check(5) == [3]


@pytest.mark.parametrize("space, message", [
    (SearchSpace(frozen_blocks=[0, 7]), "frozen_blocks must be whole numbers from 0 to 4"),
    (SearchSpace(frozen_blocks=[4], layer_decay=[0.5, 0.9]), r"layer_decay=\[0.5, 0.9\] does nothing when every "
                                                             r"trial freezes every block"),  # a tester's find
    (SearchSpace(learning_rate=(-1e-3, 1e-2)), "learning_rate must be a rate"),
    (SearchSpace(fine_tune_learning_rate=(1e-3, 1e-5)), "fine_tune_learning_rate must be a rate"),
    (SearchSpace(dropout=(0.0, 1.5)), "dropout must be in"),
])
def test_bad_search_space_is_refused(data, tmp_path, space, message):
    with pytest.raises(ValueError, match=message):
        TransferSearch(tiny_cnn(), space=space, directory=tmp_path, verbose=0).search(data)


def test_bad_tuner_and_trials_are_refused():
    with pytest.raises(ValueError, match="tuner must be one of"):
        TransferSearch("MobileNetV2", tuner="grid")
    with pytest.raises(ValueError, match="max_trials"):
        TransferSearch("MobileNetV2", max_trials=0)


def test_pick_strategy_on_cpu():
    assert pick_strategy().num_replicas_in_sync == 1
    mirrored = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert pick_strategy(mirrored) is mirrored


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import tfxfer
from helpers import tiny_cnn
from tfxfer.search import SearchSpace, TransferSearch
data = tfxfer.load_images({images!r}, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0.25,
                          seed=3)
search = TransferSearch(tiny_cnn(), max_trials={trials}, epochs={epochs}, directory={runs!r}, project_name="p",
                        space=SearchSpace(frozen_blocks=[1, 2, 3, 4], warmup_epochs=1), patience=None,
                        worker_timeout=6, verbose=0)
table = search.search(data)
print("TRIALS", len(table), sorted(table.status))
"""


def _script(tmp_path, trials, epochs):
    images = noise_folders(tmp_path / "images", per_class=8) if not (tmp_path / "images").exists() else \
        tmp_path / "images"
    path = tmp_path / "search.py"
    path.write_text(SCRIPT.format(tests=str(TESTS), images=str(images), runs=str(tmp_path / "runs"), trials=trials,
                                  epochs=epochs))
    return path


def _start_chief_and_workers(script, port):
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": str(port)}
        processes[tuner_id] = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True)
        if tuner_id == "chief":
            time.sleep(3)
    return processes


@pytest.mark.slow
def test_chief_and_two_workers_finish_every_trial_once_though_one_worker_is_killed(tmp_path):
    port = free_port()
    processes = _start_chief_and_workers(_script(tmp_path, trials=4, epochs=2), port)
    # A worker on "another machine" (its own folder) running another search: its trials filled the chief's table
    # with other scores, silently (a hostile tester's find). It is refused before it takes a trial.
    stranger = tmp_path / "stranger.py"
    stranger.write_text(SCRIPT.format(tests=str(TESTS), images=str(tmp_path / "images"),
                                      runs=str(tmp_path / "elsewhere"), trials=4, epochs=3))
    env = {**os.environ, "KERASTUNER_TUNER_ID": "tuner2", "KERASTUNER_ORACLE_IP": "127.0.0.1",
           "KERASTUNER_ORACLE_PORT": str(port)}
    refused = subprocess.Popen([sys.executable, str(stranger)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    project = tmp_path / "runs" / "p"
    deadline = time.monotonic() + 120
    while not completed_trials(project) and time.monotonic() < deadline and all(
            process.poll() is None for process in processes.values()):
        time.sleep(0.2)
    killed = processes.pop("tuner1")
    killed.send_signal(signal.SIGKILL)
    for tuner_id, process in processes.items():
        _, stderr = process.communicate(timeout=400)
        assert process.returncode == 0, (tuner_id, stderr[-3000:])
    _, stderr = refused.communicate(timeout=300)
    assert refused.returncode != 0 and "This worker's search is not the one its chief at 127.0.0.1:" in stderr, \
        stderr[-3000:]
    trials = [json.loads(p.read_text()) for p in project.glob("trial_*/trial.json")]
    assert len(trials) == 4 and len({t["trial_id"] for t in trials}) == 4
    assert len(completed_trials(project)) == 4, "the killed worker's trial was not run by the other worker"
    assert (project / "tuner0.json").exists()


def test_a_rows_metrics_are_those_of_the_objectives_best_epoch(tmp_path):
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.Fixed("frozen_blocks", 2)
    trial = kt.engine.trial.Trial(hp, trial_id="0", status="COMPLETED")
    epochs = [{"accuracy": 0.5, "loss": 1.0, "val_accuracy": 0.6, "val_loss": 0.9},
              {"accuracy": 0.9, "loss": 0.2, "val_accuracy": 0.5, "val_loss": 0.7},
              {"accuracy": 0.7, "loss": 0.5, "val_accuracy": 0.8, "val_loss": 1.1}]
    for name in epochs[0]:
        trial.metrics.register(name, "max" if "accuracy" in name else "min")
    for step, logs in enumerate(epochs):
        for name, value in logs.items():
            trial.metrics.update(name, value, step=step)
    trial.metrics.update("epochs", 3.0, step=3)
    trial.score, trial.best_step = 0.8, 2
    (tmp_path / "p" / "trial_0").mkdir(parents=True)
    trial.save(str(tmp_path / "p" / "trial_0" / "trial.json"))
    (row,) = search_results(tmp_path, "p").to_dict("records")
    # Each metric's own best (accuracy 0.9, loss 0.2, val_loss 0.7) mixed three epochs in one row (a tester's find).
    assert {name: row[name] for name in epochs[2]} == epochs[2] and row["epochs"] == 3.0


def test_a_trial_scores_the_epoch_whose_weights_it_ends_with_not_its_warm_up(data, tmp_path):
    """A fine-tuning trial was scored by its best epoch, its head warm-up included, while the model the search gives
    back is the one fine-tuning ends with (a tester's find)."""
    search = TransferSearch(tiny_cnn(), max_trials=1, epochs=2, patience=None, directory=tmp_path / "runs",
                            project_name="p", verbose=0,
                            space=SearchSpace(frozen_blocks=[0], warmup_epochs=4, learning_rate=0.3,
                                              fine_tune_learning_rate=0.9, hidden_units=0, dropout=0.0, l2=0.0))
    table = search.search(data)
    trial = search.tuner_.oracle.get_trial(table.trial_id[0])
    epochs = {obs.step: obs.mean() for obs in trial.metrics.get_history("val_loss")}
    assert sorted(epochs) == [0, 1, 2, 3, 4, 5, 6] and epochs[6] == epochs[5]  # per epoch, then the final report
    assert trial.best_step == 6 and table.val_loss[0] == epochs[5]
    accuracy = {obs.step: obs.mean() for obs in trial.metrics.get_history("val_accuracy")}
    assert max(accuracy[step] for step in range(4)) > accuracy[5], "the warm-up should score higher here"
    assert trial.score == table.score[0] == table.val_accuracy[0] == accuracy[5]


def test_a_resume_with_another_batch_size_or_augmentation_is_refused(data, tmp_path):
    def search():
        return TransferSearch(tiny_cnn(), max_trials=1, epochs=1, patience=None, directory=tmp_path / "runs",
                              project_name="p", space=SearchSpace(frozen_blocks=[4]), verbose=0)

    search().search(data)
    images = tmp_path / "images"
    smaller = tfxfer.load_images(images, image_size=(16, 16), value_range=(0, 1), batch_size=2, validation_split=0.25,
                                 seed=3)
    with pytest.raises(ValueError, match=r"it was run with batch_size=8 then, batch_size=2 now\."):
        search().search(smaller)  # resumed silently, adding trials trained otherwise (a tester's find)
    flipped = tfxfer.load_images(images, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0.25,
                                 seed=3, augment=True)
    with pytest.raises(ValueError, match=r"augment=False then, augment=True now"):
        search().search(flipped)
    # It said "the same counts of other files or labels" where the files were split by another seed (a tester's find).
    resplit = tfxfer.load_images(images, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0.25,
                                 seed=4)
    with pytest.raises(ValueError, match=r"or of the same files split otherwise, as by another seed\)"):
        search().search(resplit)
    # The same extractor at another image size: 'other weights of ...' sent the user looking for a changed model
    # file (a tester's find).
    for size in (16, 24):
        extractor = tfxfer.load_extractor(tiny_cnn((None, None, 3)), image_size=(size, size))
        resized = TransferSearch(extractor, max_trials=1, epochs=1, patience=None, directory=tmp_path / "sizes",
                                 project_name="p", space=SearchSpace(frozen_blocks=[4]), verbose=0)
        if size == 16:
            resized.search(data)
    with pytest.raises(ValueError, match=r"it was run with image_size=16x16 then, image_size=24x24 now\."):
        resized.search(data)
    # Retraining (`tfxfer export`) gave the resume's advice: start afresh with overwrite=True (a tester's find).
    with pytest.raises(ValueError, match=r"Cannot retrain the best trial of the search in .*p: it was run with "
                                         r"batch_size=8 then, batch_size=2 now\. A trial retrains as it ran") as error:
        TransferSearch.from_folder(tmp_path / "runs" / "p", extractor=tiny_cnn(), verbose=0).best_model(smaller)
    assert "overwrite" not in str(error.value)
    # A search scored the old way (Keras Tuner's best epoch) is not resumed under the new rule, mixing the two (a
    # reviewer's find); its best trial still retrains.
    record = tmp_path / "runs" / "p" / "tfxfer_search.json"
    stored = json.loads(record.read_text())
    assert stored.pop("scoring") == "the epoch whose weights a trial ends with"
    record.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"trials scored by their best epoch over every phase \(tfxfer before "
                                         r"2026-12-07\), now by the epoch whose weights a trial ends with"):
        search().search(data)
    assert TransferSearch.from_folder(tmp_path / "runs" / "p", extractor=tiny_cnn(), verbose=0).best_model(
        data).frozen_blocks_ == 4


def test_a_resumed_search_counts_the_time_its_trials_took_not_the_pause(data, tmp_path, capsys):
    """Keras Tuner's "Total elapsed time" counted from the first run's start: a search resumed the next morning
    said a day had elapsed (left open by several reviews)."""
    def search(trials):
        return TransferSearch(tiny_cnn(), max_trials=trials, epochs=1, patience=None, directory=tmp_path / "runs",
                              project_name="p", space=SearchSpace(frozen_blocks=[3, 4]), verbose=1)

    search(1).search(data)
    state = tmp_path / "runs" / "p" / "oracle.json"
    saved = json.loads(state.read_text())
    saved["display"]["search_start"] = "2026-01-01T00:00:00"  # the first run began long before this resume
    state.write_text(json.dumps(saved))
    capsys.readouterr()
    search(2).search(data)
    said = capsys.readouterr().out
    elapsed = re.findall(r"Total elapsed time: (.*)", said)
    assert len(elapsed) == 1 and elapsed[0].startswith("00h 0"), elapsed  # it said '340d 16h 09m 41s'
    # In tfxfer's words, not Keras Tuner's "Reloading Tuner from runs/p/tuner0.json"; the search's digest, a
    # fixed hyperparameter, is no row of the trial's table.
    assert f"Resuming the search in {tmp_path / 'runs' / 'p'}: 1 completed trial is kept.\n" in said
    assert "Reloading" not in said and "tfxfer_search" not in said and "|frozen_blocks" in said
    search(2).best_model(data, retrain=False)
    assert "Reloading" not in capsys.readouterr().out  # nor where the best trial is built again
    search(1).search(data)  # asked for fewer than it holds: said, not ignored silently (a tester's find)
    assert "2 completed trials are kept; nothing is left to run (1 asked for).\n" in capsys.readouterr().out


class _Writes(keras.callbacks.Callback):
    """Writes a line at each epoch's end to a file descriptor, as printing does to stdout (fd 1)."""

    def __init__(self, fd):
        super().__init__()
        self.fd = fd

    def on_epoch_end(self, epoch, logs=None):
        os.write(self.fd, b"epoch\n")  # BrokenPipeError where the pipe's reader has gone (Python ignores SIGPIPE)


def test_a_pipe_closed_mid_trial_leaves_the_trial_to_run_again(data, tmp_path):
    """A hostile tester's find: with stdout's reader gone (`tfxfer tune | head`), Keras Tuner recorded the trial as
    failed (BrokenPipeError), and a resume kept the failure and never ran it. A pipe of the user's own that breaks
    fails its trial, as any error of a trial does."""
    def search(trials=2):
        return TransferSearch(tiny_cnn(), max_trials=trials, epochs=1, patience=None, directory=tmp_path / "runs",
                              project_name="p", space=SearchSpace(frozen_blocks=[4, 3]), verbose=0)

    reader, writer = os.pipe()
    os.close(reader)
    stdout = os.dup(1)
    os.dup2(writer, 1)  # this process's stdout, whose reader has gone
    try:
        with pytest.raises(BrokenPipeError):
            search().search(data, callbacks=[_Writes(1)])
    finally:
        os.dup2(stdout, 1)
        os.close(stdout)
    table = search().search(data)
    assert list(table.status) == ["COMPLETED", "COMPLETED"] and "BrokenPipe" not in json.dumps(
        [json.loads(path.read_text()) for path in (tmp_path / "runs" / "p").glob("trial_*/trial.json")])
    with pytest.warns(UserWarning, match="BrokenPipeError"):
        table = search(3).search(data, callbacks=[_Writes(writer)])
    assert list(table.status) == ["COMPLETED", "COMPLETED", "FAILED"]
    os.close(writer)


def test_hyperband_completes_the_trials_its_later_rounds_continue(data, tmp_path):
    """Each trial that a second round continued failed (RecursionError loading the round before's checkpoint, which
    a tfxfer trial does not write whole; a hostile tester's find): they train afresh for their budget. The oracle's
    own options (`factor` here) went to the tuner, which refused them."""
    search = TransferSearch(tiny_cnn(), tuner="hyperband", epochs=2, factor=2, patience=None,
                            directory=tmp_path / "runs", project_name="h", space=SearchSpace(frozen_blocks=[4]),
                            verbose=0)
    table = search.search(data)
    continued = table[table["tuner/initial_epoch"] > 0]
    assert len(continued) >= 1 and set(table.status) == {"COMPLETED"}, table[["status", "tuner/initial_epoch"]]
    assert (continued.epochs == 2).all()
    # The best trial retrains with the budget it was scored on (it retrained for the search's epochs, a review's find).
    assert search.best_model(data, retrain=False).epochs == table["tuner/epochs"].iloc[0]
