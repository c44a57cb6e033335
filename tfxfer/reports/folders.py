"""The files a report folder holds, and the check that writing a report there replaces none of a user's files.

Apart from `markdown` so that the command line checks `--report` before it loads TensorFlow (seconds), not after.
"""

from pathlib import Path

#: The plots `write_report` writes, by file name: the history, the search, and each `Task.evaluation_plot`.
PLOT_FILES = {"history": "history.png", "search": "search.png", "probe": "probe.png", "confusion": "confusion.png",
              "label_scores": "label_scores.png", "predicted_vs_true": "predicted_vs_true.png"}


def check_report_folder(folder, instead=""):
    """Raises when `folder` is a file or already holds a report's files, which writing a report would replace."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file; a report is a folder (report.md and its plots): pass a folder.")
    held = sorted(name for name in ["report.md", *PLOT_FILES.values()] if (folder / name).exists())
    if held:
        raise FileExistsError(f"{folder} already holds a report ({', '.join(held)}): write this one to another "
                              f"folder{instead}.")
