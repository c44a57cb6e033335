"""`TransferModel`: a pretrained extractor and a dense head, trained phase by phase in one of the regimes of transfer
(see `tfxfer.training.phases`), on cached activations wherever the frozen blocks allow it."""

import logging
import time

import keras
import numpy as np
import tensorflow as tf

from tfxfer.extractors import Extractor, load_extractor
from tfxfer.training.callbacks import OnWholeModel
from tfxfer.training.feature_cache import FeatureCache, cache_refusal
from tfxfer.training.heads import Head
from tfxfer.training.phases import ignored_settings, plan, regime_name

log = logging.getLogger(__name__)


def build_model(extractor, task, head=None):
    """The extractor under a dense head, as a functional Keras model (not compiled).

    The head is a nested model named `"head"` (`model.get_layer("head")`), so the same head can also train on cached
    activations (see `tfxfer.training.feature_cache`) and stay part of this model.

    Args:
        extractor: An `Extractor`.
        task: The `tfxfer.data.Task`.
        head: A `Head`; by default a linear head with dropout 0.2.

    Returns:
        A `keras.Model` taking what the extractor takes (float images in its value range, or strings).
    """
    if extractor.input_kind == "text":
        inputs = keras.Input(shape=(), dtype="string", name="text")
    else:
        inputs = keras.Input((*extractor.image_size, 3), name="image")
    features = extractor(inputs)
    if len(features.shape) not in (2, 3, 4):
        raise ValueError(f"{extractor.source!r} outputs shape {tuple(features.shape)}; a head takes features "
                         "[batch, d], a sequence [batch, t, d] or a feature map [batch, h, w, d]. For a SavedModel "
                         "that returns a dict, choose the output with output_key=.")
    head_inputs = keras.Input(features.shape[1:], name="features")
    head_model = keras.Model(head_inputs, (head or Head())(head_inputs, task), name="head")
    return keras.Model(inputs, head_model(features), name="transfer")


def check_data_fits(extractor, inputs, labels, task):
    """Raises a clear error when data does not fit the extractor or the head.

    Args:
        extractor: The `Extractor`.
        inputs: A `DataSplits`, a `tf.data.Dataset` of `(inputs, labels)` batches, or an array of inputs.
        labels: The labels when `inputs` is an array, else None.
        task: The task the head is built for.
    """
    if hasattr(inputs, "modality"):  # DataSplits: what it was loaded as
        shape = (None, *inputs.image_size, 3) if inputs.modality == "image" else (None,)
        dtype = tf.float32 if inputs.modality == "image" else tf.string
    elif isinstance(inputs, tf.data.Dataset):
        spec = inputs.element_spec[0]
        shape, dtype = tuple(spec.shape), spec.dtype
    else:
        inputs = np.asarray(inputs)
        shape, dtype = inputs.shape, tf.as_dtype(tf.string if inputs.dtype.kind in "OUS" else inputs.dtype)
    if extractor.input_kind == "text" and dtype != tf.string:
        raise ValueError(f"{extractor.source!r} is a text extractor, but the data holds {dtype.name} of shape "
                         f"{shape}, not text. Load texts with tfxfer.load_text, or use an image extractor.")
    if extractor.input_kind == "image":
        if dtype == tf.string:
            raise ValueError(f"{extractor.source!r} is an image extractor, but the data holds text. Load images "
                             "with tfxfer.load_images, or use a text extractor.")
        if len(shape) != 4 or shape[-1] != 3 or (None not in shape[1:3] and tuple(shape[1:3]) != extractor.image_size):
            raise ValueError(f"The data's images are of size {tuple(shape[1:3])} (shape {shape}), but "
                             f"{extractor.source!r} takes images of size {extractor.image_size} with 3 channels. Load "
                             "them with load_images(..., extractor=extractor).")
    if labels is not None:
        task.check_labels(labels)


def _cached_trainer(extractor, model, k, feature_shape):
    """A model over the activations after `k` blocks: the rest of the extractor and the head, weights shared."""
    inputs = keras.Input(feature_shape, name=f"block_{k}_activations")
    outputs = model.get_layer("head")(extractor.suffix(k)(inputs))
    return keras.Model(inputs, outputs, name=f"transfer_from_block_{k}")


def _fit_arguments(data, validation, task):
    """Splits the accepted data forms into Keras `fit` arguments and the task."""
    if hasattr(data, "train") and hasattr(data, "task"):
        validation = data.validation if validation is None else validation
        task = task or data.task
        data = data.train
    if task is None:
        raise ValueError("fit needs a task: pass data from tfxfer.load_images/load_text, or task=tfxfer.data.Task(...).")
    if isinstance(data, tuple):
        kwargs = {"x": data[0], "y": data[1]}
    else:
        kwargs = {"x": data}
    if validation is not None:
        kwargs["validation_data"] = validation
    return kwargs, task


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
            each `fit`), or an `Extractor` (used as it is, and trained in place).
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
        learning_rates_: Learning rate of each phase, in order.
        cached_phases_: For each phase, whether it trained on cached activations.
        frozen_blocks_: Blocks frozen at the end of training.
        trainable_params_: Scalars trained in the last phase.
        fit_seconds_: Wall time of `fit`.

    Example:
        >>> fitted = TransferModel(extractor, regime="mid-layer", freeze_blocks=2, epochs=2, verbose=0).fit(data)
        >>> [phase.name for phase in fitted.phases_], fitted.frozen_blocks_, len(fitted.history_["loss"]) <= 2
        (['train'], 2, True)
    """

    def __init__(self, extractor, *, regime="feature-extraction", freeze_blocks=None, head=None, learning_rate=1e-3,
                 fine_tune_learning_rate=1e-5, warmup_epochs=None, epochs=20, batch_size=32, patience=3,
                 class_weight="auto", cache=True, strategy=None, seed=None, extractor_options=None, verbose="auto"):
        self.extractor = extractor
        self.regime = regime
        self.freeze_blocks = freeze_blocks
        self.head = head
        self.learning_rate = learning_rate
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.warmup_epochs = warmup_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.class_weight = class_weight
        self.cache = cache
        self.strategy = strategy
        self.seed = seed
        self.extractor_options = extractor_options
        self.verbose = verbose

    def _check_arguments(self):
        for name in ("learning_rate", "fine_tune_learning_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number; got {value!r}.")
        for name in ("warmup_epochs", "epochs"):
            value = getattr(self, name)
            if name == "warmup_epochs" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "warmup_epochs" else 1):
                raise ValueError(f"{name} must be a whole number >= {0 if name == 'warmup_epochs' else 1}; "
                                 f"got {value!r}.")

    def _plan(self, n_blocks):
        """The phases to train, checked against the extractor's blocks."""
        k = self.freeze_blocks
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n_blocks):
            raise ValueError(f"freeze_blocks must be a whole number from 0 to {n_blocks} (the extractor's blocks); "
                             f"got {k!r}.")
        return plan(self.regime, n_blocks, epochs=self.epochs, learning_rate=self.learning_rate,
                    fine_tune_learning_rate=self.fine_tune_learning_rate, freeze_blocks=k,
                    warmup_epochs=self.warmup_epochs)

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
        _, task = _fit_arguments(data, validation, task)
        self.build(task)
        return self.train(data, validation, callbacks=callbacks)

    def build(self, task):
        """Loads the extractor and builds the model for `task` inside the strategy's scope; `fit` calls it.

        Returns:
            The compiled `keras.Model` (also in `model_`), with the blocks of the first phase frozen.
        """
        regime_name(self.regime)  # a bad regime is refused before the extractor loads
        self._check_arguments()
        unused = ignored_settings(self.regime, warmup_epochs=self.warmup_epochs)
        if unused:
            raise ValueError(f"{unused[0]}={getattr(self, unused[0])} does nothing with regime={self.regime!r}; "
                             "leave it out, or pass regime='mid-layer' or regime='fine-tune'.")
        self._started = time.perf_counter()
        with self._scope():
            extractor = self.extractor
            if not isinstance(extractor, Extractor):
                extractor = load_extractor(extractor, **(self.extractor_options or {}))
            self.phases_ = self._plan(extractor.n_blocks)
            extractor.freeze(self.phases_[0].frozen_blocks)
            model = build_model(extractor, task, self.head)
            self._compile(model, task, self.phases_[0].learning_rate)
        self.model_, self.extractor_, self.task_ = model, extractor, task
        return model

    def _scope(self):
        return (self.strategy or tf.distribute.get_strategy()).scope()

    def _compile(self, model, task, rate):
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=task.loss(), metrics=task.metrics())

    def train(self, data, validation=None, *, callbacks=None):
        """Trains the model that `build` made, phase by phase; `fit` is `build` then `train`.

        Callbacks see the whole model (`model_`) even while a phase trains on cached activations.

        Returns:
            self, fitted.
        """
        model, extractor = self.model_, self.extractor_
        splits = data if hasattr(data, "unbatched") and validation is None else None
        fit_kwargs, task = _fit_arguments(data, validation, self.task_)
        if isinstance(fit_kwargs["x"], np.ndarray):
            fit_kwargs["batch_size"] = self.batch_size
        else:
            fit_kwargs["shuffle"] = False  # Datasets come shuffled (the training split reshuffles every epoch).
        check_data_fits(extractor, splits or fit_kwargs["x"], fit_kwargs.get("y"), task)
        cache = self._feature_cache()
        monitor = "val_loss" if "validation_data" in fit_kwargs else "loss"
        history, rates, cached, starts, epoch = {}, [], [], [], 0
        self.fine_tune_epoch_ = None
        for phase in self.phases_:
            frozen, rate = phase.frozen_blocks, phase.learning_rate
            with self._scope():
                extractor.freeze(frozen)
                trainer, trainer_kwargs = model, fit_kwargs
                reason = "caching is off" if cache is None else cache_refusal(extractor, splits or data, frozen)
                if reason is None:
                    trainer, trainer_kwargs = self._on_cache(extractor, model, frozen, splits, cache)
                elif frozen:
                    log.info("Training end to end with %d frozen blocks: %s.", frozen, reason)
                self._compile(trainer, task, rate)
            if phase.fine_tunes and self.fine_tune_epoch_ is None:
                self.fine_tune_epoch_ = epoch
            starts.append(epoch)
            phase_callbacks = [c if trainer is model else OnWholeModel(c, model) for c in callbacks or []]
            if self.patience is not None:
                phase_callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=self.patience,
                                                                     restore_best_weights=True))
            result = trainer.fit(**trainer_kwargs, epochs=epoch + phase.epochs, initial_epoch=epoch,
                                 callbacks=phase_callbacks, class_weight=self._class_weight(task),
                                 verbose=self.verbose)
            for key, values in result.history.items():
                history.setdefault(key, []).extend(values)
            epoch += len(result.epoch)
            rates.append(rate)
            cached.append(reason is None)
        if trainer is not model:
            with self._scope():
                self._compile(model, task, rates[-1])
        self.history_, self.learning_rates_, self.cached_phases_ = history, rates, cached
        self.phase_starts_ = starts
        self.frozen_blocks_ = extractor.frozen_blocks
        self.trainable_params_ = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        self.fit_seconds_ = time.perf_counter() - self._started
        return self

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

    def predict(self, inputs, batch_size=None):
        """The model's outputs (class probabilities, label probabilities or regression values) for `inputs`."""
        return self.model_.predict(inputs, batch_size=batch_size, verbose=0)

    def evaluate(self, data):
        """The loss and metrics on `data` (a dataset of `(inputs, labels)`, or a tuple of arrays), as a dict."""
        if isinstance(data, tuple):
            return self.model_.evaluate(data[0], data[1], batch_size=self.batch_size, verbose=0, return_dict=True)
        return self.model_.evaluate(data, verbose=0, return_dict=True)
