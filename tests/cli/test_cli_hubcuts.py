"""`tfxfer inspect` shows where a TF Hub model is cut; `--cache-sequences` is refused where it does nothing."""

import subprocess
import sys


def tfxfer(*args):
    return subprocess.run([sys.executable, "-m", "tfxfer.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_inspect_says_which_blocks_of_a_hub_model_are_cuts(tiny_hub_model):
    result = tfxfer("inspect", tiny_hub_model)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cuts: Cut (activations cached) after stem_conv, block_1, block_2 and at the output;" in result.stdout
    table = [line.split() for line in result.stdout.splitlines()[3:]]
    assert [(row[1], row[-1]) for row in table] == [("stem_conv", "True"), ("block_1", "True"), ("block_2", "True"),
                                                    ("block_3", "True")]
    refused = tfxfer("inspect", tiny_hub_model, "--cache-sequences")
    assert refused.returncode != 0 and "--cache-sequences only applies to BERT-style TF Hub encoders" in refused.stderr
