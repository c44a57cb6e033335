"""The notebooks run top to bottom as a user runs them: small setting, a fresh working folder, plots shown inline."""

import base64
import struct
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

pytestmark = pytest.mark.slow


def execute(name, folder, monkeypatch):
    """Runs a notebook in `folder` with TFXFER_NOTEBOOK_SMALL=1 (read by its parameter cell); returns it executed."""
    monkeypatch.setenv("TFXFER_NOTEBOOK_SMALL", "1")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def inline_images(notebook):
    """(width, height) of every PNG the notebook shows, in order."""
    return [png_size(base64.b64decode(output["data"]["image/png"])) for cell in notebook.cells
            if cell.cell_type == "code" for output in cell.outputs if "image/png" in output.get("data", {})]


def printed(notebook):
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs)


def test_quickstart_runs_the_whole_loop(tmp_path, monkeypatch):
    notebook = execute("quickstart.ipynb", tmp_path, monkeypatch)
    run = tmp_path / "quickstart_run"
    # The probe, training curves, search results and the confusion matrix of digits 5-9, shown and saved.
    assert inline_images(notebook) == [(700, 440), (920, 380), (700, 440), (495, 435)]
    for name, size in (("probe.png", (700, 440)), ("history.png", (920, 380)), ("search.png", (700, 440)),
                       ("confusion.png", (495, 435))):
        assert png_size((run / name).read_bytes()) == size
    assert (run / "saved_models" / "quickstart" / "1" / "saved_model.pb").is_file()
    report = (run / "report" / "report.md").read_text()
    assert "## Export and serving" in report and "quickstart_run/saved_models/quickstart/1" in report
    for name in ("history.png", "confusion.png", "search.png"):
        assert (run / "report" / name).stat().st_size > 0
    assert "DataSplits: images 16x16 in [0, 1], multiclass, 5 classes" in printed(notebook)


def test_colab_notebook_falls_back_without_a_tpu(tmp_path, monkeypatch):
    notebook = execute("colab_tpu.ipynb", tmp_path, monkeypatch)
    assert "_DefaultDistributionStrategy: 1 replica(s)" in printed(notebook)
    assert inline_images(notebook) == [(920, 380), (700, 440), (495, 435)]
    run = tmp_path / "colab_run"
    assert (tmp_path / "saved_models" / "colab" / "1" / "saved_model.pb").is_file()
    assert (run / "report" / "report.md").is_file()
