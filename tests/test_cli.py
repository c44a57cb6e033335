"""The `tfxfer` command line, run as a real subprocess."""

import json
import subprocess
import sys


def tfxfer(*args):
    return subprocess.run([sys.executable, "-m", "tfxfer.cli", *args], capture_output=True, text=True, timeout=300)


def test_inspect_prints_blocks_as_json(tiny_hub_model):
    result = tfxfer("inspect", str(tiny_hub_model), "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["stem_conv", "block_1", "block_2", "block_3"]


def test_inspect_application_without_weights():
    result = tfxfer("inspect", "MobileNetV2", "--weights", "none")
    assert result.returncode == 0, result.stderr
    assert "19 blocks" in result.stdout and "block_16" in result.stdout


def test_bad_source_is_one_line_on_stderr_with_exit_1(tmp_path):
    result = tfxfer("inspect", str(tmp_path / "missing"))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("tfxfer")]
    assert len(errors) == 1 and "missing" in errors[0] and "Traceback" not in result.stderr


def test_unknown_command_is_usage_error_exit_2():
    result = tfxfer("frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr
