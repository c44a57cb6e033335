"""`TransferModel`: a pretrained extractor and a dense head, trained phase by phase in one of the regimes of transfer
(see `tfxfer.training.phases`), on cached activations wherever the frozen blocks allow it."""

import logging
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfxfer import _compat
from tfxfer.extractors import Extractor, HubExtractor, load_extractor
from tfxfer.training.callbacks import OnWholeModel
from tfxfer.training.feature_cache import FeatureCache, cache_refusal
from tfxfer.training.heads import Head, build_model
from tfxfer.training.inputs import batch_spec, check_batch_size, check_fit_arguments, fit_arguments, predict_inputs
from tfxfer.training.phases import check_settings, plan, with_recipe
from tfxfer.training.state import fitted_state_kept
from tfxfer.training.recipe import flip_averaged, phase_optimizer, steps_per_epoch
from tfxfer.training.strategy import dtype_policy, pick_precision

log = logging.getLogger(__name__)


def _cached_trainer(extractor, model, k, feature_shape):
    """A model over the activations after `k` blocks: the rest of the extractor and the head, weights shared."""
    inputs = keras.Input(feature_shape, name=f"block_{k}_activations")
    outputs = model.get_layer("head")(extractor.suffix(k)(inputs))
    return keras.Model(inputs, outputs, name=f"transfer_from_block_{k}")


class TransferModel:
    """A pretrained extractor and a dense head, trained in one of the three regimes of transfer.

    Each regime is a plan of phases (`tfxfer.training.phases`):

    - `"feature-extraction"` (deep feature extraction): every block frozen, only the head trains.
    - `"mid-layer"`: the first `freeze_blocks` blocks frozen (default: half of them); the rest and the head train
      at `learning_rate`, or, with `warmup_epochs`, after a head warm-up at `fine_tune_learning_rate`.
    - `"fine-tune"`: the head first trains for `warmup_epochs` (default 5) on the frozen extractor at
      `learning_rate`; then the blocks after the first `freeze_blocks` (default: all) are unfrozen at
      `fine_tune_learning_rate`. The warm-up comes first because a random head sends large gradients into the
      pretrained weights and wrecks them; 1e-5 with Adam is the Keras and TensorFlow guides' fine-tuning rate, small
      enough that pretrained features move a little per step. BatchNorm stays in inference mode (see `Extractor`)
      unless the extractor was loaded with `train_batchnorm=True`.

    Every phase compiles the model afresh (a new optimizer at the phase's rate). Training uses Keras' `fit` with
    early stopping on the validation loss (best weights restored), class weights from the task for imbalanced
    multi-class data, and Keras progress bars. Everything is built and compiled inside `strategy.scope()` (the
    strategy in scope by default), so MirroredStrategy and TPUStrategy work.

    Args:
        extractor: An extractor source for `tfxfer.load_extractor` (loaded afresh, inside the strategy's scope, at
            each `fit`), or an `Extractor` (used as it is, and trained in place: every model fitted on one object
            shares its weights, so a later fit that trains blocks changes the models fitted before it; pass the
            source to keep them apart).
        regime: `"feature-extraction"`, `"mid-layer"` or `"fine-tune"`.
        freeze_blocks: Blocks kept frozen: for mid-layer, default `n_blocks // 2`; for fine-tune, after the
            warm-up, default 0.
        head: A `Head`, default `Head()`.
        learning_rate: Adam's learning rate for the head (and the unfrozen blocks of mid-layer), default 1e-3.
        fine_tune_learning_rate: Adam's learning rate after unfreezing, default 1e-5.
        warmup_epochs: Epochs of head training before blocks are unfrozen; None for the regime's default (5 for
            fine-tune, none for mid-layer).
        epochs: Most epochs of the main phase (early stopping may end it sooner), default 20.
        batch_size: Batch size for array inputs (datasets come batched), default 32.
        patience: Epochs without improvement of the monitored loss before stopping; None turns early stopping off.
        class_weight: `"auto"` (the task's class weights), a dict, or None.
        cache: Train on cached activations where the frozen blocks allow it (see `tfxfer.training.feature_cache`):
            True (a cache for this fit), a `FeatureCache` (shared, e.g. across a search), or False (always end to
            end). Caching needs data from `tfxfer.load_images`/`load_text` without augmentation; otherwise training
            runs end to end and the reason is logged.
        strategy: A `tf.distribute.Strategy`; default the one in scope.
        layer_decay: Rates per block in phases that train blocks, timm's rule: the head at the phase's rate, the
            top trainable block at `rate * layer_decay`, each block below one factor lower. None: one rate.
        block_rates: Rates per block, fastai's `slice(low, high)`: `(low, high)` spread geometrically from the
            lowest trainable block (`low`) to the head (`high`, which replaces the phase's rate). None: one rate.
        schedule: `"constant"`, `"cosine"` (linear warm-up over a tenth of the steps, then cosine decay) or
            `"one-cycle"` for every phase, or `{phase name: schedule}` (see `tfxfer.training.schedules`).
        label_smoothing: Multi-class and multi-label heads: the share of each label spread over the others.
        weight_decay: Decoupled (AdamW) weight decay, at each variable's own rate; None for none.
        precision: `"auto"` (`pick_precision`: mixed_float16 on GPUs, mixed_bfloat16 on TPUs, float32 on CPUs),
            or a Keras policy: `"float32"`, `"mixed_float16"` (with loss scaling), `"mixed_bfloat16"`. The head's
            output is float32 in every policy; TF Hub SavedModels keep their float32 graph.
        jit_compile: XLA compilation of the train step: Keras' `"auto"` (on GPUs and TPUs), True or False.
        seed: Seeds Python, NumPy and TensorFlow at the start of `fit`, for reproducible runs.
        extractor_options: Keyword arguments for `load_extractor` when `extractor` is a source.
        verbose: Keras' verbosity for `fit`.

    Attributes:
        model_: The trained `keras.Model`.
        extractor_: The `Extractor` inside it.
        task_: The task it was trained for.
        phases_: The plan it trained: a list of `Phase`.
        phase_starts_: The epoch index at which each phase began.
        history_: Per-epoch metrics of every phase, one list per metric.
        fine_tune_epoch_: The epoch index where blocks were first unfrozen after a warm-up (or fine-tuning began),
            else None.
        kept_epoch_: The epoch index whose weights the model ends with: the last phase's lowest validation loss
            (training loss without validation data), which early stopping restores, or its last epoch without
            `patience`.
        learning_rates_: Learning rate of each phase, in order.
        cached_phases_: For each phase, whether it trained on cached activations.
        frozen_blocks_: Blocks frozen at the end of training.
        trainable_params_: Scalars trained in the last phase.
        fit_seconds_: Wall time of `fit`.
        interpolation_: How the training images were resized (the data's `interpolation`), which exports resize
            with; None for data other than a `DataSplits`.

    Example:
        >>> fitted = TransferModel(extractor, regime="mid-layer", freeze_blocks=2, epochs=2, verbose=0).fit(data)
        >>> [phase.name for phase in fitted.phases_], fitted.frozen_blocks_, len(fitted.history_["loss"]) <= 2
        (['train'], 2, True)
    """

    def __init__(self, extractor, *, regime="feature-extraction", freeze_blocks=None, head=None, learning_rate=1e-3,
                 fine_tune_learning_rate=1e-5, warmup_epochs=None, epochs=20, batch_size=32, patience=3,
                 class_weight="auto", cache=True, strategy=None, layer_decay=None, block_rates=None,
                 schedule="constant", label_smoothing=0.0, weight_decay=None, precision="auto", jit_compile="auto",
                 seed=None, extractor_options=None, verbose="auto"):
        self.extractor, self.regime, self.freeze_blocks, self.head = extractor, regime, freeze_blocks, head
        self.learning_rate, self.fine_tune_learning_rate = learning_rate, fine_tune_learning_rate
        self.warmup_epochs, self.epochs, self.batch_size, self.patience = warmup_epochs, epochs, batch_size, patience
        self.class_weight, self.cache, self.strategy = class_weight, cache, strategy
        self.layer_decay, self.block_rates, self.schedule = layer_decay, block_rates, schedule
        self.label_smoothing, self.weight_decay = label_smoothing, weight_decay
        self.precision, self.jit_compile = precision, jit_compile
        self.seed, self.extractor_options, self.verbose = seed, extractor_options, verbose

    def _plan(self, n_blocks):
        """The phases to train, checked against the extractor's blocks."""
        k = self.freeze_blocks
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n_blocks):
            raise ValueError(f"freeze_blocks must be a whole number from 0 to {n_blocks} (the extractor's blocks); "
                             f"got {k!r}.")
        phases = plan(self.regime, n_blocks, epochs=self.epochs, learning_rate=self.learning_rate,
                      fine_tune_learning_rate=self.fine_tune_learning_rate, freeze_blocks=k,
                      warmup_epochs=self.warmup_epochs)
        return with_recipe(phases, n_blocks, schedule=self.schedule, layer_decay=self.layer_decay,
                           block_rates=self.block_rates)

    def _class_weight(self, task):
        return task.fit_class_weight() if self.class_weight == "auto" else self.class_weight

    def fit(self, data, validation=None, *, task=None, callbacks=None):
        """Trains the model in the chosen regime.

        Args:
            data: What `tfxfer.load_images`/`load_text` returned (its train and validation splits and task are
                used), a `tf.data.Dataset` of `(inputs, labels)` batches, or a tuple of arrays `(x, y)`.
            validation: Validation data in the same forms, when `data` does not bring it.
            task: The task, when `data` does not bring it.
            callbacks: More Keras callbacks.

        Returns:
            self, fitted.

        Raises:
            ValueError: an argument is out of range (named, with its value).
        """
        if self.seed is not None:
            # Before the pipelines are made: tf.data shuffles take the global seed at creation.
            keras.utils.set_random_seed(self.seed)
        _, task = fit_arguments(data, validation, task)
        with fitted_state_kept(self):  # a fit refused for its data leaves the last fitted model as it was
            self.build(task)
            return self.train(data, validation, callbacks=callbacks)

    def build(self, task):
        """Loads the extractor and builds the model for `task` inside the strategy's scope; `fit` calls it.

        Returns:
            The compiled `keras.Model` (also in `model_`), with the blocks of the first phase frozen.
        """
        check_settings(self)  # before the extractor loads
        self._started = time.perf_counter()
        self.precision_ = pick_precision(self.strategy) if self.precision == "auto" else self.precision
        with self._scope(), dtype_policy(self.precision_):
            extractor = self.extractor
            if not isinstance(extractor, Extractor):
                extractor = load_extractor(extractor, **(self.extractor_options or {}))
            if isinstance(extractor, HubExtractor):
                extractor.dtype_policy = "float32"  # a SavedModel's graph is float32; the head still mixes
            self.phases_ = self._plan(extractor.n_blocks)
            extractor.freeze(self.phases_[0].frozen_blocks)
            model = build_model(extractor, task, self.head)
            self._compile(model, task, keras.optimizers.Adam(self.phases_[0].learning_rate))
        self.model_, self.extractor_, self.task_ = model, extractor, task
        return model

    def _scope(self):
        return (self.strategy or tf.distribute.get_strategy()).scope()

    def _compile(self, model, task, optimizer):
        model.compile(optimizer=optimizer, loss=task.loss(label_smoothing=self.label_smoothing),
                      metrics=task.metrics(), jit_compile=self.jit_compile)

    def train(self, data, validation=None, *, callbacks=None):
        """Trains the model that `build` made, phase by phase; `fit` is `build` then `train`.

        Callbacks see the whole model (`model_`) even while a phase trains on cached activations.

        Returns:
            self, fitted.
        """
        model, extractor = self.model_, self.extractor_
        fit_kwargs, splits, task = self._inputs(data, validation)
        cache = self._feature_cache()
        monitor = "val_loss" if "validation_data" in fit_kwargs else "loss"
        history, rates, cached, starts, epoch = {}, [], [], [], 0
        self.fine_tune_epoch_ = None
        for index, phase in enumerate(self.phases_):
            self._announce(index, callbacks)
            rate = phase.learning_rate
            with self._scope(), dtype_policy(self.precision_):  # a trainer over the cache scales the loss too
                trainer, trainer_kwargs, reason = self._trainer(phase, data, fit_kwargs, splits, cache)
                steps = steps_per_epoch(trainer_kwargs) if phase.schedule != "constant" else 1
                self._compile(trainer, task, phase_optimizer(phase, extractor, steps, self.weight_decay))
                _compat.build_for_fit(trainer, batch_spec(trainer_kwargs))
            if phase.fine_tunes and self.fine_tune_epoch_ is None:
                self.fine_tune_epoch_ = epoch
            starts.append(epoch)
            phase_callbacks = [c if trainer is model else OnWholeModel(c, model) for c in callbacks or []]
            stopper = None if self.patience is None else keras.callbacks.EarlyStopping(
                monitor=monitor, patience=self.patience, restore_best_weights=True)
            result = trainer.fit(**trainer_kwargs, epochs=epoch + phase.epochs, initial_epoch=epoch,
                                 callbacks=phase_callbacks + [stopper] * bool(stopper),
                                 class_weight=self._class_weight(task), verbose=self.verbose)
            for key, values in result.history.items():
                history.setdefault(key, []).extend(values)
            epoch += len(result.epoch)
            self.kept_epoch_ = epoch - 1 if stopper is None or stopper.best_weights is None else stopper.best_epoch
            rates.append(rate)
            cached.append(reason is None)
        if trainer is not model:
            with self._scope():
                self._compile(model, task, keras.optimizers.Adam(rates[-1]))
        self.history_, self.learning_rates_, self.cached_phases_, self.phase_starts_ = history, rates, cached, starts
        self.frozen_blocks_ = extractor.frozen_blocks
        self.interpolation_ = getattr(data, "interpolation", None)
        self.trainable_params_ = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        self.fit_seconds_ = time.perf_counter() - self._started
        return self

    def _announce(self, index, callbacks):
        """Names a phase of several as it begins (Keras numbers the epochs on, phase after phase): printed where Keras
        shows progress, and handed to callbacks that print lines of their own (`on_phase_begin`)."""
        if len(self.phases_) > 1:
            line = self.phases_[index].line(index, len(self.phases_), self.extractor_.n_blocks)
            for callback in callbacks or []:
                getattr(callback, "on_phase_begin", lambda line: None)(line)
            if self.verbose not in (0, "0"):
                print(line, flush=True)

    def _inputs(self, data, validation):
        """Keras `fit` arguments, the `DataSplits` (which caching needs) or None, and the task; checked."""
        splits = data if hasattr(data, "unbatched") and validation is None else None
        fit_kwargs, task = fit_arguments(data, validation, self.task_)
        if isinstance(fit_kwargs["x"], np.ndarray):
            fit_kwargs["batch_size"] = self.batch_size
        else:
            fit_kwargs["shuffle"] = False  # Datasets come shuffled (the training split reshuffles every epoch).
        check_fit_arguments(self.extractor_, fit_kwargs, splits, task)
        check_batch_size(self.head or Head(), self.extractor_,
                         fit_kwargs.get("batch_size", getattr(data, "batch_size", None)))
        return fit_kwargs, splits, task

    def _trainer(self, phase, data, fit_kwargs, splits, cache):
        """The model that trains `phase` (the whole model, or the part after a cached cut), its `fit` arguments, and
        why it does not train on cached activations (None when it does)."""
        extractor, frozen = self.extractor_, phase.frozen_blocks
        extractor.freeze(frozen)
        reason = "caching is off" if cache is None else "validation data was passed apart from the data's splits" \
            if splits is None and hasattr(data, "unbatched") else cache_refusal(extractor, splits or data, frozen)
        if reason is None:
            return (*self._on_cache(extractor, self.model_, frozen, splits, cache), None)
        if frozen:
            log.info("Training end to end with %d frozen blocks: %s.", frozen, reason)
        return self.model_, fit_kwargs, reason

    def _feature_cache(self):
        if isinstance(self.cache, FeatureCache):
            return self.cache
        return FeatureCache(progress=self.verbose not in (0, "0")) if self.cache else None

    def _on_cache(self, extractor, model, k, splits, cache):
        """The trainer over cached activations after `k` blocks, and its `fit` arguments."""
        train, shape = cache.dataset(extractor, splits, k, "train")
        kwargs = {"x": train, "shuffle": False}
        validation = cache.dataset(extractor, splits, k, "validation")
        if validation is not None:
            kwargs["validation_data"] = validation[0]
        return _cached_trainer(extractor, model, k, shape), kwargs

    def _served(self, flip):
        if not hasattr(self, "model_"):
            raise RuntimeError("This TransferModel is not fitted: call fit(data) first.")
        if not flip:
            return self.model_
        if self.extractor_.input_kind != "image":
            raise ValueError("test_time_augmentation flips images; this model takes text: leave it out.")
        model = flip_averaged(self.model_)
        model.compile(loss=self.model_.loss, metrics=self.task_.metrics())  # the same loss (label smoothing)
        return model

    def predict(self, inputs, batch_size=None, *, test_time_augmentation=False):
        """The model's outputs (class probabilities, label probabilities or regression values) for `inputs`; with
        `test_time_augmentation`, the mean over the images and their mirror images."""
        model = self._served(test_time_augmentation)
        return model.predict(predict_inputs(self.extractor_, self.task_, inputs), batch_size=batch_size, verbose=0)

    def evaluate(self, data, *, test_time_augmentation=False):
        """The loss and metrics on `data` (a dataset of `(inputs, labels)`, a tuple of arrays, or the `DataSplits`
        that `fit` took: its validation split), as a dict; with `test_time_augmentation`, of the mean prediction over
        the images and their mirror images."""
        model = self._served(test_time_augmentation)
        data = data.validation if hasattr(data, "unbatched") else data  # a bare Keras error before (a tester's find)
        if isinstance(data, tuple):
            return model.evaluate(data[0], data[1], batch_size=self.batch_size, verbose=0, return_dict=True)
        return model.evaluate(data, verbose=0, return_dict=True)

    def find_learning_rate(self, data, validation=None, *, task=None, **options):
        """Runs the learning-rate finder (`tfxfer.training.lr_finder.ramp`) on what trains in the first phase: the
        head alone for feature extraction and fine-tuning, on cached activations where the freeze allows it.

        `data`, `validation` and `task` are as for `fit`; `**options` are `ramp`'s (`start`, `end`, `steps`...).
        Returns a `LearningRateFinding`: rates, smoothed losses, `valley` and `steepest` suggestions, `plot()`.

        Example:
            >>> finding = TransferModel(extractor, verbose=0).find_learning_rate(data, steps=30)
            >>> bool(finding.rates[0] < finding.valley < finding.rates[-1])
            True
        """
        from tfxfer.training.lr_finder import ramp

        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)  # as `fit` does
        with fitted_state_kept(self, always=True):  # the finder only looks: the model stays as it was
            self.build(fit_arguments(data, validation, task)[1])
            fit_kwargs, splits, task = self._inputs(data, validation)
            if self.phases_[0].layer_decay is not None or self.phases_[0].block_rates is not None:
                warnings.warn("The finder ramps one rate for every block that trains; the rates per block (layer_decay "
                              "or block_rates) apply in fit: read its suggestions as the top block's rate.", stacklevel=2)
            with self._scope(), dtype_policy(self.precision_):
                trainer, trainer_kwargs, _ = self._trainer(self.phases_[0], data, fit_kwargs, splits,
                                                           self._feature_cache())
            return ramp(trainer, trainer_kwargs, loss=task.loss(label_smoothing=self.label_smoothing),
                        scope=self._scope, class_weight=self._class_weight(task), **options)
