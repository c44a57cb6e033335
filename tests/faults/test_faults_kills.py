"""Searches killed with SIGKILL and started again, as real processes: a distributed search's chief killed and
restarted on the same port, and what the chief's watchdog relies on.

search/test_search.py already kills a local search once, runs a chief with two workers and kills a worker mid-trial; the
long variants (10 random kill points of a search, 10 of an export) are in bench/bench_faults.py and reuse these
helpers. Every search process logs each trial it runs (`start`/`end`, trial id, tuner id, pid) around Keras Tuner's
real `run_trial`, so that a trial run twice is seen even when its files were overwritten.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from concurrent import futures

import grpc
import keras
import keras_tuner as kt
import pytest
from keras_tuner.src import protos
from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief
from keras_tuner.src.distribute.oracle_client import OracleClient

import tfxfer
from helpers import TESTS, free_port, noise_folders, tiny_cnn
from tfxfer.search import SearchSpace, TransferSearch, search_results
from tfxfer.search.distributed import GuardedRandomSearchOracle, Watchdog, answer_late_workers, patient_workers


SEARCH = """
import os, sys
sys.path.insert(0, {tests!r})
import keras_tuner as kt
import tfxfer
from helpers import tiny_cnn
from tfxfer.search import SearchSpace, TransferSearch

run_trial = kt.engine.tuner.Tuner.run_trial


def logged_run_trial(self, trial, *args, **kwargs):
    def log(event):
        with open({log!r}, "a") as file:
            file.write(f"{{event}} {{trial.trial_id}} {{self.tuner_id}} {{os.getpid()}}\\n")
    log("start")
    result = run_trial(self, trial, *args, **kwargs)
    log("end")
    return result


kt.engine.tuner.Tuner.run_trial = logged_run_trial
data = tfxfer.load_images({images!r}, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0.25,
                          seed=3)
search = TransferSearch(tiny_cnn(), max_trials={trials}, epochs={epochs}, directory={runs!r}, project_name="p",
                        space=SearchSpace(frozen_blocks=[1, 2, 3, 4], warmup_epochs=1), patience=None,
                        worker_timeout={worker_timeout}, verbose=0)
table = search.search(data)
print("TRIALS", len(table), sorted(table.status))
"""


def search_script(folder, trials, epochs, worker_timeout=600):
    """Writes the search script (and its noise images) under `folder`; returns its path."""
    images = folder / "images"
    if not images.exists():
        noise_folders(images, per_class=8)
    path = folder / "search.py"
    path.write_text(SEARCH.format(tests=str(TESTS), images=str(images), runs=str(folder / "runs"), trials=trials,
                                  epochs=epochs, worker_timeout=worker_timeout, log=str(folder / "trials.log")))
    return path


def start_search(script, tuner_id=None, port=None):
    """Starts the search as a process: local, or as `tuner_id` ("chief", "tuner0"...) of a search on `port`."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if tuner_id is not None:
        env.update(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def trial_log(folder):
    """The `(event, trial id, tuner id, pid)` lines the search processes wrote, in order."""
    path = folder / "trials.log"
    return [tuple(line.split()) for line in path.read_text().splitlines()] if path.exists() else []


def runs_after_completion(log):
    """Trials that ran again after a run of theirs had ended: `{trial id: times ended}`."""
    ended = Counter(trial for event, trial, *_ in log if event == "end")
    return {trial: count for trial, count in ended.items() if count > 1}


def wait_for(condition, timeout, poll=0.2):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s")
        time.sleep(poll)


class CompletedTrialRanAgain(AssertionError):
    """A trial whose run had ended (COMPLETED) was run again."""


def running_after_an_end(log):
    """Whether a trial has started after some trial ended (so the chief holds a trial in progress)."""
    events = [event for event, *_ in log]
    return "end" in events and "start" in events[events.index("end"):]


@pytest.mark.slow
def test_chief_killed_and_restarted_the_worker_reconnects_and_the_search_completes(tmp_path):
    """One worker here (a chief with two and ten restarts is in the bench): with two, Keras Tuner's chief waits in
    steps of 20 s for the last one, which CI time cannot afford."""
    script = search_script(tmp_path, trials=2, epochs=1)
    port = free_port()
    chief, worker = start_search(script, "chief", port), start_search(script, "tuner0", port)
    try:
        wait_for(lambda: running_after_an_end(trial_log(tmp_path)), timeout=240)
        chief.send_signal(signal.SIGKILL)
        chief.communicate()
        running = json.loads((tmp_path / "runs" / "p" / "oracle.json").read_text())["ongoing_trials"]
        assert running, "the kill should land while the worker runs a trial"
        chief = start_search(script, "chief", port)  # the same arguments and port
        for role, process in (("worker", worker), ("restarted chief", chief)):
            out, err = process.communicate(timeout=400)
            assert process.returncode == 0, (role, err[-3000:])
            assert "TRIALS 2 ['COMPLETED', 'COMPLETED']" in out, (role, out[-1000:])
    finally:
        for process in (chief, worker):
            if process.poll() is None:
                process.kill()
                process.communicate()
    table = search_results(tmp_path / "runs", "p")
    assert sorted(table.trial_id) == ["0", "1"] and set(table.status) == {"COMPLETED"}
    again = runs_after_completion(trial_log(tmp_path))
    if again:
        raise CompletedTrialRanAgain(f"trials ended more than once: {again}; log: {trial_log(tmp_path)}")


class _TrialFileTimes(keras.callbacks.Callback):
    """Appends to `record`, after each epoch, when the running trial's trial.json was last written (to a file:
    Keras Tuner deep-copies callbacks for each trial)."""

    def __init__(self, project, record):
        super().__init__()
        self.project, self.record = str(project), str(record)

    def on_epoch_end(self, epoch, logs=None):
        (running,) = [path for path in Path(self.project).glob("trial_*/trial.json")
                      if json.loads(path.read_text())["status"] == "RUNNING"]
        with open(self.record, "a") as file:
            file.write(f"{running.stat().st_mtime_ns}\n")


def test_a_running_trial_is_reported_after_every_epoch(tmp_path):
    data = tfxfer.load_images(noise_folders(tmp_path / "images", per_class=8), image_size=(16, 16),
                              value_range=(0, 1), batch_size=8, validation_split=0.25, seed=3)
    record = tmp_path / "trial_json_times.txt"
    search = TransferSearch(tiny_cnn(), max_trials=1, epochs=3, patience=None, directory=tmp_path / "runs",
                            project_name="p", space=SearchSpace(frozen_blocks=[4]), verbose=0)
    search.search(data, callbacks=[_TrialFileTimes(tmp_path / "runs" / "p", record)])
    times = [int(line) for line in record.read_text().split()]
    assert len(times) == 3, "the callback did not see every epoch"
    assert times[0] < times[1] < times[2], f"trial.json was not rewritten between epochs: {times}"


class TrialLeftUnfinished(AssertionError):
    """The chief would end the search with a trial that no worker will run."""


def _complete(oracle, trial):
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_a_dead_workers_trial_is_run_even_when_the_others_have_nothing_left(tmp_path):
    """The chief's oracle, set up as a distributed search's chief sets it up (with its `Watchdog`), driven the way
    the chief's gRPC service drives it: two workers take a trial each; tuner1 dies; tuner0 ends its trial and asks
    for another before the watchdog's timeout, then keeps asking until it is told to stop."""
    oracle = GuardedRandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=2, seed=0)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.hyperparameters.Choice("frozen_blocks", [1, 2, 3, 4])
    Watchdog(oracle, timeout=1, interval=1)  # what TransferSearch.search starts on the chief; reclaims are run below
    first, second = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    _complete(oracle, first)
    answers = [oracle.create_trial("tuner0")]  # every trial is out; tuner1's is still running, as far as anyone knows
    assert oracle.reclaim_stalled_trials(timeout=1, now=time.time() + 60) == [second.trial_id]  # tuner1 is silent
    while answers[-1].status != "STOPPED" and len(answers) < 10:
        if answers[-1].status == "RUNNING":
            _complete(oracle, answers[-1])
        answers.append(oracle.create_trial("tuner0"))
    left = {trial_id: trial.status for trial_id, trial in oracle.trials.items() if trial.status != "COMPLETED"}
    if exit_chief(oracle) and left:
        raise TrialLeftUnfinished(f"tuner0 was told {[a.status for a in answers]}, so the chief exits with {left} and "
                                  "no worker left to run it")
    assert exit_chief(oracle) and [a.status for a in answers][-1] == "STOPPED"


def test_a_trial_run_again_is_scored_by_its_new_run_alone_and_nan_ranks_last(tmp_path):
    """Keras Tuner keeps a taken-back trial's earlier reports and averages the new run's with them step by step (the
    score here was 0.6); a trial that ended on NaN was INVALID, three of them ending the search (a reviewer's finds)."""
    oracle = GuardedRandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=2, seed=0)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.hyperparameters.Choice("frozen_blocks", [1, 2, 3, 4])
    Watchdog(oracle, timeout=1, interval=1)
    first = oracle.create_trial("tuner0")
    for step, value in enumerate([0.9, 0.8, 0.7, 0.6]):  # tuner0 dies after four epochs
        oracle.update_trial(first.trial_id, {"val_accuracy": value}, step=step)
    # A tuner that asks again is given its running trial back, its reports kept (a multi-worker trial's workers do).
    assert oracle.create_trial("tuner0") is first and first.metrics.get_last_value("val_accuracy") == 0.6
    assert oracle.reclaim_stalled_trials(timeout=1, now=time.time() + 60) == [first.trial_id]
    again = oracle.create_trial("tuner1")
    assert again.trial_id == first.trial_id
    for step, value in enumerate([0.4, 0.5]):  # run again, it stops after two epochs; then its final report
        oracle.update_trial(again.trial_id, {"val_accuracy": value}, step=step)
    oracle.update_trial(again.trial_id, {"val_accuracy": 0.5, "epochs": 2.0}, step=2)
    again.status = "COMPLETED"
    oracle.end_trial(again)
    assert (oracle.trials[first.trial_id].score, oracle.trials[first.trial_id].best_step) == (0.5, 2)
    diverged = oracle.create_trial("tuner1")
    with pytest.warns(RuntimeWarning, match="All-NaN"):  # Keras Tuner's best value so far, over NaN alone
        oracle.update_trial(diverged.trial_id, {"val_accuracy": float("nan"), "epochs": 1.0}, step=1)
    diverged.status = "COMPLETED"
    oracle.end_trial(diverged)
    assert oracle.trials[diverged.trial_id].status == "COMPLETED"
    assert oracle.trials[diverged.trial_id].score == float("-inf")


@pytest.mark.parametrize("killed_while", ["between trials", "waiting for a trial"])
def test_a_worker_killed_without_a_trial_out_does_not_keep_the_chief_waiting(tmp_path, killed_while):
    """Keras Tuner's chief ends once no trial is out and no worker is registered; a worker registers when it asks
    for a trial and unregisters only when told to stop. tuner1 dies after its trial ended, either before it asks
    for the next one or while it waits for one (every trial was out): nothing of its is out for the watchdog to
    take back, and Keras Tuner's chief would wait for it for ever (CI, 2026-12-06)."""
    oracle = GuardedRandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=3, seed=0)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.hyperparameters.Choice("frozen_blocks", [1, 2, 3, 4])
    Watchdog(oracle, timeout=1, interval=1)
    first, second = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    _complete(oracle, second)
    _complete(oracle, first)
    third = oracle.create_trial("tuner0")
    if killed_while == "waiting for a trial":
        assert oracle.create_trial("tuner1").status == "IDLE"  # every trial is out: tuner1 waits, then dies
    assert oracle.forget_silent_workers(timeout=1, now=time.time() + 60) == ["tuner1"]
    assert oracle.forget_silent_workers(timeout=1, now=time.time() + 60) == []
    _complete(oracle, third)
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert exit_chief(oracle), f"the chief still waits for {oracle.tuner_ids} ({oracle.ongoing_trials} out)"


def test_a_live_worker_between_trials_is_not_forgotten(tmp_path):
    oracle = GuardedRandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=3, seed=0)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.hyperparameters.Choice("frozen_blocks", [1, 2, 3, 4])
    trial = oracle.create_trial("tuner0")
    _complete(oracle, trial)  # the trial's end is news from tuner0, however long the trial took
    assert oracle.forget_silent_workers(timeout=60, now=time.time() + 30) == []
    assert oracle.tuner_ids == {"tuner0"}


def test_a_restarted_chief_gives_running_trials_back_to_their_workers_and_never_retries_an_ended_one(tmp_path):
    """The state a chief leaves when killed inside `end_trial` (trial saved as COMPLETED, still listed as out) and
    with another trial out on a live worker, reloaded as Keras Tuner reloads it on a restart."""
    def oracle():
        made = GuardedRandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=4, seed=0)
        made._set_project_dir(str(tmp_path), "p")
        made.hyperparameters.Choice("frozen_blocks", [1, 2, 3, 4])
        return made

    killed = oracle()
    ended, running = killed.create_trial("tuner0"), killed.create_trial("tuner1")
    _complete(killed, ended)
    killed.ongoing_trials["tuner0"] = ended  # end_trial saves before it forgets the trial; the kill fell between
    killed.save()
    state = json.loads((tmp_path / "p" / "oracle.json").read_text())
    for noted in ("trial_start", "trial_number"):  # Keras Tuner saves a new trial before its display notes it
        del state["display"][noted][running.trial_id]
    (tmp_path / "p" / "oracle.json").write_text(json.dumps(state))
    saved = state["ongoing_trials"]
    os.utime(tmp_path / "p" / f"trial_{running.trial_id}" / "trial.json", (0, 0))  # the chief was down a long time
    restarted = oracle()
    restarted.reload()
    assert sorted(restarted._retry_queue) == sorted([ended.trial_id, running.trial_id])  # what Keras Tuner does
    assert restarted.resume_trials_out(saved) == [running.trial_id]
    assert restarted._retry_queue == [] and {k: t.trial_id for k, t in restarted.ongoing_trials.items()} == {
        "tuner1": running.trial_id}
    assert restarted.reclaim_stalled_trials(timeout=60) == [], "the downtime counted against the live worker"
    assert restarted.create_trial("tuner0").trial_id not in (ended.trial_id, running.trial_id)
    # The worker ends its trial: Keras Tuner's display (as `tfxfer tune` shows it) knew no start for it and raised
    # KeyError to the worker, which died and left the chief waiting (a hostile tester's find).
    restarted.verbose = 1
    _complete(restarted, running)
    assert restarted.trials[running.trial_id].status == "COMPLETED" and "tuner1" not in restarted.ongoing_trials


class _ChiefKilledBeforeAnswering(OracleServicer):
    """Keras Tuner's own servicer over a real oracle, whose first answer to each kind of call is lost: the chief
    does the work, then dies before it answers (the worst moment for the worker to call again)."""

    def __init__(self, oracle):
        super().__init__(oracle)
        self.cut = []

    def _once(self, name, answer, context):
        if name not in self.cut:
            self.cut.append(name)
            context.abort(grpc.StatusCode.UNAVAILABLE, "Socket closed")
        return answer

    def CreateTrial(self, request, context):
        return self._once("CreateTrial", super().CreateTrial(request, context), context)

    def UpdateTrial(self, request, context):
        return self._once("UpdateTrial", super().UpdateTrial(request, context), context)

    def EndTrial(self, request, context):
        return self._once("EndTrial", super().EndTrial(request, context), context)


def test_a_worker_calls_again_when_the_chief_dies_during_a_call(tmp_path, monkeypatch):
    oracle = GuardedRandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=2, seed=0)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.hyperparameters.Choice("frozen_blocks", [1, 2, 3, 4])
    # A guarded oracle, as every TransferSearch makes: it ends each trial once.
    servicer, port = _ChiefKilledBeforeAnswering(oracle), free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    try:
        client = OracleClient(oracle)
        with pytest.raises(grpc.RpcError, match="Socket closed"):
            client.create_trial("tuner0")  # what a Keras Tuner worker does: its trial is lost
        servicer.cut.clear()
        patient_workers(client, patience=30)
        trial = client.create_trial("tuner0")
        assert trial.trial_id == "0" and list(oracle.trials) == ["0"]  # the same trial, not a second one
        client.update_trial(trial.trial_id, {"val_accuracy": 0.5}, step=0)
        trial.status = "COMPLETED"
        client.end_trial(trial)
        assert client.create_trial("tuner0").trial_id == "1"
        assert servicer.cut == ["CreateTrial", "UpdateTrial", "EndTrial"]
        assert oracle.trials["0"].status == "COMPLETED" and oracle.end_order == ["0"]
    finally:
        server.stop(0)


def test_a_chief_started_after_the_search_ended_tells_late_workers_to_stop_and_returns(tmp_path, monkeypatch):
    oracle = GuardedRandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=1, seed=0)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.hyperparameters.Choice("frozen_blocks", [1, 2, 3, 4])
    assert not oracle.has_ended()
    _complete(oracle, oracle.create_trial("tuner0"))
    assert oracle.has_ended()
    port = free_port()
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    chief = threading.Thread(target=answer_late_workers, args=(oracle, 3.0))
    started = time.monotonic()
    chief.start()
    assert OracleClient(oracle).create_trial("tuner1").status == "STOPPED"
    chief.join(timeout=30)
    assert not chief.is_alive() and time.monotonic() - started < 10


def test_a_workers_grpc_error_is_one_line_naming_the_chief(monkeypatch):
    """Errors from the chief other than UNAVAILABLE (which workers wait out) were printed as gRPC's repr, whose first
    line is "<_InactiveRpcError of RPC that terminated with:" and nothing else."""
    from tfxfer.cli.terminal import one_line

    port = free_port()
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = protos.get_service_grpc().OracleStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetSpace(protos.get_service().GetSpaceRequest(), timeout=0.5, wait_for_ready=True)
    line = one_line(raised.value)
    assert line.startswith(f"a call to the search's chief at 127.0.0.1:{port} failed: ") and line.endswith(
        "(DEADLINE_EXCEEDED)") and "\n" not in line, line
