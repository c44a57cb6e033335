"""Reports of a run for people: training curves, a search's results and a probe's (`plots`), how a model does per
class, label or target (`evaluation`), as matplotlib figures, and a Markdown report with them (`markdown`).

The figures are made without pyplot, so importing this package or plotting never selects or changes a matplotlib
backend, and they show themselves inline in Jupyter.
"""

from tfxfer import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "markdown": ["markdown_table", "write_report"],
    "evaluation": ["plot_confusion"],
    "plots": ["ReportFigure", "plot_history", "plot_probe", "plot_search"],
})
