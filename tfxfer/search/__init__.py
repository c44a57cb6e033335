"""Search: `TransferSearch` runs Keras Tuner over a `SearchSpace` of freeze depths, learning rates and heads, each
trial a `TransferModel` built by the `TransferHyperModel`; `search_results` reads a search's table from its folder;
`distributed` keeps a chief/worker search going through dead workers and restarted chiefs."""

from tfxfer.search.hypermodel import TransferHyperModel
from tfxfer.search.results import search_results
from tfxfer.search.search import TransferSearch
from tfxfer.search.space import SearchSpace

__all__ = ["SearchSpace", "TransferHyperModel", "TransferSearch", "search_results"]
