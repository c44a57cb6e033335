"""Learning rates per block: timm's layer-wise decay and fastai's low/high spread, for any Keras 3 optimizer.

Keras optimizers have one learning rate. `with_block_rates` gives each variable a multiple of it by scaling the
rate inside `update_step`, the method every Keras optimizer implements per variable, so the *update* follows the
block's rate whatever the optimizer does with the gradient (scaling gradients would do nothing under Adam, which
divides them by their own magnitude). Decoupled weight decay is taken over from the optimizer and applied at each
variable's own rate. The scaled rate follows the optimizer's schedule, and it works under a distribution strategy
because Keras calls `update_step` once per variable on each replica's copy.
"""

import math
import numbers

import keras

from tfxfer import _compat


def block_scales(n_blocks, frozen_blocks, *, layer_decay=None, rates=None):
    """The multiple of a phase's learning rate at which each trainable block trains (the head trains at 1).

    Args:
        n_blocks: The extractor's blocks.
        frozen_blocks: Leading blocks that stay frozen (they get no rate).
        layer_decay: timm's rule: block `i` trains at `layer_decay ** (n_blocks - i)`; the top block at
            `layer_decay`, each block below one factor more.
        rates: fastai's rule, `(low, high)`: the trainable blocks and the head are spaced geometrically from `low`
            (the lowest trainable block) to `high` (the head); multiples are of `high`, the phase's rate.

    Returns:
        `{block index: multiple}` for blocks `frozen_blocks..n_blocks-1`; empty when neither rule is given.

    Example:
        >>> block_scales(4, 2, layer_decay=0.5)
        {2: 0.25, 3: 0.5}
        >>> {k: round(v, 4) for k, v in block_scales(4, 2, rates=(1e-5, 1e-3)).items()}
        {2: 0.01, 3: 0.1}
    """
    trainable = range(frozen_blocks, n_blocks)
    if layer_decay is not None:
        return {i: float(layer_decay) ** (n_blocks - i) for i in trainable}
    if rates is not None:
        low, high = rates
        groups = len(trainable)  # the blocks, then the head at step `groups`
        return {i: math.exp((g - groups) / groups * math.log(high / low)) for g, i in enumerate(trainable)}
    return {}


def check_block_rates(layer_decay, rates):
    """Raises ValueError naming `layer_decay` or `block_rates` when it is out of range or both are given."""
    if layer_decay is not None and rates is not None:
        raise ValueError("layer_decay and block_rates are two ways to give blocks their own rates; pass one of them.")
    if layer_decay is not None and (isinstance(layer_decay, bool) or not isinstance(layer_decay, numbers.Real)
                                    or not 0 < layer_decay <= 1):
        raise ValueError(f"layer_decay must be a number in (0, 1] (e.g. 0.75); got {layer_decay!r}.")
    if rates is not None:
        ok = isinstance(rates, (tuple, list)) and len(rates) == 2 and all(
            isinstance(r, numbers.Real) and not isinstance(r, bool) and 0 < r < math.inf for r in rates)
        if not ok or rates[0] > rates[1]:
            raise ValueError(f"block_rates must be a pair (low, high) of positive finite rates with low <= high, "
                             f"e.g. (1e-6, 1e-4); got {rates!r}.")


class _BlockRates:
    """Mixed in before a Keras optimizer class: `update_step` at the variable's multiple of the rate."""

    def __init__(self, *args, weight_decay=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.block_weight_decay = weight_decay
        self.rate_scales = {}
        self._scales = []

    def build(self, variables):
        super().build(variables)
        self._scales = [self.rate_scales.get(id(variable), 1.0) for variable in variables]
        if self.rate_scales and not any(id(variable) in self.rate_scales for variable in variables):
            raise ValueError("None of the variables given rates per block is among those the optimizer trains; "
                             "give the rates for the model being compiled.")

    def update_step(self, gradient, variable, learning_rate):
        rate = learning_rate * self._scales[_compat.optimizer_variable_index(self, variable)]
        if self.block_weight_decay:
            variable.assign(variable - variable * keras.ops.cast(self.block_weight_decay, variable.dtype) * rate)
        return super().update_step(gradient, variable, rate)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.block_weight_decay}


def with_block_rates(optimizer, scales):
    """A copy of a Keras optimizer whose update of each variable uses its own multiple of the learning rate.

    Args:
        optimizer: A Keras optimizer (not built yet), e.g. `keras.optimizers.Adam(1e-3, weight_decay=1e-4)`. Its
            weight decay is applied to each variable at that variable's rate.
        scales: `(variable, multiple)` pairs for the variables that do not train at the optimizer's rate.

    Returns:
        An optimizer of a subclass of `type(optimizer)` with the same configuration.

    Example:
        >>> weight = keras.Variable([1.0, 1.0])
        >>> sgd = with_block_rates(keras.optimizers.SGD(0.1), [(weight, 0.5)])
        >>> sgd.apply([tf.constant([1.0, 2.0])], [weight]); [round(float(w), 6) for w in weight.numpy()]  # 1 - 0.05 * g
        [0.95, 0.9]
    """
    base = type(optimizer)
    cls = type(f"{base.__name__}WithBlockRates", (_BlockRates, base), {})
    copy = cls.from_config(optimizer.get_config())
    copy.rate_scales = {id(variable): float(scale) for variable, scale in scales}
    return copy


def variable_scales(extractor, scales):
    """`(variable, multiple)` pairs of the learnable variables of each block in `scales` (`{block index: multiple}`)."""
    return [(variable, scale) for index, scale in scales.items() for variable in extractor.blocks[index].learnable]
