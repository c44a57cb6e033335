"""Reports of a run for people: training curves, a search's results and per-class results as matplotlib figures
(`plots`), and a Markdown report with them (`markdown`).

The figures are made without pyplot, so importing this package or plotting never selects or changes a matplotlib
backend, and they show themselves inline in Jupyter.
"""

from tfxfer import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "markdown": ["markdown_table", "write_report"],
    "plots": ["ReportFigure", "plot_confusion", "plot_history", "plot_search"],
})
