"""`tfxfer demo`, the README's main command, run as a real subprocess from an empty folder."""

import os
import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_transfer_beats_scratch_and_exports_the_best(tmp_path):
    env = {**os.environ, "TFHUB_CACHE_DIR": str(tmp_path / "no_cache")}
    result = subprocess.run([sys.executable, "-m", "tfxfer.cli", "demo"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = dict(re.findall(r"^\s*(scratch|feature-extraction|mid-layer|fine-tune)\s+\d+\s+\d+\s+[\d.]+\s+([\d.]+)$",
                           result.stdout, re.MULTILINE))
    assert set(rows) == {"scratch", "feature-extraction", "mid-layer", "fine-tune"}, result.stdout
    accuracy = {regime: float(value) for regime, value in rows.items()}
    assert max(accuracy["mid-layer"], accuracy["fine-tune"], accuracy["feature-extraction"]) > accuracy["scratch"]
    best = max(accuracy, key=accuracy.get)
    assert f"best: {best}, exported to saved_models/demo/1" in result.stdout
    assert (tmp_path / "saved_models" / "demo" / "1" / "saved_model.pb").is_file()
    verdict = re.search(r"most linearly separable after block (\d) of (\d): the probe's pick is .*; the best transfer "
                        r"regime \((\S+), (\d) frozen\) (agrees|disagrees)", result.stdout)
    assert verdict, result.stdout
    best_cut, n_blocks, winner, frozen, word = verdict.groups()
    assert word == ("agrees" if (best_cut == n_blocks) == (frozen == n_blocks) else "disagrees")
