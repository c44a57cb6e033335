"""The Keras Tuner HyperModel of a search: each trial a `TransferModel` on one shared extractor and feature cache,
with the memory of released trials given back."""

import contextlib
import os
import select

import keras
import keras_tuner as kt

from tfxfer import _compat
from tfxfer.extractors import Extractor, load_extractor
from tfxfer.search.results import SEARCH_DIGEST
from tfxfer.search.space import SearchSpace
from tfxfer.training import FeatureCache, Head, TransferModel


class ReaderGone(BrokenPipeError, kt.errors.FatalError):
    """The reader of stdout or stderr went away during a trial (`tfxfer tune ... | head`): a BrokenPipeError that
    stops the search as Ctrl-C does, so that the trial stays cut short and runs again on a resume. Keras Tuner
    recorded it as a failed trial, which a resume kept and never ran again. (A pipe of the user's own that breaks
    fails its trial, as any error does.)"""


def _output_gone():
    """Whether the reader of this process's stdout or stderr has gone (a pipe whose other end is closed)."""
    poller = select.poll()
    for fd in (1, 2):
        poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


class TransferHyperModel(kt.HyperModel):
    """A Keras Tuner HyperModel whose trials are `TransferModel`s sharing one extractor and one `FeatureCache`.

    The extractor is loaded once; each trial starts from its pretrained weights (restored, not reloaded), so the
    cache keys, which include the weights before each cut, match across trials. Across several extractors, each is
    loaded once and a trial's `candidate` hyperparameter says which one it trains, and how deep.

    Args:
        extractor: An `Extractor`, or a source for `tfxfer.load_extractor`; or a list of them (or of `(source,
            options)` pairs), with `candidates`. Each extractor gets the data decoded for it (its image size and
            value range, `DataSplits.for_extractor`), one extractor too.
        data: The `DataSplits` to train and validate on.
        space: A `SearchSpace`.
        epochs: Most epochs of each phase (early stopping may end it sooner; Hyperband's budget caps it).
        patience: Early-stopping patience, None for none.
        cache: A `FeatureCache`, or False to train every trial end to end.
        strategy: A `tf.distribute.Strategy` to build and train in.
        extractor_options: Keyword arguments of `load_extractor`.
        candidates: With several extractors, the `"extractor@depth"` values of the `candidate` hyperparameter
            (see `tfxfer.search.candidates`), naming the extractors by `extractor_key`.
        verbose: Keras' verbosity for each trial's `fit`.
        seed: Seeds Python, NumPy and TensorFlow before each trial's model is built, so that a trial's head starts
            from the same weights in every run of the search; None for none.
    """

    def __init__(self, extractor, data, space=None, *, epochs=20, patience=3, cache=None, strategy=None,
                 extractor_options=None, candidates=None, verbose=0, seed=0):
        super().__init__(name="tfxfer")
        self.data = data
        self.space = space or SearchSpace()
        self.epochs = epochs
        self.patience = patience
        self.cache = FeatureCache(progress=bool(verbose)) if cache is None else cache
        self.strategy = strategy
        self.verbose = verbose
        self.candidates = candidates
        self.seed = seed
        self.digest = None  # `search_digest` of the search, set by `TransferSearch`
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        with scope:
            self.members = {}
            several = isinstance(extractor, list)
            for source in extractor if several else [extractor]:
                source, options = source if isinstance(source, tuple) else (source, extractor_options)
                member = _Member(source, data, options)
                key = extractor_key(member.extractor.source, options if several else None)
                if key in self.members:
                    raise ValueError(f"Two of the extractors are named {key!r}; a search across extractors tells "
                                     "them apart by name: give them different sources (or Keras model names).")
                self.members[key] = member
        self.extractor = next(iter(self.members.values())).extractor  # the first; a trial's is `_trial.extractor`
        if not several:
            self.space.check(self.extractor.n_blocks)
        self.fingerprint = [member.fingerprint for member in self.members.values()] if several \
            else next(iter(self.members.values())).fingerprint
        self._trial = None
        self._gradients = _custom_gradients()

    def follow_record(self, names, fingerprints):
        """On a resume: the members named and ordered as the search recorded them, matched by their weights, so that
        an extractor whose path is spelled otherwise or has moved, or extractors given in another order, are the
        same search (its stored candidates name them so). Other weights are left for the identity check to name."""
        mine = {member.fingerprint: name for name, member in self.members.items()}
        if sorted(mine) != sorted(fingerprints) or len(set(fingerprints)) != len(fingerprints):
            return
        self.members = {name: self.members[mine[fingerprint]] for name, fingerprint in zip(names, fingerprints)}
        self.fingerprint = list(fingerprints)

    @property
    def n_blocks(self):
        """`{extractor key: blocks}` of the extractors searched (see `extractor_key`)."""
        return {name: member.extractor.n_blocks for name, member in self.members.items()}

    def build(self, hp):
        if self.digest is not None:  # the chief's, which its workers check theirs against
            hp.Fixed(SEARCH_DIGEST, self.digest)
        if self.candidates is None:
            values = self.space.sample(hp, self.extractor.n_blocks, input_kind=self.extractor.input_kind)
            member = next(iter(self.members.values()))
        else:
            values = self.space.sample(hp, self.n_blocks, candidates=self.candidates,
                                       input_kind=self.extractor.input_kind)
            member = self.members[values["extractor"]]
        # The previous trial's model and its traced train step, so that memory stays flat over a search.
        for other in self.members.values():
            other.extractor.release_models()
        _forget_custom_gradients(keep=self._gradients)
        member.restore()
        self._member = member
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        self._trial = TransferModel(
            member.extractor,
            regime=values["regime"],
            freeze_blocks=values["frozen_blocks"],
            head=Head(hidden_units=(values["hidden_units"],) if values["hidden_units"] else (),
                      dropout=values["dropout"], l2=values["l2"], batch_norm=values["batch_norm"]),
            learning_rate=values["learning_rate"],
            # Feature-extraction trials leave the conditional rates unset; they do not use them.
            fine_tune_learning_rate=values.get("fine_tune_learning_rate") or 1e-5,
            warmup_epochs=values.get("warmup_epochs") or 0,
            layer_decay=None if values.get("layer_decay", 1.0) == 1.0 else values["layer_decay"],
            epochs=min(self.epochs, hp.values.get("tuner/epochs") or self.epochs),  # Hyperband's budget; retrained too
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
        heartbeats = [_Heartbeat(c.tuner, c.trial) for c in callbacks if isinstance(c, _compat.tuner_callback_class())]
        try:
            trial.train(self._member.data, callbacks=callbacks + heartbeats)
        except BrokenPipeError as error:
            if not _output_gone():  # a pipe of the user's own (a callback's socket): the trial failed
                raise
            raise ReaderGone(error.errno, error.strerror) from None
        history = trial.history_
        # The epoch whose weights the trial ends with (retrained, it is the model the search gives back): not a
        # warm-up epoch of a fine-tuning trial, nor one that early stopping passed over.
        result = {name: float(values[trial.kept_epoch_]) for name, values in history.items()}
        result.update(epochs=float(len(history["loss"])), seconds=float(trial.fit_seconds_),
                      cached_phases=float(sum(trial.cached_phases_)))
        for heartbeat in heartbeats:
            # Once a trial has metrics, Keras Tuner ignores what fit returns; the totals are reported here instead.
            heartbeat.tuner.oracle.update_trial(heartbeat.trial.trial_id, result, step=len(history["loss"]))
        return result


def extractor_key(source, options=None):
    """How a search names an extractor: its source, as an absolute path where it is a path (so that a resumed
    search finds it however the path is spelled), with the `load_extractor` options that make it another model.

    Example:
        >>> extractor_key("MobileNetV2", {"alpha": 0.35, "weights": "/models/mnv2_035.weights.h5"})
        'MobileNetV2(alpha=0.35, weights=mnv2_035.weights.h5)'
        >>> extractor_key("MobileNetV2", {"image_size": [96, 96]})  # as a record reads (96, 96) back
        'MobileNetV2(image_size=(96, 96))'
    """
    name = _absolute(source)
    if not options:
        return name
    # image_size=(64, 64) as given, or [64, 64] as a search's record reads back: one name (a tester's find)
    values = {key: os.path.basename(value) if isinstance(value, str) and os.sep in value else
              tuple(value) if isinstance(value, list) else value for key, value in sorted(options.items())}
    return f"{name}({', '.join(f'{key}={value}' for key, value in values.items())})"


def absolute_paths(options):
    """`load_extractor` options with the files they name (`weights`, `preprocessor`) made absolute where they
    exist, so that a search's record loads the same files from any working directory.

    Example:
        >>> absolute_paths({"alpha": 0.35, "weights": "."}) == {"alpha": 0.35, "weights": os.getcwd()}
        True
    """
    return {key: _absolute(value) if key in ("weights", "preprocessor") and isinstance(value, str) and
            value != "imagenet" else value for key, value in (options or {}).items()}


def _absolute(source):
    """A source that names an existing file or folder, absolute (as `load_extractor` reads it: a path first)."""
    return os.path.abspath(source) if os.path.exists(source) else source


class _Member:
    """One extractor of a search: loaded once, its pretrained weights kept to restore before each trial, and the
    data decoded for it (its image size and value range). `source` and `options` load it again, from any folder."""

    def __init__(self, extractor, data, options):
        self.extractor = extractor if isinstance(extractor, Extractor) else load_extractor(extractor,
                                                                                         **(options or {}))
        self.source, self.options = _absolute(self.extractor.source), absolute_paths(options)
        # Decoded for the extractor, so that a search never trains on pixels of another scale (whose trials would
        # each fail, and the search end with none completed).
        self.data = data.for_extractor(self.extractor) if hasattr(data, "for_extractor") else data
        self.pretrained = [w.numpy() for w in self.extractor.weights]
        self.fingerprint = self.extractor.fingerprint(self.extractor.n_blocks)
        self.extractor.mark_graphs()

    def restore(self):
        """Gives the extractor its pretrained weights back (restored, not reloaded: cache keys stay the same)."""
        for weight, value in zip(self.extractor.weights, self.pretrained):
            weight.assign(value)


def _custom_gradients():
    """The names under which `tf.custom_gradient` has registered gradient functions in graphs traced so far."""
    return {name for name in _compat.gradient_registry() if name.startswith("CustomGradient-")}


def _forget_custom_gradients(keep):
    """Unregisters the gradient functions that `tf.custom_gradient` registered since `keep` was taken.

    Every Keras train step traced on TensorFlow sums its gradients with `ReplicaContext.all_reduce`, which uses
    `tf.custom_gradient`; in a graph that registers a gradient function in TensorFlow's global registry, for good,
    and the function holds the whole traced step (its graph, the optimizer's functions). A search traces new steps
    for every trial, so each trial kept tens of MB (37 MB a trial with MobileNetV2). The steps of a released
    trial are never traced or differentiated again, so their registrations can go.
    """
    registry = _compat.gradient_registry()
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
