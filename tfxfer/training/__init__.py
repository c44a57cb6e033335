"""Training: `TransferModel` trains an extractor and a `Head` in a regime's plan of phases, on the activations a
`FeatureCache` computed once wherever the frozen blocks allow it, inside the strategy `pick_strategy` chose."""

from tfxfer.training.feature_cache import FeatureCache
from tfxfer.training.heads import Head
from tfxfer.training.model import TransferModel, build_model
from tfxfer.training.phases import REGIMES, Phase, plan, regime_name
from tfxfer.training.strategy import pick_strategy

__all__ = ["FeatureCache", "Head", "Phase", "REGIMES", "TransferModel", "build_model", "pick_strategy", "plan",
           "regime_name"]
