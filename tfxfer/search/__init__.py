"""Search: `TransferSearch` runs Keras Tuner over a `SearchSpace` of freeze depths, learning rates and heads, each
trial a `TransferModel` built by the `TransferHyperModel`; `search_results` reads a search's table from its folder;
`distributed` keeps a chief/worker search going through dead workers and restarted chiefs."""

from tfxfer import _lazy

#: What tfxfer adds to Keras Tuner's project folder as a search begins: the objective and its direction, the
#: extractor and the space (here, read without TensorFlow, for the command line).
SEARCH_FILE = "tfxfer_search.json"

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "hypermodel": ["TransferHyperModel"],
    "probing": ["probe"],
    "results": ["search_results"],
    "search": ["TransferSearch"],
    "space": ["SearchSpace"],
})
