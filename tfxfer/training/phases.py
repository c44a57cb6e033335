"""The three regimes of transfer as plans: each regime is a short function returning the phases it trains in.

A `Phase` says how many leading blocks stay frozen, for how many epochs, and at what learning rate. `TransferModel`
trains a plan phase by phase, `SearchSpace.sample` chooses a trial's regime from its freeze depth, and the reports
draw the plan; so all three read the same plan. (fastai's `fine_tune` in `fastai/callback/schedule.py` is the
model: freeze, fit the head, unfreeze, fit again at a lower rate.)

- deep feature extraction: every block frozen, the head trains.
- mid-layer: the first k blocks frozen (default half); the rest train with the head, at the head's rate, or, after
  an optional head warm-up, at the fine-tuning rate.
- full fine-tuning: a head warm-up on the frozen extractor, then every block (or all after k) at a low rate.
"""

import dataclasses
import inspect
import numbers

#: The schedules a phase can follow (see `tfxfer.training.schedules`).
SCHEDULES = ("constant", "cosine", "one-cycle")


@dataclasses.dataclass(frozen=True)
class Phase:
    """One stretch of training with a fixed set of frozen blocks.

    Attributes:
        name: `"head"` (every block frozen: the head trains), `"warm-up"` (the head, before blocks are unfrozen),
            `"train"` (mid-layer with no warm-up: the unfrozen blocks and the head together) or `"fine-tune"`
            (blocks unfrozen after a warm-up).
        frozen_blocks: Leading blocks kept frozen.
        epochs: Most epochs (early stopping may end the phase sooner).
        learning_rate: Adam's rate (the head's, where blocks have rates of their own).
        schedule: How the rate moves within the phase: `"constant"`, `"cosine"` (warm-up, then cosine decay) or
            `"one-cycle"` (see `tfxfer.training.schedules`).
        layer_decay: timm's layer-wise decay: trainable block `i` of `n` at `learning_rate * layer_decay ** (n - i)`
            (see `tfxfer.training.rates.block_scales`); None for one rate.
        block_rates: fastai's `(low, high)`: the trainable blocks and the head spaced geometrically from `low` to
            `high` (`learning_rate` is then `high`); None for one rate.
    """

    name: str
    frozen_blocks: int
    epochs: int
    learning_rate: float
    schedule: str = "constant"
    layer_decay: float | None = None
    block_rates: tuple | None = None

    @property
    def title(self):
        """The phase in words: head training, warm-up, training, fine-tuning."""
        return {"head": "head training", "warm-up": "head warm-up", "train": "training",
                "fine-tune": "fine-tuning"}[self.name]

    def line(self, index, count, n_blocks):
        """The phase in one line as it begins, phase `index` (from 0) of `count`.

        Example:
            >>> Phase("fine-tune", 0, 20, 1e-5).line(1, 2, 19)
            'fine-tuning (phase 2 of 2): 0 of 19 blocks frozen, learning rate 1e-05, at most 20 epochs'
        """
        rates = " (lower for lower blocks)" if self.layer_decay or self.block_rates else ""
        return (f"{self.title} (phase {index + 1} of {count}): {self.frozen_blocks} of {n_blocks} blocks frozen, "
                f"learning rate {self.learning_rate:g}{rates}, at most {self.epochs} epochs")

    @property
    def fine_tunes(self):
        """Whether this phase trains blocks after a head warm-up (or is full fine-tuning's only phase)."""
        return self.name == "fine-tune"


def feature_extraction(n_blocks, *, epochs, learning_rate, freeze_blocks=None, **_):
    """Deep feature extraction: one phase, every block frozen (`freeze_blocks`, if given, must be all of them).

    Example:
        >>> [(phase.name, phase.frozen_blocks, phase.learning_rate) for phase in feature_extraction(19, epochs=20,
        ...                                                                                       learning_rate=1e-3)]
        [('head', 19, 0.001)]
    """
    if freeze_blocks not in (None, n_blocks):
        raise ValueError(f"freeze_blocks={freeze_blocks} does nothing in deep feature extraction, which freezes every "
                         f"block ({n_blocks}): pass regime='mid-layer' or regime='fine-tune' to keep {freeze_blocks} "
                         "frozen, or leave freeze_blocks out.")
    return [Phase("head", n_blocks, epochs, learning_rate)]


def mid_layer(n_blocks, *, epochs, learning_rate, freeze_blocks=None, warmup_epochs=None,
              fine_tune_learning_rate=None, **_):
    """Mid-layer feature extraction: the first `freeze_blocks` (default half) frozen, the rest train.

    With no warm-up (the default) the unfrozen blocks and the head train together at `learning_rate`; with
    `warmup_epochs`, the head first trains alone, then the blocks after the frozen ones at `fine_tune_learning_rate`
    (as a search's partially frozen trials do).

    Example:
        >>> [phase.name for phase in mid_layer(19, epochs=20, learning_rate=1e-3, warmup_epochs=5,
        ...                                    fine_tune_learning_rate=1e-5)]
        ['warm-up', 'fine-tune']
    """
    frozen = n_blocks // 2 if freeze_blocks is None else freeze_blocks
    _check_trains_blocks("mid-layer", frozen, n_blocks)
    if not warmup_epochs:
        return [Phase("train", frozen, epochs, learning_rate)]
    return [Phase("warm-up", n_blocks, warmup_epochs, learning_rate),
            Phase("fine-tune", frozen, epochs, fine_tune_learning_rate)]


def fine_tune(n_blocks, *, epochs, learning_rate, fine_tune_learning_rate, freeze_blocks=None, warmup_epochs=5,
              **_):
    """Full fine-tuning: the head warms up on the frozen extractor, then the blocks after `freeze_blocks` (default:
    all of them) train at `fine_tune_learning_rate`.

    The warm-up comes first because a random head sends large gradients into the pretrained weights and wrecks them.

    Example:
        >>> [(phase.name, phase.frozen_blocks) for phase in fine_tune(19, epochs=20, learning_rate=1e-3,
        ...                                                           fine_tune_learning_rate=1e-5)]
        [('warm-up', 19), ('fine-tune', 0)]
    """
    _check_trains_blocks("fine-tune", freeze_blocks, n_blocks)
    warmup = [Phase("warm-up", n_blocks, warmup_epochs, learning_rate)] if warmup_epochs else []
    return warmup + [Phase("fine-tune", 0 if freeze_blocks is None else freeze_blocks, epochs,
                           fine_tune_learning_rate)]


def _check_trains_blocks(regime, freeze_blocks, n_blocks):
    """Refuses a regime that trains blocks with every block frozen: it would train the head alone, silently."""
    if freeze_blocks == n_blocks:
        raise ValueError(f"freeze_blocks={freeze_blocks} freezes every block, so regime={regime!r} would train the "
                         "head alone: pass regime='feature-extraction' for that, or freeze fewer blocks.")


#: The regimes by canonical name, each a function `(n_blocks, **settings) -> [Phase, ...]`.
REGIMES = {"feature-extraction": feature_extraction, "mid-layer": mid_layer, "fine-tune": fine_tune}

#: The default warm-up epochs of each regime, when `warmup_epochs` is not given.
DEFAULT_WARMUP = {"feature-extraction": 0, "mid-layer": 0, "fine-tune": 5}

_ALIASES = {"deep-feature-extraction": "feature-extraction", "mid-layer-feature-extraction": "mid-layer",
            "fine-tuning": "fine-tune", "finetune": "fine-tune"}


def regime_name(regime):
    """The canonical name of a regime (`feature_extraction`, `Fine-Tuning`... are accepted).

    Example:
        >>> regime_name("fine_tuning")
        'fine-tune'
    """
    key = str(regime).lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in REGIMES:
        raise ValueError(f"regime must be one of {tuple(REGIMES)}; got {regime!r}.")
    return key


def plan(regime, n_blocks, **settings):
    """The phases of `regime` for an extractor of `n_blocks`.

    Args:
        regime: A regime name (see `regime_name`).
        n_blocks: The extractor's blocks.
        **settings: `epochs`, `learning_rate`, `fine_tune_learning_rate`, `freeze_blocks`, `warmup_epochs` (None:
            the regime's default).

    Returns:
        A list of `Phase`, in training order.

    Example:
        >>> [phase.frozen_blocks for phase in plan("mid-layer", 19, epochs=3, learning_rate=1e-3)]
        [9]
    """
    name = regime_name(regime)
    if settings.get("warmup_epochs") is None:
        settings["warmup_epochs"] = DEFAULT_WARMUP[name]
    for key, kind in (("learning_rate", float), ("fine_tune_learning_rate", float), ("epochs", int),
                      ("warmup_epochs", int), ("freeze_blocks", int)):  # NumPy's numbers as Python's, for Keras
        if settings.get(key) is not None:
            settings[key] = kind(settings[key])
    return REGIMES[name](n_blocks, **settings)


def ignored_settings(regime, **settings):
    """The settings given (not None, not 0) that `regime` has no use for, in the order given.

    Example:
        >>> ignored_settings("feature-extraction", freeze_blocks=3, warmup_epochs=None)
        ['freeze_blocks']
    """
    unused = {"feature-extraction": ("freeze_blocks", "warmup_epochs", "layer_decay", "block_rates")}
    unused = unused.get(regime_name(regime), ())
    return [name for name, value in settings.items() if value and name in unused]


def regime_for_depth(frozen_blocks, n_blocks):
    """The regime a trial with `frozen_blocks` of `n_blocks` frozen trains in: all frozen is deep feature extraction,
    none frozen full fine-tuning, anything between mid-layer.

    Example:
        >>> [regime_for_depth(k, 19) for k in (19, 10, 0)]
        ['feature-extraction', 'mid-layer', 'fine-tune']
    """
    if frozen_blocks >= n_blocks:
        return "feature-extraction"
    return "fine-tune" if frozen_blocks == 0 else "mid-layer"


def check_schedule(schedule, name="schedule"):
    """Raises ValueError naming `name` unless `schedule` is one of `SCHEDULES`.

    Example:
        >>> check_schedule("one-cycle") is None
        True
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"{name} must be one of {SCHEDULES}; got {schedule!r}.")


def with_recipe(phases, n_blocks, *, schedule="constant", layer_decay=None, block_rates=None):
    """The phases with a schedule each and, where blocks train, their rates per block.

    Args:
        phases: A plan (a list of `Phase`).
        n_blocks: The extractor's blocks.
        schedule: A schedule for every phase, or `{phase name: schedule}` (phases not named stay constant).
        layer_decay: For phases that train blocks: timm's decay factor.
        block_rates: For phases that train blocks: fastai's `(low, high)`; the phase's rate becomes `high`.

    Example:
        >>> phases = with_recipe(fine_tune(4, epochs=3, learning_rate=1e-3, fine_tune_learning_rate=1e-5), 4,
        ...                      schedule={"fine-tune": "cosine"}, block_rates=(1e-6, 1e-4))
        >>> [(p.name, p.schedule, p.learning_rate, p.block_rates) for p in phases]
        [('warm-up', 'constant', 0.001, None), ('fine-tune', 'cosine', 0.0001, (1e-06, 0.0001))]
    """
    schedules = schedule if isinstance(schedule, dict) else {phase.name: schedule for phase in phases}
    unknown = sorted(set(schedules) - {"head", "warm-up", "train", "fine-tune"})
    if unknown:
        raise ValueError(f"schedule names phases {unknown}; phases are 'head', 'warm-up', 'train' and 'fine-tune'.")
    for name, value in schedules.items():
        check_schedule(value, f"schedule[{name!r}]" if isinstance(schedule, dict) else "schedule")
    names = [phase.name for phase in phases]
    missing = [name for name in schedules if name not in names]
    if missing:  # mid-layer without a warm-up trains one phase, "train": a "fine-tune" schedule would do nothing
        raise ValueError(f"schedule names phase {missing[0]!r}, which this plan does not have: its phases are "
                         f"{names}. Name those, or pass one schedule for every phase.")
    trains_blocks = any(phase.frozen_blocks < n_blocks for phase in phases)
    for name, value in (("layer_decay", layer_decay), ("block_rates", block_rates)):
        if value is not None and not trains_blocks:
            raise ValueError(f"{name}={value} does nothing when every block stays frozen (freeze_blocks={n_blocks} "
                             f"of {n_blocks}): leave it out, or freeze fewer blocks.")
    result = []
    for phase in phases:
        changes = {"schedule": schedules.get(phase.name, "constant")}
        if phase.frozen_blocks < n_blocks and (layer_decay is not None or block_rates is not None):
            changes.update(layer_decay=None if layer_decay is None else float(layer_decay),
                           block_rates=None if block_rates is None else tuple(map(float, block_rates)))
            if block_rates is not None:
                changes["learning_rate"] = float(block_rates[1])
        result.append(dataclasses.replace(phase, **changes))
    return result


def check_settings(model):
    """Raises ValueError naming the first of a `TransferModel`'s training settings that is out of range, that its
    regime has no use for, or that another setting would silently replace."""
    from tfxfer.training.rates import check_block_rates

    regime = regime_name(model.regime)
    for name in ("learning_rate", "fine_tune_learning_rate"):
        value = getattr(model, name)
        if not _real(value) or not 0 < value < float("inf"):
            raise ValueError(f"{name} must be a positive number; got {value!r}.")
    for name, least in (("warmup_epochs", 0), ("epochs", 1)):
        value = getattr(model, name)
        if not (name == "warmup_epochs" and value is None) and (
                not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least):
            raise ValueError(f"{name} must be a whole number >= {least}; got {value!r}.")
    check_block_rates(model.layer_decay, model.block_rates)
    for name in ("label_smoothing", "weight_decay"):
        value = getattr(model, name) or 0.0
        if not _real(value) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a number in [0, 1); got {value!r}.")
    if model.jit_compile not in ("auto", True, False):
        raise ValueError(f"jit_compile must be 'auto', True or False; got {model.jit_compile!r}.")
    unused = ignored_settings(regime, warmup_epochs=model.warmup_epochs, layer_decay=model.layer_decay,
                              block_rates=model.block_rates)
    if unused:
        raise ValueError(f"{unused[0]}={getattr(model, unused[0])} does nothing with regime={model.regime!r}; "
                         "leave it out, or pass regime='mid-layer' or regime='fine-tune'.")
    if model.block_rates is not None:  # its high rate is the rate of the phase that trains blocks
        name = "learning_rate" if regime == "mid-layer" and not model.warmup_epochs else "fine_tune_learning_rate"
        if getattr(model, name) != inspect.signature(type(model)).parameters[name].default:
            raise ValueError(f"block_rates={tuple(model.block_rates)} gives the phase that trains blocks its rates "
                             f"(the last block and the head at high, {model.block_rates[1]:g}), so "
                             f"{name}={getattr(model, name)!r} would do nothing: pass one of them.")


def _real(value):
    """Whether `value` is a real number (NumPy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
