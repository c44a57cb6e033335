"""Keras Tuner's tuners over tfxfer's guarded oracles (`tfxfer.search.distributed`), built as a search starts or
resumes; a resumed search says what it keeps and runs again, in tfxfer's words."""

import keras_tuner as kt

from tfxfer import _compat
from tfxfer.search.distributed import (GuardedBayesianOptimizationOracle, GuardedHyperbandOracle,
                                       GuardedRandomSearchOracle)


@_compat.fresh_hyperband_rounds
class _HyperbandTuner(kt.Hyperband):
    """Keras Tuner's Hyperband tuner (its brackets of epochs) over a given oracle; a trial that a later round
    continues trains afresh for its budget."""

    def __init__(self, oracle, hypermodel, **kwargs):
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


#: `{tuner name: (oracle class, tuner class)}`.
TUNERS = {"random": (GuardedRandomSearchOracle, kt.Tuner),
          "bayesian": (GuardedBayesianOptimizationOracle, kt.Tuner),
          "hyperband": (GuardedHyperbandOracle, _HyperbandTuner)}


def make_tuner(name, oracle_options, hypermodel, tuner_options, say_resumed=True):
    """Keras Tuner's tuner `name` (a key of `TUNERS`) over its guarded oracle. A search that its folder holds is
    reloaded, which is said in tfxfer's words: Keras Tuner printed "Reloading Tuner from <its file>", also when an
    export retrained a search's best trial.

    Example:
        >>> tuner = make_tuner("random", dict(objective="val_loss", max_trials=1), lambda hp: hp.Int("units", 1, 4),
        ...                    dict(directory=tmp_dir, project_name="untuned"))
        >>> type(tuner.oracle).__name__, tuner.oracle.get_space().values
        ('GuardedRandomSearchOracle', {'units': 1})
    """
    oracle_class, tuner_class = TUNERS[name]
    _compat.tuner_knows_a_notebook()  # Keras Tuner's own output, as tfxfer prints it
    _compat.quiet_condition_protos()
    _compat.quiet_reload_line()
    tuner = tuner_class(oracle_class(**oracle_options), hypermodel, **tuner_options)
    trials = {} if _compat.is_worker() else tuner.oracle.trials  # a worker's oracle is the chief's
    if say_resumed and trials:
        print(f"Resuming the search in {_compat.project_dir(tuner.oracle)}: {_resumed(trials, tuner.oracle)}.")
    return tuner


def _resumed(trials, oracle):
    """What a resumed search keeps and runs again, in words."""
    statuses = [trial.status for trial in trials.values()]
    status = kt.engine.trial.TrialStatus
    completed, failed = statuses.count(status.COMPLETED), statuses.count(status.FAILED)
    out = len(statuses) - completed - failed
    said = _trials(completed, "completed") + (f" and {failed} failed" if failed else "") + \
        (" is" if completed + failed == 1 else " are") + " kept"
    if out and _compat.is_chief():  # given back to their workers (`resume_trials_out`), which may be at work still
        return f"{said}; {_trials(out, 'running')} when the chief stopped go{'es' * (out == 1)} back to " \
               f"{'its worker' if out == 1 else 'their workers'}, or to another where one has gone"
    if out:
        return f"{said}; {_trials(out, 'cut short')} run{'s' * (out == 1)} again"
    asked = getattr(oracle, "max_trials", None)
    return f"{said}; nothing is left to run ({asked} asked for)" if asked and len(statuses) >= asked else said


def _trials(count, what):
    return f"{count} {what} trial{'s' * (count != 1)}"
