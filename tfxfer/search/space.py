"""What a search explores: freeze depth (or, across several extractors, (extractor, freeze depth) candidates), the two
learning rates, layer-wise rate decay, warm-up and the head."""

import dataclasses
import numbers

from tfxfer.training.heads import Head
from tfxfer.training.phases import regime_for_depth


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
        batch_norm: Whether the head normalises its input (`Head(batch_norm=...)`): True, False or `"auto"` (on for
            text extractors), or choices such as `[True, False]` to tune it.
        warmup_epochs: Head warm-up epochs before unfreezing: a value or choices.
        layer_decay: timm's layer-wise rate decay for trials that train blocks (see `TransferModel`): a value or
            choices in (0, 1], e.g. `[1.0, 0.9, 0.75]`; 1.0 is one rate for every block (the default, undeclared).
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
    batch_norm: bool | str | list = "auto"
    warmup_epochs: int | list = 5
    layer_decay: float | list = 1.0

    def check(self, n_blocks):
        """Raises ValueError naming the first hyperparameter whose values are out of range."""
        frozen = list(range(n_blocks + 1)) if self.frozen_blocks is None else _values(self.frozen_blocks)
        bad = [k for k in frozen if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n_blocks]
        if bad or not frozen:
            raise ValueError(f"frozen_blocks must be whole numbers from 0 to {n_blocks} (the extractor's blocks); "
                             f"got {self.frozen_blocks!r}.")
        for name in ("learning_rate", "fine_tune_learning_rate"):
            values = _values(getattr(self, name))
            if len(values) not in (1, 2) or any(not isinstance(v, numbers.Real) or not 0 < v < 1 for v in values) \
                    or values != sorted(values):
                raise ValueError(f"{name} must be a rate in (0, 1) or a range (low, high) of such rates; "
                                 f"got {getattr(self, name)!r}.")
        dropout = _values(self.dropout)
        if len(dropout) not in (1, 2) or any(not 0 <= v < 1 for v in dropout) or dropout != sorted(dropout):
            raise ValueError(f"dropout must be in [0, 1) or a range (low, high) within it; got {self.dropout!r}.")
        if any(not isinstance(u, int) or u < 0 for u in _values(self.hidden_units)):
            raise ValueError(f"hidden_units must be whole numbers >= 0; got {self.hidden_units!r}.")
        if any(not isinstance(v, numbers.Real) or v < 0 for v in _values(self.l2)):
            raise ValueError(f"l2 must be numbers >= 0; got {self.l2!r}.")
        decays = _values(self.layer_decay)
        if any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v <= 1 for v in decays):
            raise ValueError(f"layer_decay must be numbers in (0, 1]; got {self.layer_decay!r}.")
        if all(k == n_blocks for k in frozen) and any(v != 1 for v in decays):  # it was dropped, silently
            raise ValueError(f"layer_decay={self.layer_decay!r} does nothing when every trial freezes every block "
                             f"(frozen_blocks={self.frozen_blocks!r} of {n_blocks}): leave it out, or let trials "
                             "freeze fewer blocks.")
        if any(v not in (True, False, "auto") for v in _values(self.batch_norm)):
            raise ValueError(f"batch_norm must be True, False, 'auto' or choices of them; got {self.batch_norm!r}.")
        if any(not isinstance(v, int) or v < 0 for v in _values(self.warmup_epochs)):
            raise ValueError(f"warmup_epochs must be whole numbers >= 0; got {self.warmup_epochs!r}.")
        return frozen

    def sample(self, hp, n_blocks, candidates=None, input_kind=None):
        """Declares the hyperparameters in `hp` and returns this trial's values as a dict.

        The values include `regime`, the plan the trial trains in (see `tfxfer.training.phases.regime_for_depth`):
        deep feature extraction with every block frozen, full fine-tuning with none, mid-layer between (each after
        `warmup_epochs` of head warm-up, the unfrozen blocks at `fine_tune_learning_rate`).

        Args:
            hp: Keras Tuner's `HyperParameters`.
            n_blocks: The extractor's blocks; across several extractors, `{extractor: blocks}`.
            candidates: Across several extractors, the `"extractor@depth"` pairs to choose from (one hyperparameter,
                `candidate`, instead of `frozen_blocks`; see `tfxfer.search.candidates`); the values then include
                `extractor`.
            input_kind: The extractors' (`"image"` or `"text"`): `batch_norm="auto"` is sampled as what it means for
                them (True for text), so that trials and their table say whether the head normalises.

        Example:
            >>> import keras_tuner as kt
            >>> values = SearchSpace(frozen_blocks=[3], learning_rate=1e-3).sample(kt.HyperParameters(), 4)
            >>> values["regime"], values["frozen_blocks"], values["warmup_epochs"]
            ('mid-layer', 3, 5)
        """
        if candidates is None:
            frozen = self.check(n_blocks)
            values = {"frozen_blocks": _choice(hp, "frozen_blocks", frozen)}
            parent, training = "frozen_blocks", [k for k in frozen if k < n_blocks]
        else:
            pick = hp.Fixed("candidate", candidates[0]) if len(candidates) == 1 else \
                hp.Choice("candidate", candidates, ordered=False)
            values = dict(zip(("extractor", "frozen_blocks"), split_candidate(pick)))
            parent, training = "candidate", [c for c in candidates if _trains(c, n_blocks)]
            n_blocks = n_blocks[values["extractor"]]
        values["learning_rate"] = _rate(hp, "learning_rate", self.learning_rate)
        if training:
            with hp.conditional_scope(parent, training):
                values["fine_tune_learning_rate"] = _rate(hp, "fine_tune_learning_rate", self.fine_tune_learning_rate)
                values["warmup_epochs"] = _choice(hp, "warmup_epochs", _values(self.warmup_epochs))
                if _values(self.layer_decay) != [1.0]:
                    values["layer_decay"] = _choice(hp, "layer_decay", _values(self.layer_decay))
        values["hidden_units"] = _choice(hp, "hidden_units", _values(self.hidden_units))
        dropout = _values(self.dropout)
        values["dropout"] = (hp.Fixed("dropout", dropout[0]) if len(dropout) == 1 else
                             hp.Float("dropout", dropout[0], dropout[1], step=0.1))
        values["l2"] = _choice(hp, "l2", _values(self.l2))
        norms = _values(self.batch_norm) if input_kind is None else \
            list(dict.fromkeys(Head(batch_norm=value).normalises(input_kind) for value in _values(self.batch_norm)))
        values["batch_norm"] = _choice(hp, "batch_norm", norms)
        values["regime"] = regime_for_depth(values["frozen_blocks"], n_blocks)
        return values

    def centred_on(self, rate, factor=10.0):
        """This space with the head's learning rate ranging from `rate / factor` to `rate * factor`, e.g. around
        the learning-rate finder's valley (`TransferModel.find_learning_rate`), which measures the head's rate.

        Example:
            >>> SearchSpace().centred_on(3e-3).learning_rate
            (0.0003, 0.03)
        """
        if not 0 < rate < 1 or factor <= 1:
            raise ValueError(f"centred_on needs a rate in (0, 1) and a factor > 1; got rate={rate}, factor={factor}.")
        low, high = float(f"{rate / factor:.3g}"), float(f"{min(rate * factor, 0.5):.3g}")
        return dataclasses.replace(self, learning_rate=(low, high))


def candidate_name(extractor, depth):
    """The value of the `candidate` hyperparameter for `depth` frozen blocks of `extractor` (its source).

    Example:
        >>> candidate_name("mobilenet_v2", 12), split_candidate("mobilenet_v2@12")
        ('mobilenet_v2@12', ('mobilenet_v2', 12))
    """
    return f"{extractor}@{depth}"


def split_candidate(name):
    """`(extractor, depth)` of a `candidate` value (see `candidate_name`)."""
    extractor, _, depth = name.rpartition("@")
    return extractor, int(depth)


def _trains(candidate, n_blocks):
    """Whether a candidate leaves blocks to train; `n_blocks` is its extractor's count, or `{extractor: count}`."""
    extractor, depth = split_candidate(candidate)
    return depth < (n_blocks[extractor] if isinstance(n_blocks, dict) else n_blocks)


def _choice(hp, name, values):
    return hp.Fixed(name, values[0]) if len(values) == 1 else hp.Choice(name, values, ordered=True)


def _rate(hp, name, value):
    values = _values(value)
    return hp.Fixed(name, values[0]) if len(values) == 1 else hp.Float(name, values[0], values[1], sampling="log")
