"""A distributed search that outlives its processes: workers that die, a chief killed and started again.

Keras Tuner's chief waits for every ongoing trial to end, so a worker killed mid-trial would keep the search from
ever finishing. Workers report after every epoch (tfxfer's trials do; Keras Tuner alone reports when a trial ends),
and each report rewrites the trial's `trial.json`; a trial whose file has not changed for `timeout` seconds is taken
back, put on the oracle's retry queue and its worker forgotten. Idle workers wait instead of leaving while trials
are out, so one of them runs it.

A chief that is killed and started again reloads its oracle from `oracle.json`, and Keras Tuner puts the trials that
were out onto the retry queue, although their workers are still running them (they wait for the chief with gRPC's
`wait_for_ready`): those trials would run twice. `resume_trials_out` gives them back to their workers instead. A
call that was under way when the chief died fails, though, whatever `wait_for_ready` says: `patient_workers` makes
a worker's calls wait for the restarted chief. A chief started again after the search ended has nothing to hand
out and no worker left to tell it so: `answer_late_workers` answers for a while and lets it return.
"""

import logging
import os
import threading
import time
from concurrent import futures

import grpc
import keras_tuner as kt

log = logging.getLogger(__name__)


@kt.synchronized
def reclaim_stalled_trials(oracle, timeout, now=None):
    """Moves ongoing trials not heard of for `timeout` seconds back to the retry queue.

    Args:
        oracle: The chief's Keras Tuner oracle.
        timeout: Seconds without a report after which a worker counts as gone; must exceed the longest epoch.
        now: The current time (`time.time()`), for the comparison with file modification times.

    Returns:
        The trial ids that were reclaimed.
    """
    now = time.time() if now is None else now
    reclaimed = []
    for tuner_id, trial in list(oracle.ongoing_trials.items()):
        path = os.path.join(oracle._project_dir, f"trial_{trial.trial_id}", "trial.json")
        if os.path.exists(path) and now - os.path.getmtime(path) > timeout:
            oracle.ongoing_trials.pop(tuner_id)
            oracle.tuner_ids.discard(tuner_id)
            oracle._retry_queue.append(trial.trial_id)
            oracle.save()
            reclaimed.append(trial.trial_id)
            log.warning("Worker %s sent nothing on trial %s for %.0f s; the trial goes to another worker.",
                        tuner_id, trial.trial_id, timeout)
    return reclaimed


def resume_trials_out(oracle, saved_ongoing):
    """After a reload, gives the trials that were out back to their workers, and never retries an ended trial.

    `Oracle.reload` empties `ongoing_trials` into the retry queue. On a restarted chief the workers behind those
    trials are still at work (or dead, which the `Watchdog` finds out): each trial becomes ongoing again under its
    worker, and its clock restarts so that the time the chief was down does not count against the worker. A trial
    that had already ended (the chief was killed between saving its end and forgetting it) leaves the queue.

    Args:
        oracle: The reloaded oracle of the chief.
        saved_ongoing: `{tuner id: trial id}`, the `ongoing_trials` of `oracle.json` as the killed chief left it.

    Returns:
        The trial ids given back to their workers.

    Example:
        >>> saved = json.load(open("runs/ants/oracle.json"))["ongoing_trials"]  # doctest: +SKIP
        >>> tuner = kt.RandomSearch(...)  # reloads  # doctest: +SKIP
        >>> resume_trials_out(tuner.oracle, saved)  # doctest: +SKIP
    """
    ended = {kt.engine.trial.TrialStatus.COMPLETED, kt.engine.trial.TrialStatus.FAILED}
    queue = [trial_id for trial_id in oracle._retry_queue if oracle.trials[trial_id].status not in ended]
    resumed = []
    for tuner_id, trial_id in saved_ongoing.items():
        if trial_id in queue:
            queue.remove(trial_id)
            oracle.ongoing_trials[tuner_id] = oracle.trials[trial_id]
            oracle.tuner_ids.add(tuner_id)
            path = os.path.join(oracle._project_dir, f"trial_{trial_id}", "trial.json")
            if os.path.exists(path):
                os.utime(path)
            resumed.append(trial_id)
    oracle._retry_queue[:] = queue
    oracle.save()
    return resumed


def keep_workers_while_trials_are_out(oracle, wait=1.0):
    """Makes the chief tell an idle worker to wait (IDLE) rather than to stop while other trials are still out.

    Keras Tuner's oracle answers STOPPED once every trial has been handed out, and a stopped worker leaves; a trial
    taken back from a dead worker afterwards would then find no one to run it. Waiting workers ask again after
    `wait` seconds and get the trial from the retry queue, or STOPPED once every trial has ended.
    """
    create_trial = oracle.create_trial

    def create_trial_or_wait(tuner_id):
        trial = create_trial(tuner_id)
        if trial.status == kt.engine.trial.TrialStatus.STOPPED and oracle.ongoing_trials:
            oracle.tuner_ids.add(tuner_id)  # still a worker the chief must wait for
            time.sleep(wait)
            return kt.engine.trial.Trial(oracle.get_space(), trial_id="waiting",
                                         status=kt.engine.trial.TrialStatus.IDLE)
        return trial

    oracle.create_trial = create_trial_or_wait


class Watchdog(threading.Thread):
    """A daemon thread that calls `reclaim_stalled_trials` every few seconds while the chief serves.

    Example:
        >>> Watchdog(tuner.oracle, timeout=1800).start()  # doctest: +SKIP
    """

    def __init__(self, oracle, timeout, interval=None):
        super().__init__(name="tfxfer-watchdog", daemon=True)
        keep_workers_while_trials_are_out(oracle)
        self.oracle = oracle
        self.timeout = timeout
        self.interval = interval or max(1.0, min(30.0, timeout / 4))

    def run(self):
        while True:
            time.sleep(self.interval)
            reclaim_stalled_trials(self.oracle, self.timeout)


def end_each_trial_once(oracle):
    """Makes the chief ignore the end of a trial that has already ended.

    A worker whose report of a trial's end was cut by the chief's death sends it again (`patient_workers`); Keras
    Tuner would count the trial's end twice.
    """
    end_trial = oracle.end_trial
    ended = (kt.engine.trial.TrialStatus.COMPLETED, kt.engine.trial.TrialStatus.FAILED)

    def end_trial_once(trial):
        known = oracle.trials.get(trial.trial_id)
        out = any(running.trial_id == trial.trial_id for running in oracle.ongoing_trials.values())
        if known is not None and known.status in ended and trial.trial_id in oracle.end_order and not out:
            log.info("Trial %s had already ended; its end, sent again, is ignored.", trial.trial_id)
            return
        end_trial(trial)

    oracle.end_trial = end_trial_once


def search_has_ended(oracle):
    """Whether every trial the oracle will make has been made and has ended (none out, none to retry)."""
    return bool(oracle.max_trials) and len(oracle.trials) >= oracle.max_trials and not oracle.ongoing_trials \
        and not oracle._retry_queue


def answer_late_workers(oracle, seconds=10.0):
    """Serves the chief's oracle for `seconds` (workers asking for a trial hear STOPPED), then stops serving.

    Keras Tuner's chief serves until a worker asks for a trial after the last one; a chief restarted once the
    search has ended would wait for ever.
    """
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(OracleServicer(oracle), server)
    server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    server.start()
    log.warning("Every trial of %s has ended; the chief answers late workers for %.0f s and returns.",
                oracle._project_dir, seconds)
    time.sleep(seconds)
    server.stop(grace=1).wait()


class _PatientStub:
    """A worker's gRPC stub to the chief whose calls, cut by the chief's death, wait for the chief to be back."""

    def __init__(self, stub, patience):
        self._stub, self._patience = stub, patience

    def __getattr__(self, name):
        call = getattr(self._stub, name)

        def patient_call(*args, **kwargs):
            deadline = time.monotonic() + self._patience
            while True:
                try:
                    return call(*args, **kwargs)
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                        raise
                    log.warning("The chief went away during %s (%s); waiting for it to come back.", name,
                                error.details())
                    time.sleep(1.0)

        return patient_call


def patient_workers(client, patience=3600.0):
    """Makes a worker's `OracleClient` call the chief again when a call fails because the chief went away.

    Calls that cannot reach the chief already wait (`wait_for_ready`); a call under way when the chief is killed
    fails with UNAVAILABLE instead, and the worker would lose its trial or die. Repeating one is safe on a chief
    that resumed with `resume_trials_out`: a repeated trial request gets the same trial, a repeated report the same
    numbers.

    Args:
        client: The worker tuner's oracle, a Keras Tuner `OracleClient`.
        patience: Seconds to keep calling again before the error is raised.
    """
    client.stub = _PatientStub(client.stub, patience)
