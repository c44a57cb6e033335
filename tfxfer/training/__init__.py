"""Training: `TransferModel` trains an extractor and a `Head` in a regime's plan of phases, on the activations a
`FeatureCache` computed once wherever the frozen blocks allow it, inside the strategy `pick_strategy` chose; `distill`
trains a small student on a teacher's soft predictions."""

from tfxfer import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "distillation": ["distill"],
    "feature_cache": ["FeatureCache"],
    "heads": ["Head", "build_model"],
    "lr_finder": ["LearningRateFinding", "ramp"],
    "model": ["TransferModel"],
    "rates": ["block_scales", "with_block_rates"],
    "recipe": ["flip_averaged"],
    "schedules": ["OneCycle"],
    "phases": ["REGIMES", "Phase", "plan", "regime_name"],
    "strategy": ["pick_precision", "pick_strategy"],
})
