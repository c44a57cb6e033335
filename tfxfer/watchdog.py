"""On a distributed search's chief: hand the trial of a worker that stopped answering to the other workers.

Keras Tuner's chief waits for every ongoing trial to end, so a worker killed mid-trial would keep the search from
ever finishing. Workers report after every epoch, and each report rewrites the trial's `trial.json`; a trial whose
file has not changed for `timeout` seconds is taken back, put on the oracle's retry queue (the next worker to ask
runs it again) and its worker forgotten, so the chief can finish.
"""

import logging
import os
import threading
import time

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


class Watchdog(threading.Thread):
    """A daemon thread that calls `reclaim_stalled_trials` every few seconds while the chief serves.

    Example:
        >>> Watchdog(tuner.oracle, timeout=1800).start()  # doctest: +SKIP
    """

    def __init__(self, oracle, timeout, interval=None):
        super().__init__(name="tfxfer-watchdog", daemon=True)
        self.oracle = oracle
        self.timeout = timeout
        self.interval = interval or max(1.0, min(30.0, timeout / 4))

    def run(self):
        while True:
            time.sleep(self.interval)
            reclaim_stalled_trials(self.oracle, self.timeout)
