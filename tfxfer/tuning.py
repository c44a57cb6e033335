"""Keras Tuner search over freeze depth, learning rates and the head, on cached activations where possible.

Each trial is a `TransferModel`: with every block frozen it is deep feature extraction (the head trains at
`learning_rate`); with k < n blocks frozen the head first warms up on the frozen extractor, then the blocks after k
train at `fine_tune_learning_rate` (k = 0 is full fine-tuning, 0 < k < n mid-layer extraction). All trials share
one `FeatureCache`, so the extractor's output (every warm-up, every feature-extraction trial) is computed once per
search, and for Keras extractors the activations at each cut once per k.

The search is Keras Tuner's own: its oracles (random, Bayesian, Hyperband), its project folder (a search started
again with the same `directory` and `project_name` resumes: completed trials are not run again, a trial that was
running is run again), and its chief/worker distribution (set `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT`, or use `tfxfer tune --chief/--worker`).
"""

import dataclasses
import glob
import json
import os
import time

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
from keras_tuner.src.distribute.utils import has_chief_oracle, is_chief_oracle
from keras_tuner.src.engine import tuner_utils
from tensorflow.python.framework import ops as tf_ops

from tfxfer.cache import FeatureCache
from tfxfer.extractors import Extractor, load_extractor
from tfxfer.heads import Head, loss_and_metrics
from tfxfer.regimes import TransferModel
from tfxfer.watchdog import (
    Watchdog,
    answer_late_workers,
    end_each_trial_once,
    patient_workers,
    resume_trials_out,
    search_has_ended,
)

#: What tfxfer adds to Keras Tuner's project folder: the objective's direction, the extractor and the space.
SEARCH_FILE = "tfxfer_search.json"

TUNERS = {"random": kt.RandomSearch, "bayesian": kt.BayesianOptimization, "hyperband": kt.Hyperband}


def _values(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclasses.dataclass
class SearchSpace:
    """What a search explores. Ranges are `(low, high)`; choices are lists; a single value fixes a hyperparameter.

    Attributes:
        frozen_blocks: Choices of how many leading blocks stay frozen; None means every count from 0 to n_blocks.
        learning_rate: Adam's rate for the head (and for feature extraction): a log-scale range, or a value.
        fine_tune_learning_rate: Adam's rate for the unfrozen blocks after the warm-up: a log-scale range, or a
            value. Only trials with fewer than n_blocks frozen use it.
        hidden_units: Choices of one hidden Dense layer's size; 0 means none.
        dropout: A range of dropout rates (in steps of 0.1), or a value.
        l2: Choices of the head's L2 penalty.
        warmup_epochs: Head warm-up epochs before unfreezing: a value or choices.
        batch_size: None keeps the data's batch size; choices tune it (end-to-end trials only).

    Example:
        >>> SearchSpace(frozen_blocks=[10, 15, 19], learning_rate=1e-3).frozen_blocks
        [10, 15, 19]
    """

    frozen_blocks: list | None = None
    learning_rate: float | tuple = (1e-4, 1e-2)
    fine_tune_learning_rate: float | tuple = (1e-6, 1e-4)
    hidden_units: int | list = dataclasses.field(default_factory=lambda: [0, 128, 512])
    dropout: float | tuple = (0.0, 0.5)
    l2: float | list = dataclasses.field(default_factory=lambda: [0.0, 1e-5, 1e-4, 1e-3])
    warmup_epochs: int | list = 5

    def check(self, n_blocks):
        """Raises ValueError naming the first hyperparameter whose values are out of range."""
        frozen = list(range(n_blocks + 1)) if self.frozen_blocks is None else _values(self.frozen_blocks)
        bad = [k for k in frozen if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n_blocks]
        if bad or not frozen:
            raise ValueError(f"frozen_blocks must be whole numbers from 0 to {n_blocks} (the extractor's blocks); "
                             f"got {self.frozen_blocks!r}.")
        for name in ("learning_rate", "fine_tune_learning_rate"):
            values = _values(getattr(self, name))
            if len(values) not in (1, 2) or any(not isinstance(v, (int, float)) or not 0 < v < 1 for v in values) \
                    or values != sorted(values):
                raise ValueError(f"{name} must be a rate in (0, 1) or a range (low, high) of such rates; "
                                 f"got {getattr(self, name)!r}.")
        dropout = _values(self.dropout)
        if len(dropout) not in (1, 2) or any(not 0 <= v < 1 for v in dropout) or dropout != sorted(dropout):
            raise ValueError(f"dropout must be in [0, 1) or a range (low, high) within it; got {self.dropout!r}.")
        if any(not isinstance(u, int) or u < 0 for u in _values(self.hidden_units)):
            raise ValueError(f"hidden_units must be whole numbers >= 0; got {self.hidden_units!r}.")
        if any(not isinstance(v, (int, float)) or v < 0 for v in _values(self.l2)):
            raise ValueError(f"l2 must be numbers >= 0; got {self.l2!r}.")
        if any(not isinstance(v, int) or v < 0 for v in _values(self.warmup_epochs)):
            raise ValueError(f"warmup_epochs must be whole numbers >= 0; got {self.warmup_epochs!r}.")
        return frozen

    def sample(self, hp, n_blocks):
        """Declares the hyperparameters in `hp` and returns this trial's values as a dict."""
        frozen = self.check(n_blocks)
        values = {"frozen_blocks": _choice(hp, "frozen_blocks", frozen)}
        values["learning_rate"] = _rate(hp, "learning_rate", self.learning_rate)
        if any(k < n_blocks for k in frozen):
            with hp.conditional_scope("frozen_blocks", [k for k in frozen if k < n_blocks]):
                values["fine_tune_learning_rate"] = _rate(hp, "fine_tune_learning_rate", self.fine_tune_learning_rate)
                values["warmup_epochs"] = _choice(hp, "warmup_epochs", _values(self.warmup_epochs))
        values["hidden_units"] = _choice(hp, "hidden_units", _values(self.hidden_units))
        dropout = _values(self.dropout)
        values["dropout"] = (hp.Fixed("dropout", dropout[0]) if len(dropout) == 1 else
                             hp.Float("dropout", dropout[0], dropout[1], step=0.1))
        values["l2"] = _choice(hp, "l2", _values(self.l2))
        return values


def _choice(hp, name, values):
    return hp.Fixed(name, values[0]) if len(values) == 1 else hp.Choice(name, values, ordered=True)


def _rate(hp, name, value):
    values = _values(value)
    return hp.Fixed(name, values[0]) if len(values) == 1 else hp.Float(name, values[0], values[1], sampling="log")


class TransferHyperModel(kt.HyperModel):
    """A Keras Tuner HyperModel whose trials are `TransferModel`s sharing one extractor and one `FeatureCache`.

    The extractor is loaded once; each trial starts from its pretrained weights (restored, not reloaded), so the
    cache keys, which include the weights before each cut, match across trials.

    Args:
        extractor: An `Extractor`, or a source for `tfxfer.load_extractor`.
        data: The `DataSplits` to train and validate on.
        space: A `SearchSpace`.
        epochs: Most epochs of each phase (early stopping may end it sooner; Hyperband's budget caps it).
        patience: Early-stopping patience, None for none.
        cache: A `FeatureCache`, or False to train every trial end to end.
        strategy: A `tf.distribute.Strategy` to build and train in.
        extractor_options: Keyword arguments of `load_extractor`.
        verbose: Keras' verbosity for each trial's `fit`.
    """

    def __init__(self, extractor, data, space=None, *, epochs=20, patience=3, cache=None, strategy=None,
                 extractor_options=None, verbose=0):
        super().__init__(name="tfxfer")
        self.data = data
        self.space = space or SearchSpace()
        self.epochs = epochs
        self.patience = patience
        self.cache = FeatureCache(progress=bool(verbose)) if cache is None else cache
        self.strategy = strategy
        self.verbose = verbose
        scope = strategy.scope() if strategy is not None else _no_scope()
        with scope:
            self.extractor = extractor if isinstance(extractor, Extractor) else load_extractor(
                extractor, **(extractor_options or {}))
        self.space.check(self.extractor.n_blocks)
        self._pretrained = [w.numpy() for w in self.extractor.weights]
        self.extractor.mark_graphs()
        self._trial = None
        self._gradients = _custom_gradients()

    def build(self, hp):
        values = self.space.sample(hp, self.extractor.n_blocks)
        # The previous trial's model and its traced train step, so that memory stays flat over a search.
        self.extractor.release_models()
        _forget_custom_gradients(keep=self._gradients)
        for weight, value in zip(self.extractor.weights, self._pretrained):
            weight.assign(value)
        n_blocks, frozen = self.extractor.n_blocks, values["frozen_blocks"]
        self._trial = TransferModel(
            self.extractor,
            regime="feature-extraction" if frozen == n_blocks else "fine-tune",
            freeze_blocks=frozen,
            head=Head(hidden_units=(values["hidden_units"],) if values["hidden_units"] else (),
                      dropout=values["dropout"], l2=values["l2"]),
            learning_rate=values["learning_rate"],
            # Feature-extraction trials leave the conditional rates unset; they do not use them.
            fine_tune_learning_rate=values.get("fine_tune_learning_rate") or 1e-5,
            warmup_epochs=values.get("warmup_epochs") or 0,
            epochs=self.epochs,
            patience=self.patience,
            cache=self.cache,
            strategy=self.strategy,
            verbose=self.verbose,
        )
        return self._trial.build(self.data.task)

    def fit(self, hp, model, *args, callbacks=None, epochs=None, **kwargs):
        trial = self._trial
        if epochs is not None:  # Hyperband's budget for this trial.
            trial.epochs = min(trial.epochs, epochs)
        callbacks = list(callbacks or [])
        heartbeats = [_Heartbeat(c.tuner, c.trial) for c in callbacks if isinstance(c, tuner_utils.TunerCallback)]
        trial.train(self.data, callbacks=callbacks + heartbeats)
        objective = loss_and_metrics(self.data.task)[2]
        history = trial.history_
        scores = history.get(objective, history.get("val_loss"))
        best = int(np.argmax(scores) if objective != "val_loss" else np.argmin(scores))
        result = {name: float(values[best]) for name, values in history.items()}
        result.update(epochs=float(len(scores)), seconds=float(trial.fit_seconds_),
                      cached_phases=float(sum(trial.cached_phases_)))
        for heartbeat in heartbeats:
            # Once a trial has metrics, Keras Tuner ignores what fit returns; the totals are reported here instead.
            heartbeat.tuner.oracle.update_trial(heartbeat.trial.trial_id, result, step=len(scores))
        return result


def _gradient_registry():
    """TensorFlow's global table of gradient functions by op type name (empty if a TensorFlow lacks it)."""
    return getattr(getattr(tf_ops, "_gradient_registry", None), "_registry", {})


def _custom_gradients():
    """The names under which `tf.custom_gradient` has registered gradient functions in graphs traced so far."""
    return {name for name in _gradient_registry() if name.startswith("CustomGradient-")}


def _forget_custom_gradients(keep):
    """Unregisters the gradient functions that `tf.custom_gradient` registered since `keep` was taken.

    Every Keras train step traced on TensorFlow sums its gradients with `ReplicaContext.all_reduce`, which uses
    `tf.custom_gradient`; in a graph that registers a gradient function in TensorFlow's global registry, for good,
    and the function holds the whole traced step (its graph, the optimizer's functions). A search traces new steps
    for every trial, so each trial kept tens of MB (37 MB a trial with MobileNetV2). The steps of a released
    trial are never traced or differentiated again, so their registrations can go.
    """
    registry = _gradient_registry()
    for name in _custom_gradients() - keep:
        del registry[name]


class _Heartbeat(keras.callbacks.Callback):
    """Reports a trial's metrics to the oracle after every epoch.

    Keras Tuner 1.4 reports only when a trial ends; on a distributed search each report rewrites the trial's
    `trial.json` on the chief, which is how the chief's `Watchdog` tells a slow worker from a dead one.
    """

    def __init__(self, tuner, trial):
        super().__init__()
        self.tuner, self.trial = tuner, trial

    def on_epoch_end(self, epoch, logs=None):
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        if self.tuner.oracle.objective.name in metrics:
            self.tuner.oracle.update_trial(self.trial.trial_id, metrics, step=epoch)


class _no_scope:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


class TransferSearch:
    """A Keras Tuner search over freeze depth, learning rates and the head, resumable and distributable.

    Args:
        extractor: An `Extractor` or a source for `tfxfer.load_extractor`.
        space: A `SearchSpace` (defaults cover every freeze depth, both learning rates and the head).
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: Trials to run (for Hyperband, its `max_epochs` is `epochs` instead).
        objective: A Keras Tuner objective; by default from the task: `val_accuracy` (multi-class), `val_auc`
            (multi-label), `val_loss` (regression).
        epochs: Most epochs of each phase of a trial.
        patience: Early-stopping patience.
        directory: Keras Tuner's folder; the feature cache lives in `<directory>/<project_name>/feature_cache`.
        project_name: The search's name in `directory`. A search with the same folder and name resumes.
        overwrite: Start afresh, deleting an earlier search of that name.
        seed: The oracle's seed.
        cache: Share cached activations across trials (True) or train every trial end to end (False).
        strategy: A `tf.distribute.Strategy`, e.g. from `tfxfer.pick_strategy()`.
        extractor_options: Keyword arguments of `load_extractor`.
        worker_timeout: On a distributed search's chief: seconds without a report from a worker (reports come
            after every epoch) after which its trial goes to another worker; None never gives up on a worker.
        verbose: Keras Tuner's and Keras' verbosity.
        **tuner_options: More arguments of the Keras Tuner class (e.g. `num_initial_points`, `factor`).

    Example:
        >>> search = TransferSearch("MobileNetV2", max_trials=20, directory="runs", project_name="ants")  # doctest: +SKIP
        >>> table = search.search(data)  # doctest: +SKIP
        >>> fitted = search.best_model(data)  # doctest: +SKIP
    """

    def __init__(self, extractor, *, space=None, tuner="random", max_trials=10, objective=None, epochs=20, patience=3,
                 directory="tfxfer_search", project_name="search", overwrite=False, seed=0, cache=True,
                 strategy=None, extractor_options=None, worker_timeout=1800, verbose=1, **tuner_options):
        if tuner not in TUNERS:
            raise ValueError(f"tuner must be one of {sorted(TUNERS)}; got {tuner!r}.")
        if not isinstance(max_trials, int) or max_trials < 1:
            raise ValueError(f"max_trials must be a whole number >= 1; got {max_trials!r}.")
        self.extractor = extractor
        self.space = space or SearchSpace()
        self.tuner = tuner
        self.max_trials = max_trials
        self.objective = objective
        self.epochs = epochs
        self.patience = patience
        self.directory = str(directory)
        self.project_name = project_name
        self.overwrite = overwrite
        self.seed = seed
        self.cache = cache
        self.strategy = strategy
        self.extractor_options = extractor_options
        self.worker_timeout = worker_timeout
        self.verbose = verbose
        self.tuner_options = tuner_options

    @property
    def project_dir(self):
        """The folder of this search's trials and oracle state."""
        return os.path.join(self.directory, self.project_name)

    def _tuner(self, data):
        cache = FeatureCache(os.path.join(self.project_dir, "feature_cache"), progress=bool(self.verbose)) \
            if self.cache else False
        hypermodel = TransferHyperModel(self.extractor, data, self.space, epochs=self.epochs, patience=self.patience,
                                        cache=cache, strategy=self.strategy, extractor_options=self.extractor_options,
                                        verbose=0 if self.verbose < 2 else 1)
        objective = self.objective or _objective(data.task)
        options = dict(objective=objective, directory=self.directory, project_name=self.project_name,
                       overwrite=self.overwrite, seed=self.seed, **self.tuner_options)
        if self.tuner == "hyperband":
            options.setdefault("max_epochs", self.epochs)
        else:
            options["max_trials"] = self.max_trials
        self.hypermodel_ = hypermodel
        state = os.path.join(self.project_dir, "oracle.json")
        try:
            saved = None if self.overwrite or not os.path.isfile(state) else _read_json(state)
            self.tuner_ = TUNERS[self.tuner](hypermodel, **options)
        except json.JSONDecodeError:
            damaged = [path for path in glob.glob(os.path.join(self.project_dir, "*.json")) +
                       glob.glob(os.path.join(self.project_dir, "trial_*", "trial.json")) if not _readable_json(path)]
            raise ValueError(
                f"Cannot resume the search in {self.project_dir}: {', '.join(damaged) or 'its state'} is damaged "
                "(a process was killed while Keras Tuner wrote it). Restore the file, or start afresh with "
                "overwrite=True (tfxfer tune --overwrite), which deletes the earlier trials."
            ) from None
        if saved is not None and isinstance(self.tuner_.oracle, kt.Oracle):  # it was reloaded here, not on a chief
            resume_trials_out(self.tuner_.oracle, saved["ongoing_trials"] if is_chief_oracle() else {})
        if has_chief_oracle() and not is_chief_oracle():  # a worker: its oracle is a client of the chief's
            patient_workers(self.tuner_.oracle)
        return self.tuner_

    def search(self, data, callbacks=None):
        """Runs (or resumes) the search on `data` and returns its results table.

        Args:
            data: A `DataSplits` with a validation split.
            callbacks: Keras callbacks for every trial's training (they see the whole model).

        Returns:
            A DataFrame, one row per trial, best first (see `search_results`).
        """
        if getattr(data, "validation", None) is None:
            raise ValueError("A search needs a validation split to score trials: load the data with "
                             "validation_split > 0 or a val/ folder.")
        tuner = self._tuner(data)
        objective = tuner.oracle.objective
        _write_json(os.path.join(self.project_dir, SEARCH_FILE), {
            "objective": objective.name, "direction": objective.direction, "tuner": self.tuner,
            "extractor": getattr(self.hypermodel_.extractor, "source", str(self.extractor)),
            "n_blocks": self.hypermodel_.extractor.n_blocks, "space": dataclasses.asdict(self.space)})
        started = time.perf_counter()
        chief = is_chief_oracle()
        if chief:
            end_each_trial_once(tuner.oracle)
            if self.worker_timeout:
                Watchdog(tuner.oracle, self.worker_timeout).start()
        if chief and search_has_ended(tuner.oracle):
            answer_late_workers(tuner.oracle)
        else:
            tuner.search(callbacks=callbacks or [], verbose=self.verbose)
        self.search_seconds_ = time.perf_counter() - started
        self.best_hyperparameters_ = self._best_values(tuner)
        return self.results()

    @staticmethod
    def _best_values(tuner):
        best = tuner.get_best_hyperparameters(1)
        return dict(best[0].values) if best else None

    def results(self):
        """The results table, rebuilt from the project folder (works for a finished, killed or running search)."""
        return search_results(self.directory, self.project_name)

    def best_model(self, data, *, retrain=True):
        """The best trial's model.

        Args:
            data: The `DataSplits` the search ran on.
            retrain: Train the best configuration again from the pretrained weights (cheap on cached
                activations) and return it fitted; False returns the unfitted `TransferModel`.

        Returns:
            A `TransferModel` with the best hyperparameters.
        """
        tuner = getattr(self, "tuner_", None) or self._tuner(data)
        best = tuner.get_best_hyperparameters(1)
        if not best:
            raise ValueError(f"No completed trial in {self.project_dir}; run search() first.")
        self.hypermodel_.build(best[0])
        model = self.hypermodel_._trial
        return model.train(data) if retrain else model


def _write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.partial", "w") as file:
        json.dump(value, file, indent=2)
    os.replace(f"{path}.partial", path)


def _readable_json(path):
    try:
        _read_json(path)
        return True
    except ValueError:
        return False


def _read_json(path):
    with open(path) as file:
        return json.load(file)


def _objective(task):
    name = loss_and_metrics(task)[2]
    return kt.Objective(name, "min" if name.endswith("loss") else "max")


def search_results(directory, project_name):
    """A search's results table, read from Keras Tuner's trial files; no tuner or data needed.

    Args:
        directory: The search's `directory`.
        project_name: Its `project_name`.

    Returns:
        A DataFrame with one row per trial: `trial_id`, `status` (COMPLETED, RUNNING, FAILED, INVALID...), every
        hyperparameter, `score` (the objective), the other metrics at the best epoch, `epochs`, `seconds`,
        sorted best first (trials without a score last).

    Example:
        >>> search_results("runs", "ants").head()  # doctest: +SKIP
    """
    settings = os.path.join(directory, project_name, SEARCH_FILE)
    direction = _read_json(settings).get("direction", "max") if os.path.isfile(settings) else "max"
    rows = []
    for path in sorted(glob.glob(os.path.join(directory, project_name, "trial_*", "trial.json"))):
        trial = kt.engine.trial.Trial.load(path)
        row = {"trial_id": trial.trial_id, "status": trial.status}
        row.update(trial.hyperparameters.values)
        row["score"] = trial.score
        objective = trial.metrics.metrics
        for name, history in objective.items():
            best = history.get_best_value()
            if best is not None and name != "cached_phases":
                row[name] = best
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for column in ("epochs", "seconds"):
        if column in table:
            table[column] = table[column].astype(float)
    table = table.sort_values("score", ascending=direction == "min", na_position="last", kind="stable")
    return table.reset_index(drop=True)


def pick_strategy(strategy=None):
    """The distribution strategy to build in: the given one, else a TPU, else several GPUs, else the default.

    Args:
        strategy: A strategy to use as it is.

    Returns:
        `TPUStrategy` when a TPU answers `TPUClusterResolver` (Colab, Cloud TPU VMs), `MirroredStrategy` when more
        than one GPU is visible, otherwise the default strategy.

    Example:
        >>> pick_strategy().num_replicas_in_sync  # doctest: +SKIP
        1
    """
    import tensorflow as tf

    if strategy is not None:
        return strategy
    # Colab's TPU runtime answers the resolver's defaults; a Cloud TPU VM answers tpu="local".
    for options in ({}, {"tpu": "local"}):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(**options)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError):
            continue
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()

