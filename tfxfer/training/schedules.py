"""How the learning rate moves within a phase: constant, warm-up then cosine decay, or one-cycle.

- `"constant"`: the phase's rate at every step.
- `"cosine"`: Keras' `CosineDecay` with a linear warm-up to the phase's rate over the first `WARMUP_FRACTION` of
  the phase's `w` steps (from `rate / (w + 1)`, not 0: a phase of one step would not train at all), then a cosine
  down to 0 at its last step.
- `"one-cycle"` (fastai's `fit_one_cycle`): a cosine up from `rate / 25` to the rate over the first quarter of the
  steps, then a cosine down to `rate / 1e5`.

Steps are counted over the phase's most epochs; early stopping may end a phase before its rate has come down.
"""

import math

import keras

from tfxfer.training.phases import check_schedule

#: The share of a cosine phase's steps spent warming up.
WARMUP_FRACTION = 0.1


@keras.saving.register_keras_serializable(package="tfxfer")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """fastai's one-cycle schedule: a cosine from `max_rate / div` up to `max_rate` over `pct_start` of the steps,
    then a cosine down to `max_rate / final_div`.

    Args:
        max_rate: The peak rate.
        total_steps: Steps of the whole cycle.
        pct_start: The share of the steps spent rising.
        div: The starting rate is `max_rate / div`.
        final_div: The last rate is `max_rate / final_div`.

    Example:
        >>> schedule = OneCycle(1e-3, 100)
        >>> [float(f"{float(schedule(step)):.3g}") for step in (0, 25, 100)]
        [4e-05, 0.001, 1e-08]
    """

    def __init__(self, max_rate, total_steps, pct_start=0.25, div=25.0, final_div=1e5):
        self.max_rate, self.total_steps = float(max_rate), int(total_steps)
        self.pct_start, self.div, self.final_div = float(pct_start), float(div), float(final_div)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        up = max(1.0, self.pct_start * self.total_steps)
        down = max(1.0, self.total_steps - up)

        def cosine(start, end, fraction):
            fraction = keras.ops.clip(fraction, 0.0, 1.0)
            return end + (start - end) * (1 + keras.ops.cos(math.pi * fraction)) / 2

        rising = cosine(self.max_rate / self.div, self.max_rate, step / up)
        falling = cosine(self.max_rate, self.max_rate / self.final_div, (step - up) / down)
        return keras.ops.where(step < up, rising, falling)

    def get_config(self):
        return {"max_rate": self.max_rate, "total_steps": self.total_steps, "pct_start": self.pct_start,
                "div": self.div, "final_div": self.final_div}


def learning_rate(schedule, rate, steps):
    """The learning rate (a number or a Keras schedule) of a phase at `rate` over `steps` optimizer steps.

    Example:
        >>> cosine = learning_rate("cosine", 1e-3, 100)
        >>> [round(float(cosine(step)), 6) for step in (0, 10, 55, 100)]
        [9.1e-05, 0.001, 0.0005, 0.0]
    """
    check_schedule(schedule)
    if schedule == "constant":
        return rate
    steps = max(int(steps), 2)
    if schedule == "one-cycle":
        return OneCycle(rate, steps)
    warmup = max(1, round(WARMUP_FRACTION * steps))
    return keras.optimizers.schedules.CosineDecay(rate / (warmup + 1), steps - warmup, warmup_target=rate,
                                                  warmup_steps=warmup)
