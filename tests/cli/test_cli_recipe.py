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


def test_recipe_flags_that_cannot_work_are_refused_before_training(tiny_hub_model, tmp_path):
    """Found by a hostile tester: --tta with --format litert was refused after training; --layer-decay 1 (the
    library's 'every block at one rate') was refused and 0 accepted until the library refused it after loading;
    --layer-decay with --block-rates failed after loading; --tta without a validation split or an export did
    nothing, silently."""
    images = noise_folders(tmp_path / "images", per_class=4)
    common = ["train", images, "--extractor", tiny_hub_model, "--regime", "fine-tune"]
    litert = tfxfer(*common, "--tta", "--format", "litert", "--export", "x", "--root", tmp_path / "exports")
    assert litert.returncode == 2 and "--tta applies to SavedModel exports" in litert.stderr
    assert "epoch" not in litert.stderr and not (tmp_path / "exports").exists()
    zero = tfxfer(*common, "--layer-decay", 0)
    assert zero.returncode == 2 and "expected a factor above 0, up to 1" in zero.stderr
    both = tfxfer(*common, "--layer-decay", 0.8, "--block-rates", 1e-6, 1e-4)
    assert both.returncode == 2 and "not allowed with argument --layer-decay" in both.stderr
    idle = tfxfer(*common, "--tta", "--validation-split", 0, "--layer-decay", 1, "--epochs", 1)
    assert idle.returncode == 2 and "with no validation split and no --export it does nothing" in idle.stderr
    # lr-find ramps fine-tuning's head warm-up: --freeze was ignored there, silently.
    ignored = tfxfer("lr-find", images, "--extractor", tiny_hub_model, "--regime", "fine-tune", "--freeze", 2)
    assert ignored.returncode == 2 and "--freeze does nothing here: with --regime fine-tune" in ignored.stderr
