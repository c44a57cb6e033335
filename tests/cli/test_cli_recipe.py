"""`tfxfer lr-find` and the recipe flags of `tfxfer train`, run as real subprocesses on tiny data."""

import json
import subprocess
import sys

from helpers import noise_folders


def tfxfer(*args):
    return subprocess.run([sys.executable, "-m", "tfxfer.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_lr_find_prints_both_suggestions_and_writes_the_plot(tiny_hub_model, tmp_path):
    images = noise_folders(tmp_path / "images", per_class=6)
    plot = tmp_path / "lr_find.png"
    result = tfxfer("lr-find", images, "--extractor", tiny_hub_model, "--steps", 40, "--plot", plot, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    row, = json.loads(result.stdout.strip().splitlines()[-1])
    assert 1e-7 <= row["valley"] <= 10 and 1e-7 <= row["steepest"] <= 10 and row["steps"] <= 40
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tfxfer("lr-find", images, "--extractor", tiny_hub_model, "--start", 1, "--end", 0.1)
    assert bad.returncode == 2 and "--start 1.0 must be below --end 0.1" in bad.stderr, bad.stderr
    unused = tfxfer("train", images, "--extractor", tiny_hub_model, "--layer-decay", 0.8)
    assert unused.returncode == 2 and "--layer-decay does nothing with --regime feature-extraction" in unused.stderr
