"""The learning-rate finder (Smith's range test, as fastai's `lr_find` runs it): train a few hundred steps while
the rate grows exponentially, and read off where the loss falls fastest.

Two suggestions, because one number alone misleads (ktrain#117): `steepest`, where the smoothed loss falls fastest
against the log of the rate, and `valley` (fastai's default), the middle of the longest stretch over which the
smoothed loss keeps decreasing; the valley is the steadier of the two. Rates up to about
either are safe to train at; the finder's own weights are thrown away.
"""

import dataclasses
import warnings

import keras
import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class LearningRateFinding:
    """What the finder measured.

    Attributes:
        rates: The learning rate of each step.
        losses: The training loss of each step's batch.
        smoothed: `losses` smoothed by a debiased exponential moving average.
        valley: The suggested rate by fastai's valley rule.
        steepest: The rate where the smoothed loss falls fastest.
    """

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    valley: float
    steepest: float

    def plot(self, path=None):
        """The smoothed loss against the rate (log scale), the suggestions marked; written to `path` if given (PNG,
        or the format its suffix names; folders created), as `tfxfer.plot_history` writes its figures.

        Returns:
            A `ReportFigure` (a matplotlib `Figure` that Jupyter shows inline), 6 x 4 inches; no pyplot backend is
            selected or changed.

        Example:
            >>> finding = LearningRateFinding(np.logspace(-5, 0, 50), np.linspace(2, 1, 50), np.linspace(2, 1, 50),
            ...                               1e-3, 1e-2)
            >>> finding.plot().axes[0].get_xscale()
            'log'
        """
        from tfxfer.reports.plots import new_figure, save

        figure = new_figure(6, 4)
        axes = figure.subplots()
        axes.plot(self.rates, self.smoothed, label="smoothed loss")
        for name, rate, colour in (("valley", self.valley, "tab:green"), ("steepest", self.steepest, "tab:red")):
            axes.axvline(rate, color=colour, linestyle="--", label=f"{name} {rate:.2g}")
        axes.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="learning-rate finder")
        axes.legend()
        return save(figure, path)


def valley(rates, smoothed):
    """fastai's valley rule: the longest run of steps over which the loss keeps falling, and the rate about halfway
    into it.

    Example:
        >>> float(valley(np.logspace(-4, 0, 5), np.array([3.0, 2.0, 1.0, 0.5, 4.0])))
        0.001
    """
    n = len(smoothed)
    longest = np.ones(n, int)  # the longest decreasing run ending at i
    end = 0
    for i in range(1, n):
        earlier = longest[:i][smoothed[:i] > smoothed[i]]
        if earlier.size:
            longest[i] = earlier.max() + 1
        if longest[i] > longest[end]:
            end = i
    start = end - longest[end] + 1
    section = (end - start) / 3
    return rates[start + int(section) + int(section / 2)]


def steepest(rates, smoothed, skip=None, window=None):
    """The rate where the smoothed loss falls fastest against log10(rate), before its lowest point (past it the
    loss is diverging) and after the first `skip` steps (default a fifth, at least 10: the average is still settling
    there, and with small batches its noise passed for the steepest descent, at rates where nothing trains).

    The slope at a step is taken across `window` steps on either side (default a 25th of the steps), so that the
    batch-to-batch noise left in the moving average does not pass for a descent.

    Example:
        >>> round(float(steepest(np.logspace(-4, 0, 9), np.array([3, 3, 3, 3, 3, 2.5, 1.0, 0.9, 0.8]), skip=2)), 4)
        0.0316
    """
    n, lowest = len(smoothed), int(np.argmin(smoothed))
    skip = max(10, n // 5) if skip is None else skip
    window = max(1, n // 25) if window is None else window
    logs = np.log10(rates)
    best, best_slope = lowest, 0.0
    for i in range(skip, lowest + 1):
        before, after = max(i - window, 0), min(i + window, lowest)
        if after > before:
            slope = (smoothed[after] - smoothed[before]) / (logs[after] - logs[before])
            if slope < best_slope:
                best, best_slope = i, slope
    return rates[best]


def _check_the_loss_fell(rates, smoothed, losses, start, end, steps):
    """Raises where the ramp gives nothing to suggest: no finite loss, or a loss that never fell below its first
    value (every rate too high, so it rose at once; or too low to move it); warns where it fell by under 2%."""
    if not len(smoothed):
        raise ValueError(f"The training loss was not finite from the first step of the ramp ({losses[0]} at "
                         f"start={start:g}): check the targets' scale (regression targets far from 1 overflow the "
                         "loss) or lower start=.")
    if int(np.argmin(smoothed)) == 0:
        # A few steps jump the rate by decades at a time, and the smoothed loss has no room to fall (a tester's find).
        short = f" The ramp was {steps} steps: raise steps= first (the default is 200)." if steps < 50 else ""
        if smoothed[-1] > 1.1 * smoothed[0]:
            raise ValueError(f"The training loss rose from the first step of the ramp ({smoothed[0]:.4g} at "
                             f"start={start:g}, {smoothed[-1]:.4g} at {rates[-1]:.3g}) and never fell: every rate "
                             f"was too high to train at, or the labels cannot be learned from these features. Lower "
                             f"start=; if that does not help, check the labels.{short}")
        raise ValueError(f"The training loss did not fall over the ramp ({smoothed[0]:.4g} at start={start:g}, "
                         f"{smoothed[-1]:.4g} at end={end:g}): every rate was too low to move it, or the labels cannot "
                         f"be learned from these features. Raise end=; if that does not help, check the labels.{short}")
    lowest = int(np.argmin(smoothed))
    if smoothed[lowest] > 0.98 * smoothed[0]:
        warnings.warn(f"The training loss hardly fell over the ramp ({smoothed[0]:.4g} at start={start:g}, at least "
                      f"{smoothed[lowest]:.4g} at {rates[lowest]:.3g}): the suggestions are weak. Raise end= if the "
                      "rates stopped too low, or check that the labels can be learned from these features.",
                      stacklevel=4)
    elif lowest >= len(smoothed) - 3:  # whatever the steepest suggestion is (a tester's find)
        warnings.warn(f"The training loss was still falling at end={end:g}: the ramp stopped before the rates where "
                      "training breaks down, so the suggestions were made without them (the steepest may sit near "
                      "the end, too high to train at). Raise end= to see where the loss turns up.", stacklevel=4)


def _batches(fit_kwargs):
    """An endless iterator of `(inputs, labels)` batches over `fit` arguments."""
    x = fit_kwargs["x"]
    if isinstance(x, tf.data.Dataset):
        yield from x.repeat()
    size, rng = fit_kwargs.get("batch_size", 32), np.random.default_rng(0)
    while True:
        order = rng.permutation(len(x))
        for start in range(0, len(x), size):
            yield x[order[start:start + size]], fit_kwargs["y"][order[start:start + size]]


def ramp(model, fit_kwargs, *, loss, scope, start=1e-7, end=10.0, steps=200, smoothing=0.98, divergence=4.0,
         class_weight=None):
    """Trains `model` with Adam while the rate grows from `start` to `end` over `steps` (a Keras
    `ExponentialDecay` that grows), one batch a step; stops early once the smoothed loss passes `divergence` times
    its lowest. The model's weights are restored afterwards.

    Args:
        model: The Keras model to train (e.g. a head over cached activations).
        fit_kwargs: Keras `fit` arguments: `x` a dataset of batches, or arrays `x`, `y` and `batch_size`.
        loss: The Keras loss.
        scope: A function returning the context to compile in (the strategy's scope).
        start, end: The first and last rates of the ramp.
        steps: Optimizer steps over the ramp.
        smoothing: The moving average's factor.
        divergence: Stop once the smoothed loss exceeds this multiple of its lowest.
        class_weight: Keras class weights, or None.

    Returns:
        A `LearningRateFinding`.

    Raises:
        ValueError: the ramp is not `0 < start < end` over at least 10 steps, or gives nothing to suggest (the loss
            was never finite, or never fell below its first value).
    """
    if not 0 < start < end or int(steps) < 10:
        raise ValueError(f"The finder's ramp needs 0 < start < end and steps >= 10; got start={start}, end={end}, "
                         f"steps={steps}.")
    growth = (end / start) ** (1 / (steps - 1))
    weights = [np.array(w) for w in model.get_weights()]
    with scope():
        schedule = keras.optimizers.schedules.ExponentialDecay(start, decay_steps=1, decay_rate=growth)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    rates, losses, smoothed, average = [], [], [], 0.0
    try:
        for step, (inputs, labels) in zip(range(steps), _batches(fit_kwargs)):
            value = float(np.asarray(model.train_on_batch(inputs, labels, class_weight=class_weight)).ravel()[0])
            average = smoothing * average + (1 - smoothing) * value
            rates.append(start * growth**step)
            losses.append(value)
            smoothed.append(average / (1 - smoothing ** (step + 1)))
            if not np.isfinite(value) or smoothed[-1] > divergence * min(smoothed):
                break
    finally:
        model.set_weights(weights)
    rates, losses, smoothed = np.array(rates), np.array(losses), np.array(smoothed)
    kept = np.isfinite(smoothed)
    _check_the_loss_fell(rates[kept], smoothed[kept], losses, start, end, int(steps))
    return LearningRateFinding(rates, losses, smoothed, float(valley(rates[kept], smoothed[kept])),
                               float(steepest(rates[kept], smoothed[kept])))
