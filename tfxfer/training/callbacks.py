"""Callbacks: one plain line per epoch for pipes and logs, and callbacks across models that share weights.

While a phase trains on cached activations, Keras runs a smaller model (the blocks after the cut and the head,
sharing the whole model's weights); a user's callback should still see the whole model, e.g. to save or export it.
"""

import time

import keras


class EpochLines(keras.callbacks.Callback):
    """Prints one plain line per epoch (no progress bar, no ANSI codes, no carriage returns), for output that is not
    a terminal: a pipe, a log file, a CI job. Train with `verbose=0` and this callback.

    Example:
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> _ = model.fit(np.zeros((4, 2)), np.zeros(4), epochs=1, verbose=0, callbacks=[EpochLines()])
        epoch 1/1: loss 0 (...s)
    """

    def on_phase_begin(self, line):
        """`TransferModel` names each phase of several as it begins (the epochs are numbered on across phases)."""
        print(line, flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in (logs or {}).items())
        print(f"epoch {epoch + 1}/{self.params.get('epochs', '?')}: {metrics} "
              f"({time.perf_counter() - self._started:.1f}s)", flush=True)


class OnWholeModel(keras.callbacks.Callback):
    """Hands a callback the whole model while another model (over cached activations, same weights) trains.

    The callback still steers the training: the whole model's optimizer is, for the phase, the one that trains (a
    `LearningRateScheduler` sets its rate), and the whole model's `stop_training` (`EarlyStopping`,
    `TerminateOnNaN`) stops the model that trains.

    Example:
        >>> callback = OnWholeModel(keras.callbacks.History(), keras.Sequential([keras.layers.Dense(1)]))
        >>> callback.callback.model.__class__.__name__
        'Sequential'
    """

    def __init__(self, callback, model):
        super().__init__()
        self.callback = callback
        self.callback.set_model(model)

    def set_model(self, model):
        """Keeps the whole model for the callback; `model`, the one that trains, lends it its optimizer."""
        self.trainer = model
        self.callback.model.optimizer = model.optimizer

    def _forward_stop(self):
        if getattr(self.callback.model, "stop_training", False):
            self.trainer.stop_training = True

    def set_params(self, params):
        self.callback.set_params(params)

    def on_train_begin(self, *args, **kwargs):
        self.callback.model.stop_training = False  # a stop asked in an earlier phase ended that phase only
        self.callback.on_train_begin(*args, **kwargs)

    def on_train_end(self, *args, **kwargs):
        self.callback.on_train_end(*args, **kwargs)

    def on_epoch_begin(self, *args, **kwargs):
        self.callback.on_epoch_begin(*args, **kwargs)

    def on_epoch_end(self, *args, **kwargs):
        self.callback.on_epoch_end(*args, **kwargs)
        self._forward_stop()

    def on_train_batch_begin(self, *args, **kwargs):
        self.callback.on_train_batch_begin(*args, **kwargs)

    def on_train_batch_end(self, *args, **kwargs):
        self.callback.on_train_batch_end(*args, **kwargs)
        self._forward_stop()

    def on_test_begin(self, *args, **kwargs):
        self.callback.on_test_begin(*args, **kwargs)

    def on_test_end(self, *args, **kwargs):
        self.callback.on_test_end(*args, **kwargs)

    def on_test_batch_begin(self, *args, **kwargs):
        self.callback.on_test_batch_begin(*args, **kwargs)

    def on_test_batch_end(self, *args, **kwargs):
        self.callback.on_test_batch_end(*args, **kwargs)

    def on_predict_begin(self, *args, **kwargs):
        self.callback.on_predict_begin(*args, **kwargs)

    def on_predict_end(self, *args, **kwargs):
        self.callback.on_predict_end(*args, **kwargs)

    def on_predict_batch_begin(self, *args, **kwargs):
        self.callback.on_predict_batch_begin(*args, **kwargs)

    def on_predict_batch_end(self, *args, **kwargs):
        self.callback.on_predict_batch_end(*args, **kwargs)
