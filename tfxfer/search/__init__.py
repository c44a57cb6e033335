"""Search: `TransferSearch` runs Keras Tuner over a `SearchSpace` of freeze depths, learning rates and heads, each
trial a `TransferModel` built by the `TransferHyperModel`; `search_results` reads a search's table from its folder;
`distributed` keeps a chief/worker search going through dead workers and restarted chiefs."""

from tfxfer import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "hypermodel": ["TransferHyperModel"],
    "probing": ["probe"],
    "results": ["search_results"],
    "search": ["TransferSearch"],
    "space": ["SearchSpace"],
})
