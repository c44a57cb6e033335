"""A distributed search that outlives its processes: workers that die, a chief killed and started again.

Keras Tuner's chief waits for every ongoing trial to end, so a worker killed mid-trial would keep the search from
ever finishing. Workers report after every epoch (tfxfer's trials do; Keras Tuner alone reports when a trial ends),
and each report rewrites the trial's `trial.json`; the chief's `Watchdog` takes back a trial whose file has not
changed for `timeout` seconds, puts it on the oracle's retry queue and forgets its worker; a worker killed with no
trial out (between trials) is forgotten once it has not asked for one for `timeout` seconds. Idle workers wait
instead of leaving while trials are out, so one of them runs it.

A chief that is killed and started again reloads its oracle from `oracle.json`, and Keras Tuner puts the trials that
were out onto the retry queue, although their workers are still running them (they wait for the chief with gRPC's
`wait_for_ready`): those trials would run twice. `resume_trials_out` gives them back to their workers instead. A
call that was under way when the chief died fails, though, whatever `wait_for_ready` says: `patient_workers` makes
a worker's calls wait for the restarted chief, and the chief ends each trial once however often its end is sent. A
chief started again after the search ended has nothing to hand out and no worker left to tell it so:
`answer_late_workers` answers for a while and lets it return.

The guards are Keras Tuner oracles subclassed with `keras_tuner.synchronized` overrides, so their checks run under
the oracle's lock, as Keras Tuner's own do.
"""

import logging
import os
import threading
import time
from concurrent import futures

import grpc
import keras_tuner as kt
import numpy as np

from tfxfer import _compat
from tfxfer.search.results import SEARCH_DIGEST

log = logging.getLogger(__name__)

_ENDED = (kt.engine.trial.TrialStatus.COMPLETED, kt.engine.trial.TrialStatus.FAILED)


class _Guarded:
    """What a tfxfer search adds to a Keras Tuner oracle (mixed in before the oracle class).

    Attributes:
        idle_wait: Seconds an idle worker waits before it asks again while other trials are still out; None (the
            default, and Keras Tuner's behaviour) tells it to stop. The chief's `Watchdog` sets it.
    """

    idle_wait = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _compat.tidy_trial_table(self, [SEARCH_DIGEST])
        self.heard = {}  # {tuner id: time.time() of its last request for a trial or report of a trial's end}

    def create_trial(self, tuner_id):
        trial = self._create_trial_or_wait(tuner_id)
        if trial.status == kt.engine.trial.TrialStatus.IDLE and self.idle_wait:
            time.sleep(self.idle_wait)  # outside the lock: the other workers' reports go on
        return trial

    @kt.synchronized
    def _create_trial_or_wait(self, tuner_id):
        """Keras Tuner's answer, except that an idle worker waits (IDLE) rather than stops while trials are out.

        Keras Tuner answers STOPPED once every trial has been handed out, and a stopped worker leaves; a trial taken
        back from a dead worker afterwards would then find no one to run it.
        """
        self.heard[tuner_id] = time.time()
        running = self.ongoing_trials.get(tuner_id)  # asked again, Keras Tuner gives a tuner its running trial back
        trial = super().create_trial(tuner_id)
        if trial.status == kt.engine.trial.TrialStatus.RUNNING and trial is not running and any(
                history.get_history() for history in trial.metrics.metrics.values()):
            # A trial run again (its worker or process died): Keras Tuner keeps the earlier run's reports, which the
            # new run's would be averaged with, step by step.
            trial.metrics = type(trial.metrics)()
        if trial.status == kt.engine.trial.TrialStatus.STOPPED and self.idle_wait and self.ongoing_trials:
            self.tuner_ids.add(tuner_id)  # still a worker the chief must wait for
            return kt.engine.trial.Trial(self.get_space(), trial_id="waiting",
                                         status=kt.engine.trial.TrialStatus.IDLE)
        return trial

    def score_trial(self, trial):
        """Scores a trial by its final report (`TransferHyperModel.fit` makes it, at the step after its last epoch,
        with the metrics of the epoch whose weights the trial ends with). Keras Tuner takes the best over every
        epoch reported, which may be a fine-tuning trial's head warm-up or an epoch that early stopping passed
        over: no model that the search gives back."""
        name = self.objective.name
        if not (trial.metrics.exists("epochs") and trial.metrics.exists(name)):
            return super().score_trial(trial)
        final = int(trial.metrics.get_last_value("epochs"))
        scores = [obs.mean() for obs in trial.metrics.get_history(name) if obs.step == final]
        if not scores:
            return super().score_trial(trial)
        worst = float("-inf") if self.objective.direction == "max" else float("inf")
        # A trial that ended on NaN (diverged) completes with the worst score, as Keras Tuner's best over its epochs
        # kept it; NaN would mark it INVALID, and three in a row would end the search.
        trial.score, trial.best_step = worst if np.isnan(scores[0]) else scores[0], final

    @kt.synchronized
    def end_trial(self, trial):
        """Ends a trial once: a worker whose report of a trial's end was cut by the chief's death sends it again
        (`patient_workers`), and Keras Tuner would count the trial's end twice."""
        known = self.trials.get(trial.trial_id)
        workers = [tuner_id for tuner_id, running in self.ongoing_trials.items() if running.trial_id == trial.trial_id]
        self.heard.update(dict.fromkeys(workers, time.time()))
        out = bool(workers)
        if known is not None and known.status in _ENDED and trial.trial_id in self.end_order and not out:
            log.info("Trial %s had already ended; its end, sent again, is ignored.", trial.trial_id)
            return
        super().end_trial(trial)

    @kt.synchronized
    def reclaim_stalled_trials(self, timeout, now=None):
        """Moves ongoing trials not heard of for `timeout` seconds back to the retry queue.

        Args:
            timeout: Seconds without a report after which a worker counts as gone; must exceed the longest epoch.
            now: The current time (`time.time()`), for the comparison with file modification times.

        Returns:
            The trial ids that were reclaimed.
        """
        now = time.time() if now is None else now
        reclaimed = []
        for tuner_id, trial in list(self.ongoing_trials.items()):
            path = os.path.join(_compat.project_dir(self), f"trial_{trial.trial_id}", "trial.json")
            if os.path.exists(path) and now - os.path.getmtime(path) > timeout:
                self.ongoing_trials.pop(tuner_id)
                self.tuner_ids.discard(tuner_id)
                _compat.retry_queue(self).append(trial.trial_id)
                self.save()
                reclaimed.append(trial.trial_id)
                log.warning("Worker %s sent nothing on trial %s for %.0f s; the trial goes to another worker.",
                            tuner_id, trial.trial_id, timeout)
        return reclaimed

    @kt.synchronized
    def forget_silent_workers(self, timeout, now=None):
        """Stops waiting for workers with no trial out that have not asked for one for `timeout` seconds.

        A worker joins `tuner_ids` when it asks for a trial and leaves only when told to stop, and Keras Tuner's
        chief ends once `tuner_ids` is empty: a worker killed after its trial ended, or while it waited for one,
        would keep the chief waiting for ever. A live worker asks within seconds of a trial's end, and every
        `idle_wait` while it waits.

        Args:
            timeout: Seconds of silence after which a worker with no trial out counts as gone.
            now: The current time (`time.time()`).

        Returns:
            The tuner ids forgotten.
        """
        now = time.time() if now is None else now
        silent = [tuner_id for tuner_id in sorted(self.tuner_ids) if tuner_id not in self.ongoing_trials
                  and now - self.heard.setdefault(tuner_id, now) > timeout]
        for tuner_id in silent:
            self.tuner_ids.discard(tuner_id)
            log.warning("Worker %s has not asked for a trial for %.0f s; the chief stops waiting for it.",
                        tuner_id, timeout)
        return silent

    @kt.synchronized
    def resume_trials_out(self, saved_ongoing):
        """After a reload, gives the trials that were out back to their workers, and never retries an ended trial.

        `Oracle.reload` empties `ongoing_trials` into the retry queue. On a restarted chief the workers behind those
        trials are still at work (or dead, which the `Watchdog` finds out): each trial becomes ongoing again under
        its worker, and its clock restarts so that the time the chief was down does not count against the worker. A
        trial that had already ended (the chief was killed between saving its end and forgetting it) leaves the
        queue. Keras Tuner's "Total elapsed time" counts the ended trials' seconds and this run's, not the pause; its
        display knows when each trial given back started (see `tfxfer._compat.resume_display`).

        Args:
            saved_ongoing: `{tuner id: trial id}`, the `ongoing_trials` of `oracle.json` as the killed chief left it.

        Returns:
            The trial ids given back to their workers.
        """
        pending = _compat.retry_queue(self)
        queue = [trial_id for trial_id in pending if self.trials[trial_id].status not in _ENDED]
        resumed = []
        for tuner_id, trial_id in saved_ongoing.items():
            if trial_id in queue:
                queue.remove(trial_id)
                self.ongoing_trials[tuner_id] = self.trials[trial_id]
                self.tuner_ids.add(tuner_id)
                path = os.path.join(_compat.project_dir(self), f"trial_{trial_id}", "trial.json")
                if os.path.exists(path):
                    os.utime(path)
                resumed.append(trial_id)
        pending[:] = queue
        _compat.resume_display(self, sum(trial.metrics.get_last_value("seconds") or 0 for trial in self.trials.values()
                                         if trial.metrics.exists("seconds")), resumed)
        self.save()
        return resumed

    def has_ended(self):
        """Whether every trial the oracle will make has been made and has ended (none out, none to retry)."""
        return bool(self.max_trials) and len(self.trials) >= self.max_trials and not self.ongoing_trials \
            and not _compat.retry_queue(self)


class GuardedRandomSearchOracle(_Guarded, kt.oracles.RandomSearchOracle):
    """Keras Tuner's random search oracle with tfxfer's guards (see `_Guarded`)."""


class GuardedBayesianOptimizationOracle(_Guarded, kt.oracles.BayesianOptimizationOracle):
    """Keras Tuner's Bayesian optimization oracle with tfxfer's guards (see `_Guarded`)."""


class GuardedHyperbandOracle(_Guarded, kt.oracles.HyperbandOracle):
    """Keras Tuner's Hyperband oracle with tfxfer's guards (see `_Guarded`).

    Example:
        >>> oracle = GuardedHyperbandOracle(objective=kt.Objective("val_accuracy", "max"), max_epochs=3)
        >>> oracle.idle_wait is None, isinstance(oracle, kt.oracles.HyperbandOracle)
        (True, True)
    """


class Watchdog(threading.Thread):
    """A daemon thread that calls `reclaim_stalled_trials` and `forget_silent_workers` every few seconds while the
    chief serves, and makes idle workers wait for trials it may reclaim.

    Example:
        >>> Watchdog(tuner.oracle, timeout=1800).start()  # doctest: +SKIP
    """

    def __init__(self, oracle, timeout, interval=None):
        super().__init__(name="tfxfer-watchdog", daemon=True)
        oracle.idle_wait = 1.0
        self.oracle = oracle
        self.timeout = timeout
        self.interval = interval or max(1.0, min(30.0, timeout / 4))

    def run(self):
        while True:
            time.sleep(self.interval)
            self.oracle.reclaim_stalled_trials(self.timeout)
            self.oracle.forget_silent_workers(self.timeout)


def answer_late_workers(oracle, seconds=10.0):
    """Serves the chief's oracle for `seconds` (workers asking for a trial hear STOPPED), then stops serving.

    Keras Tuner's chief serves until a worker asks for a trial after the last one; a chief restarted once the
    search has ended would wait for ever.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    _compat.add_oracle_service(server, oracle)
    server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    server.start()
    log.warning("Every trial of %s has ended; the chief answers late workers for %.0f s and returns.",
                _compat.project_dir(oracle), seconds)
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


def check_chiefs_search(client, digest):
    """Refuses a worker whose search is not its chief's (other data, extractor weights, image size, space or
    settings: `search_digest`): its trials would fill the chief's table with scores of another search, silently."""
    chief = client.get_space().values.get(SEARCH_DIGEST)  # None from a chief of an earlier tfxfer
    if chief is not None and chief != digest:
        address = f"{os.environ.get('KERASTUNER_ORACLE_IP')}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"
        raise ValueError(f"This worker's search is not the one its chief at {address} runs (digest {digest} here, "
                         f"{chief} there): other data, extractor weights, image size, search space or settings. Its "
                         "trials would be scored on another search's table: start the worker with the chief's data, "
                         "extractor and arguments.")


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
