"""The `tfxfer` command line, every command run as a real subprocess on tiny data."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from helpers import in_one_process, noise_folders


def tfxfer(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "tfxfer.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def records(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def images(tmp_path):
    return noise_folders(tmp_path / "images", per_class=6)




def test_inspect_application_without_weights(tiny_hub_model):
    result = tfxfer("inspect", "MobileNetV2", "--weights", "none")
    assert result.returncode == 0, result.stderr
    assert "19 blocks" in result.stdout and "block_16" in result.stdout
    # Piped into a reader that has gone, as `| head -1` goes once it has its line: no 'error: Broken pipe'.
    piped = subprocess.Popen([sys.executable, "-m", "tfxfer.cli", "inspect", str(tiny_hub_model)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    piped.stdout.close()
    _, stderr = piped.communicate(timeout=300)
    assert piped.returncode == 141 and "Broken pipe" not in stderr and "Error" not in stderr, stderr[-3000:]


def test_train_then_predict_with_the_export(tiny_hub_model, images, tmp_path):
    for index in range(12):
        (images / "ants" / f"broken_{index:02d}.png").write_bytes(b"not a png")
    trained = tfxfer("train", images, "--extractor", tiny_hub_model, "--regime", "mid-layer", "--freeze", "2",
                     "--epochs", "2", "--on-bad", "skip", "--export", "noise", "--root", tmp_path / "exports",
                     "--report", tmp_path / "report", "--json")
    rows = records(trained)
    assert rows[0]["frozen_blocks"] == 2 and rows[0]["export"].endswith("noise/1") and "val_accuracy" in rows[0]
    assert (tmp_path / "report" / "report.md").stat().st_size > 0
    # Skipped files are listed on stderr in the command line's words: the first 10, then where all of them are.
    lines = trained.stderr.splitlines()
    lines = lines[lines.index("12 file(s) or row(s) left out or not read:"):][:12]
    assert "broken_00.png: not a decodable image" in lines[1] and ".skipped" not in trained.stderr
    listing = lines[-1].rsplit(" ", 1)[-1]
    assert lines[-1].startswith("  ... and 2 more; all 12 are listed in") and len(open(listing).readlines()) == 13
    picture = sorted((images / "bees").iterdir())[0]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (predicted, result), _ = in_one_process(["predict", tmp_path / "exports" / "noise", picture, "--json"],
                                            ["predict", tmp_path / "exports" / "noise", tmp_path / "broken.png",
                                             "--on-bad", "skip", "--json"])
    predictions = records(predicted)
    assert len(predictions) == 1 and predictions[0]["class"] in {"ants", "bees", "wasps"}
    assert result.returncode == 1 and "every input was left out (1, listed above)" in result.stderr, result.stderr
    assert result.stdout.strip() == ""  # not '[]', which a script would read as a success
    # Refused from the export's metadata before TensorFlow loads. The table was "not an image: text" (a tester's find).
    (tmp_path / "photos.csv").write_text(f"path\n{picture}\n")
    refused_before_tensorflow([
        (["predict", tmp_path / "exports" / "noise", tmp_path / "photos.csv"], 2, "photos.csv is a table; ",
         "takes image files: pass the images or their folder"),
        (["predict", tmp_path / "exports" / "noise", picture, "--texts", "--sep", ";"], 2,
         "--texts and --sep apply to text models; ", "noise takes images: leave them out"),
        # The default's spelling passed unseen where any other was refused (a tester's find).
        (["predict", tmp_path / "exports" / "noise", picture, "--enc=utf-8"], 2, "--encoding applies to text models")])


@pytest.mark.slow
def test_tune_across_two_extractors_then_export_retrains_the_best(tiny_hub_model, images, tmp_path):
    from helpers import tiny_cnn
    from tfxfer.extractors import save_hub_format

    other = save_hub_format(tiny_cnn(seed=5), tmp_path / "other_hub")
    search = tmp_path / "runs" / "two"
    # Each extractor with its own options (found by a hostile tester: tune took them as flags for every extractor),
    # and the data after an extractor's.
    tune = ["tune", "--extractor", tiny_hub_model, images, "--extractor", other, "image_size=16x16",
            "--probe-margin", "1", "--trials",
            "2", "--dir", search, "--batch-norm", "--centre-rates", "--warmup-epochs", "1", "--seed", "2",
            "--validation-split", "0.25"]
    first = records(tfxfer(*tune, "--epochs", "1", "--json"))
    assert len(first) == 2 and {row["status"] for row in first} == {"COMPLETED"}
    # tune had no --warmup-epochs: every trial that trained blocks warmed its head up for 5 epochs (a tester's find)
    record = json.loads((search / "tfxfer_search.json").read_text())
    assert record["space"]["warmup_epochs"] == 1
    assert record["extractor_options"] == [{}, {"image_size": [16, 16]}]
    assert {row["batch_norm"] for row in first} == {True}  # the head's flag, as train has it
    assert {row["extractor"] for row in first} <= {str(tiny_hub_model), f"{other}(image_size=(16, 16))"}
    assert (search / "probe.csv").exists()
    # A resume keeps the range the finder chose at first: it does not wait for the finder again (found by a hostile
    # tester), and here says at once that --epochs differs (resuming unchanged is tested in test_extractor_search).
    export = ["export", images, "--search", search, "--name", "best", "--root", tmp_path / "exports"]
    # A flag that one extractor refuses: its advice ("leave --preprocessor out") broke the extractor that needed it.
    flag = ["tune", images, "--extractor", tiny_hub_model, "--extractor", other, "--preprocessor", "p", "--dir",
            tmp_path / "runs" / "flagged"]
    # An option given after its extractor is named so, not as the flag the user did not give (a tester's find)
    own = ["tune", images, "--extractor", tiny_hub_model, "weights=w.h5", "--dir", tmp_path / "runs" / "own"]
    # ... and only where a flag is what was refused (it was added to "does not exist" too: a reviewer's find)
    missing = ["tune", images, "--extractor", tiny_hub_model, "--extractor", tmp_path / "gone", "--image-size", "16",
               "16", "--dir", tmp_path / "runs" / "missing"]
    (changed, result, flagged, owned, moved, gone), _ = in_one_process(
        [*tune, "--epochs", "2"], export, flag, own, [*export, "--extractor", other], missing)
    assert gone.returncode == 1 and "gone' does not exist" in gone.stderr and "every --extractor" not in gone.stderr
    assert moved.returncode == 2 and "searched across several extractors, which export loads from where the search " \
        "found them: leave --extractor out" in moved.stderr, moved.stderr
    assert flagged.returncode == 1 and ("leave --preprocessor out (--preprocessor applies to every --extractor; give "
                                        "an option to one alone as KEY=VALUE after it).") in flagged.stderr
    assert owned.returncode == 1 and "got weights= for" in owned.stderr and "--weights" not in owned.stderr
    assert changed.returncode == 1 and "run with --epochs 1 then, --epochs 2 now." in changed.stderr, changed.stderr
    assert "as the learning-rate finder chose in the search's first run" in changed.stdout
    assert "learning-rate finder:" not in changed.stdout
    # export reads the data with the flags tune recorded: without them it refused "other data" (a tester's find).
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Reading the data as the search did: --validation-split 0.25, --seed 2" in result.stdout
    assert result.stdout.strip().splitlines()[-1].endswith("best/1")


@pytest.mark.parametrize("args, message", [
    (["frobnicate"], "invalid choice"),
    (["train", "data"], "the following arguments are required: --extractor"),
    (["train", "data", "--extractor", "x", "--regime", "sideways"], "invalid choice: 'sideways'"),
    (["tune", "data", "--extractor", "x", "--chief", "h:1", "--worker", "h:1"], "not allowed with argument"),
    (["tune", "data", "--extractor", "x", "--extractor", "y", "--freeze-choices", "1"], "--freeze-choices applies"),
    # ignored silently before (a hostile tester's find)
    (["tune", "data", "--extractor", "x", "--tuner", "hyperband", "--trials", "1"],
     "--trials does not apply to --tuner hyperband, whose trials follow from --epochs"),
    # named by the command, whose --help lists its flags (it was 'tfxfer: error: ...', found by a hostile tester)
    (["tune", "data", "--extractor", "x", "--learning-rate", "0.1"],
     "tfxfer tune: error: unrecognized arguments: --learning-rate 0.1 (see tfxfer tune --help)"),
])
def test_bad_usage_exits_2(args, message):
    result = tfxfer(*args)
    assert result.returncode == 2 and message in result.stderr


def test_failure_is_one_line_on_stderr_with_exit_1(tmp_path, tiny_hub_model):
    result = tfxfer("train", tmp_path / "missing", "--extractor", tiny_hub_model)
    errors = [line for line in result.stderr.splitlines() if line.startswith("tfxfer")]
    assert result.returncode == 1 and len(errors) == 1 and "missing" in errors[0]
    assert "Traceback" not in result.stderr


def test_help_has_examples_and_library_defaults():
    result = tfxfer("tune", "--help")
    assert result.returncode == 0 and "examples:" in result.stdout and "--worker 127.0.0.1:8470" in result.stdout
    assert "(default: 10)" in result.stdout  # TransferSearch's max_trials


def test_help_and_version_answer_at_once_without_tensorflow():
    code = ("import sys, time\nstarted = time.perf_counter()\nfrom tfxfer.cli.parser import build_parser\n"
            "parser = build_parser()\nparser.format_help()\nprint(time.perf_counter() - started, "
            "'tensorflow' in sys.modules, 'keras' in sys.modules)")
    seconds, tensorflow, keras = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                check=True).stdout.split()
    assert (tensorflow, keras) == ("False", "False") and float(seconds) < 1.0
    for args in (["--help"], ["train", "--help"], ["--version"]):
        result = tfxfer(*args)
        assert result.returncode == 0 and result.stdout.strip() and not result.stderr


def refused_before_tensorflow(cases):
    """Runs `(argv, exit code, *words)` cases in one process and checks that each exits with its code, says its
    words, and that none of them imported TensorFlow (seconds of a user's time, and of the suite's, for each)."""
    results, tensorflow = in_one_process(*(argv for argv, *_ in cases))
    for (argv, code, *words), result in zip(cases, results):
        assert result.returncode == code and all(str(word) in result.stderr for word in words), (argv[:2],
                                                                                               result.stderr)
    assert not tensorflow


def test_what_needs_nothing_loaded_is_refused_before_tensorflow_loads(tiny_hub_model, images, tmp_path):
    """Refusals that the flags and the data's first bytes decide came after TensorFlow's import (7 s here) and,
    for --report, a model's load: they come at once."""
    (tmp_path / "report.md").write_text("mine")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))
    hub = str(tiny_hub_model)
    refused_before_tensorflow([
        (["train", images, "--extractor", hub, "--report", tmp_path / "report.md"], 2, "--report",
         "report.md is a file"),
        (["train", tmp_path / "photo.jpg", "--extractor", hub], 1, "photo.jpg is a JPEG image, not a CSV/TSV table",
         "Pass the folder that holds the class folders"),
        (["tune", images, "--extractor", hub, "--text-column", "body"], 2,
         f"--text-column does nothing for {str(images)!r}, a folder: leave it out", "tfxfer tune: error:")])


def test_the_data_may_follow_an_extractor_and_its_options_and_stray_words_are_named(images, tmp_path):
    """Found by a hostile tester: `tfxfer probe --extractor A photos` took the data for an option of A ("the
    following arguments are required: data"); `tfxfer tune` now takes KEY=VALUE after each --extractor too, beside
    the flags that apply to every extractor."""
    missing = tmp_path / "missing"
    refused_before_tensorflow([
        (["probe", "--extractor", "A", "alpha=0.35", missing], 1, f"the data {str(missing)!r} does not exist"),
        (["tune", "--extractor", "A", missing, "--extractor", "B"], 1, f"the data {str(missing)!r} does not exist"),
        (["probe", "--extractor=A", "alpha=0.35", missing], 1, f"the data {str(missing)!r} does not exist"),
        (["probe", "--extractor", "A", "--quiet", "alpha=0.35", images], 2,
         "'alpha=0.35' is an extractor option: give it right after its --extractor SOURCE, before any other flag"),
        (["tune", images, "--extractor", "A", "--trials", "3", "alpha=0.35"], 2,
         "'alpha=0.35' is an extractor option: give it right after its --extractor SOURCE"),
        (["probe", images, "--extractor=", "alpha=0.35"], 2, "--extractor needs a SOURCE"),
        (["train", images, "--extractor=A", "image_size=64"], 2,
         "'image_size=64': tfxfer train takes extractor options as flags (--image-size); KEY=VALUE after --extractor "
         "is for tune and probe"),
        (["train", images, "--extractor", "A", "granularity=cut"], 2, "as flags, and no --granularity"),
        (["probe", "--extractor", "A", "B", images], 2, f"'B' and {str(images)!r} are neither (the data is one word)",
         "repeat --extractor before each extractor"),
        (["probe", images, "--extractor", "A", "B"], 2, f"'B' is neither (the data is {str(images)!r})"),
        (["tune", "--extractor", "A", "alpha=0.35"], 2, "the following arguments are required: data"),
        (["tune", images, "--extractor", "A", "wieghts=w.h5"], 2, "'wieghts=w.h5' is not KEY=VALUE with KEY one of"),
        (["tune", images, "--extractor", "A", "--extractor", "B", "preprocessor=x", "--preprocessor", "y"], 2,
         "--preprocessor and --extractor B preprocessor= both give preprocessor: give it once"),
        (["tune", images, "--extractor", "./hub", "--extractor", "MobileNetV2", "--weights", "w.h5"], 2,
         "leave --weights out, or give weights= after the keras.applications extractor alone"),
        (["tune", images, "--extractor", "./hub", "--extractor", "./enc", "preprocessor=p", "--cache-sequences"], 2,
         "or give cache_sequences=true after the encoder alone")])


@pytest.mark.timeout(60)  # a check that took the first bytes left the reader waiting for a writer that had gone
def test_the_early_check_leaves_a_pipes_bytes_to_the_loader(tmp_path):
    """`tfxfer train <(curl ...) ...` passes a pipe: a check of its first bytes would take them from the table."""
    import argparse
    import os
    import threading

    from tfxfer.cli.commands import _check_data_path

    fifo, table = tmp_path / "table", b"text,label\n" + b"bees make honey,bees\n" * 400
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(table,))
    writer.start()
    _check_data_path(argparse.Namespace(data=str(fifo), encoding="utf-8"))
    assert fifo.read_bytes() == table
    writer.join()


def test_flag_defaults_are_the_librarys():
    import inspect

    import tfxfer
    from tfxfer.cli.flags import library_defaults

    for module, function, value in [("data/images.py", "load_images", tfxfer.load_images),
                                    ("data/text.py", "load_text", tfxfer.load_text),
                                    ("training/model.py", "TransferModel", tfxfer.TransferModel),
                                    ("search/search.py", "TransferSearch", tfxfer.TransferSearch),
                                    ("serving/savedmodel.py", "export", tfxfer.export)]:
        expected = {name: p.default for name, p in inspect.signature(value).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        read = library_defaults(module, function)
        assert read and all(expected[name] == default for name, default in read.items()), function
    assert library_defaults("training/heads.py", "Head") == {"hidden_units": "auto", "batch_norm": "auto",
                                                              "activation": "relu", "dropout": 0.2, "l1": 0.0,
                                                              "l2": 0.0}


def test_libjpegs_own_line_for_a_truncated_jpeg_is_hidden_as_tfxfer_names_the_file():
    """libjpeg printed 'Improper call to JPEG library in state 201' for truncated JPEGs that the check decoded, even
    with --on-bad skip, beside tfxfer's own line naming the file (found by a hostile tester)."""
    from tfxfer.cli.terminal import NOISE

    assert NOISE.search("Improper call to JPEG library in state 201\n")
    assert NOISE.search("Unsupported marker type 0x78\n")  # a corrupt JPEG among distill's unlabelled images
    assert NOISE.search("W0000 00:00:1796627185.759163   32457 local_rendezvous.cc:412] Local rendezvous is aborting "
                        "with status: INVALID_ARGUMENT: Invalid JPEG data, size 5")  # the up-front check's, logged
    assert not NOISE.search("photos/cut.jpg: truncated or corrupt JPEG: Improper call to JPEG library in state 201")
    # the decoders' notices in the midst of train, tune and predict output (a hostile tester's find)
    assert NOISE.search("W0000 00:00:1796643187.695489   12097 png_io.cc:96] PNG warning: iCCP: known incorrect "
                        "sRGB profile")
    assert NOISE.search("E0000 00:00:1796643187.695489   12097 jpeg_mem.cc:331] Premature end of JPEG data. Stopped "
                        "at line 0/42")


def _interrupted(args, wait_for, tmp_path):
    """Starts `tfxfer ARGS`, sends SIGINT once stdout shows `wait_for`, and returns (exit code, stdout's lines up to
    that one, stderr)."""
    import signal

    process = subprocess.Popen([sys.executable, "-m", "tfxfer.cli", *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(wait_for):
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, lines, stderr


def test_ctrl_c_stops_training_with_one_line_and_exports_nothing(tiny_hub_model, images, tmp_path):
    code, lines, stderr = _interrupted(["train", images, "--extractor", tiny_hub_model, "--regime", "fine-tune",
                                        "--epochs", "500", "--patience", "500", "--export", "noise", "--root",
                                        tmp_path / "exports"], "epoch 2/", tmp_path)
    assert code == 130 and "Traceback" not in stderr, stderr[-3000:]
    # Nothing else on stderr: no TensorFlow noise (absl, oneDNN, CUDA lines) either.
    assert stderr.strip().splitlines() == ["tfxfer train: interrupted while training; nothing was exported."]
    assert not (tmp_path / "exports").exists()
    # Into a pipe, one plain line per epoch: no progress bar's escapes or carriage returns.
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/5", "epoch 2/5"]  # the head's warm-up
    assert "val_accuracy" in epochs[0] and "\x1b" not in "".join(lines) and "\r" not in "".join(lines)
    # Named as it begins, as the epochs are numbered on from phase to phase.
    assert lines[lines.index(epochs[0]) - 1] == ("head warm-up (phase 1 of 2): 4 of 4 blocks frozen, learning rate "
                                                 "0.001, at most 5 epochs\n")


IGNORED_INTERRUPT = """
import os, signal, sys, time
from tfxfer.cli import interrupts

interrupts.end_on_interrupt(lambda: "tfxfer lr-find: interrupted while finding a learning rate", grace=1.0)


class Finalized:
    def __del__(self):  # as a TensorFlow function's finalizer: the interrupt lands here, and Python ignores it
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)


started = time.monotonic()
try:
    Finalized()
    time.sleep(10)
    print("went on", flush=True)
except KeyboardInterrupt:
    print("interrupted" if time.monotonic() - started < 2 else "late", flush=True)
    if "--swallow" in sys.argv:  # code that goes on after Ctrl-C, whatever it says: the grace period ends it
        time.sleep(10)
"""


def test_ctrl_c_after_the_result_ends_with_the_commands_code_and_no_traceback(tmp_path):
    """Ctrl-C in the seconds of Python's teardown after a result printed a traceback (found by a hostile tester)."""
    script = tmp_path / "teardown.py"
    script.write_text("import os, signal, time\nfrom tfxfer.cli import interrupts\nprint('result', flush=True)\n"
                      "interrupts.end_quietly_on_interrupt(0)\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\n"
                      "print('not reached')\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "result\n", "")


def test_an_interrupt_that_python_ignores_still_ends_the_command(tmp_path):
    """Ctrl-C that lands in a finalizer is printed as 'Exception ignored' and the command went on to the end (found
    by hostile testers: tfxfer lr-find ran its 5,000 steps and exited 0, and so did a search interrupted during its
    probe): it is delivered again at once, and what still goes on ends after a grace period."""
    script = tmp_path / "ignored.py"
    script.write_text(IGNORED_INTERRUPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "interrupted\n", "")  # nothing "ignored"
    result = subprocess.run([sys.executable, str(script), "--swallow"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 130 and result.stdout == "interrupted\n", result.stderr
    # one line: not Python's "Exception ignored in ..." traceback of the interrupt it ignored
    assert result.stderr.strip().splitlines() == ["tfxfer lr-find: interrupted while finding a learning rate"]


def test_probe_scores_every_cut_of_each_extractor_and_draws_them(tiny_hub_model, images, tmp_path):
    from helpers import tiny_cnn
    from tfxfer.extractors import save_hub_format

    other = save_hub_format(tiny_cnn(seed=5), tmp_path / "other_hub")
    rows = records(tfxfer("probe", images, "--extractor", tiny_hub_model, "--extractor", other, "--rank-by", "logme",
                          "--plot", tmp_path / "probe.png", "--json"))
    assert {row["extractor"] for row in rows} == {str(tiny_hub_model), str(other)}
    assert [row["logme"] for row in rows] == sorted((row["logme"] for row in rows), reverse=True)
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG"
    # --augment was offered and ignored: the probe scores the images as they are.
    result = tfxfer("probe", images, "--extractor", tiny_hub_model, "--augment")
    assert result.returncode == 2 and "unrecognized arguments: --augment" in result.stderr


def test_advice_to_pass_weights_is_in_each_commands_words():
    """The advice of a keras.applications model without its download, as `tfxfer train` and `tfxfer probe` (where an
    extractor's options follow `--extractor`) print it; found by a hostile tester: probe printed the Python call."""
    from tfxfer import load_extractor
    from tfxfer.cli.extractor_options import OPTIONS
    from tfxfer.cli.terminal import FLAGS, cli_words

    with pytest.raises(OSError) as error:
        load_extractor("MobileNetV2", alpha=0.3)  # no such ImageNet weights: refused before any download
    assert "weights='path/to/mobilenetv2_no_top.weights.h5'" in str(error.value)
    assert "pass a local weights file: --weights path/to/mobilenetv2_no_top.weights.h5," in cli_words(str(error.value))
    probe_flags = {name: flag for name, flag in FLAGS.items() if name not in OPTIONS}
    assert ("pass a local weights file: --extractor MobileNetV2 weights=path/to/mobilenetv2_no_top.weights.h5,"
            in cli_words(str(error.value), probe_flags))


def test_a_figure_goes_to_a_new_file_in_a_writable_folder_and_warnings_read_as_flags(capsys, tmp_path):
    """Found by hostile testers: `lr-find --plot /proc/lr.png` failed after the whole ramp, losing its suggestions;
    `probe --plot` replaced a file the user had; the finder's warnings named Python's start= and end=."""
    import argparse

    from tfxfer.cli.flags import figure_file
    from tfxfer.cli.terminal import warning_line

    with pytest.raises(argparse.ArgumentTypeError, match="folder /proc is not writable"):
        figure_file("/proc/lr.png")
    (tmp_path / "probe.png").write_bytes(b"a user's figure")
    with pytest.raises(argparse.ArgumentTypeError, match="probe.png exists and would be replaced: pass another"):
        figure_file(str(tmp_path / "probe"))
    assert (tmp_path / "probe.png").read_bytes() == b"a user's figure"
    warning_line("lr-find", debug=False)("the loss hardly fell (at start=1e-07): Raise end= if...", UserWarning,
                                         "/site-packages/tfxfer/training/lr_finder.py", 1)
    assert capsys.readouterr().err == ("tfxfer lr-find: warning: the loss hardly fell (at --start 1e-07): Raise "
                                       "--end if...\n")


def test_a_reader_gone_mid_work_is_said_on_stderr():
    """`tfxfer train ... | head -1` ended with 141 and not a word, its export never written (a hostile tester's)."""
    from tfxfer.cli.terminal import reader_gone

    assert reader_gone("train", "training") == ("tfxfer train: stopped while training, as the reader of its output "
                                                "went away; nothing was exported.")
    assert "run the same command again to resume" in reader_gone("tune", "searching")
    assert reader_gone("predict", "predicting") is None  # `predict | head -1` wants only the first lines


def test_a_resume_refused_for_another_probe_rule_names_the_flags():
    from tfxfer.cli.terminal import cli_words
    from tfxfer.search.results import record_differences

    stored = {"extractor_weights": "w", "data": {"task_type": "multiclass", "class_names": ["a"], "examples": 1},
              "probe": {"score": "linear", "margin": 1.0}}
    now = {**stored, "extractor": "x", "probe": {"score": "knn", "margin": 0.5}}
    (difference,) = record_differences(stored, now)
    assert cli_words(difference) == ("another probe rule (--probe-score linear, --probe-margin 1.0 then; "
                                     "--probe-score knn, --probe-margin 0.5 now)")
    # Resumed with one of its two extractors: which extractors, and no probe rule "then; now" with nothing now
    # (a tester's find: "another extractor (['a', 'b'], whose weights differ from 'a''s); another probe rule (...;  now)")
    one = {**now, "extractor": "a", "extractor_weights": "v", "probe": None}
    (difference,) = record_differences({**stored, "extractor": ["a", "b"]}, one)
    assert difference == "other extractors (['a', 'b'] then; 'a' now)"
    # A TF Hub model's weights digested by an earlier tfxfer, when the digest of some graphs changed between runs
    (difference,) = record_differences({**stored, "extractor": "x"}, {**now, "extractor_weights": "v",
                                                                       "probe": None, "digest": "now"})
    assert cli_words(difference) == ("other weights of 'x', or the same digested by an earlier tfxfer, whose digest "
                                     "of a TF Hub model's graph could change from one run to the next: start the "
                                     "search afresh (--overwrite)")


def test_a_resume_refused_for_another_space_names_only_what_changed():
    """A search from before heads normalised their input resumed with today's default (found by a hostile tester:
    the message printed both whole spaces, half of them as flags)."""
    from tfxfer.cli.terminal import cli_words
    from tfxfer.search.results import record_differences

    space = {"frozen_blocks": [4, 2], "learning_rate": [1e-4, 1e-2], "dropout": [0.0, 0.5]}
    stored = {"extractor_weights": "w", "data": {"task_type": "multiclass", "class_names": ["a"], "examples": 1},
              "space": space}  # recorded before batch_norm existed: heads without it
    now = {**stored, "extractor": "x", "space": {**space, "frozen_blocks": (2, 4), "learning_rate": (1e-4, 1e-2),
                                                 "batch_norm": "auto"}}
    (difference,) = record_differences(stored, now)
    assert cli_words(difference) == "another search space (--no-batch-norm then; --batch-norm auto now)"
    # The learning-rate ranges that --centre-rates sets (tune has no --learning-rate; found by a hostile tester)
    from tfxfer.cli.terminal import TUNE_FLAGS

    centred = {**now, "space": {**now["space"], "learning_rate": (0.00353, 0.353)}}
    (difference,) = record_differences(now, centred)
    assert cli_words(difference, TUNE_FLAGS) == (
        "another search space (the learning-rate range (of --centre-rates) [0.0001, 0.01] then; the learning-rate "
        "range (of --centre-rates) [0.00353, 0.353] now)")
    (difference,) = record_differences(now, {**now, "space": {**now["space"], "frozen_blocks": (1, 3)}})
    assert cli_words(difference, TUNE_FLAGS) == ("another search space (--freeze-choices 2 4 then; "
                                                 "--freeze-choices 1 3 now)")
    assert record_differences(stored, {**now, "space": {**now["space"], "batch_norm": False}}) == []
    assert record_differences({**stored, "extractor": "x"}, {**now, "extractor_weights": "v", "space": {
        **now["space"], "batch_norm": False}}) == ["other weights of 'x' (trained since, or another file of that name)"]
    # Another image size is named as such, but not over another extractor that also takes other images (a reviewer).
    then = {**stored, "extractor": "a", "extractor_sources": "a", "image_size": [[224, 224]]}
    other = {**now, "extractor": "b", "extractor_sources": "b", "extractor_weights": "v", "image_size": [[260, 260]],
             "space": {**now["space"], "batch_norm": False}}
    assert record_differences(then, other) == ["another extractor ('a' then, 'b' now: their weights differ)"]
    assert record_differences(then, {**other, "extractor": "a", "extractor_sources": "a"}) == [
        "image_size=224x224 then, image_size=260x260 now"]
    # Other options of the same extractor, not "other weights" (a tester's find: granularity='cut')
    options = {"extractor": "a", "extractor_sources": "a", "extractor_options": {}}
    assert record_differences({**then, **options}, {**other, **options, "extractor_options": {"granularity": "cut"},
                                                    "image_size": then["image_size"]}) == [
        "other options of the extractor ({} then; {'granularity': 'cut'} now)"]
    # Of several extractors, which one (it was "--image-size 96x96, 96x96 then, --image-size 128x128, 96x96 now")
    two = {"extractor": ["a", "a(alpha=0.35)"], "extractor_sources": ["a", "a"], "image_size": [[96, 96], [96, 96]]}
    assert record_differences({**then, **two}, {**other, **two, "image_size": [[96, 96], [128, 128]]}) == [
        "other image sizes ('a(alpha=0.35)' at 96x96 then, 128x128 now)"]


def test_predict_text_column_takes_one_column_per_flag():
    from tfxfer.cli.parser import build_parser

    # With nargs="+", `--text-column text msgs.csv` took the CSV as a second column (a hostile tester's find).
    args = build_parser().parse_args(["predict", "model", "--text-column", "text", "msgs.csv"])
    assert (args.inputs, args.text_column) == (["msgs.csv"], ["text"])
    args = build_parser().parse_args(["predict", "model", "pairs.csv", "--text-column", "a", "--text-column", "b"])
    assert (args.inputs, args.text_column) == (["pairs.csv"], ["a", "b"])


def test_hidden_units_flag_leaves_the_library_default_or_asks_for_none_or_sizes():
    from tfxfer.cli.parser import build_parser

    def hidden_units(*flags):
        return build_parser().parse_args(["train", "data", "--extractor", "m", *flags]).hidden_units

    # Absent: the library's "auto" (128 under text extractors); alone or 0: a linear head; with sizes: those.
    assert (hidden_units(), hidden_units("--hidden-units"), hidden_units("--hidden-units", "64", "32")) == (
        None, [], [64, 32])
    from tfxfer.cli.commands import UsageError
    from tfxfer.cli.recipe import head_from_flags

    def head(*flags):
        return head_from_flags(build_parser().parse_args(["train", "data", "--extractor", "m", *flags]))

    assert (head().hidden_units, head("--hidden-units").hidden_units, head("--hidden-units", "0").hidden_units,
            head("--hidden-units", "64").hidden_units) == ("auto", (), (), (64,))
    with pytest.raises(UsageError, match="--hidden-units 0 64: 0 means no hidden layer"):
        head("--hidden-units", "0", "64")
    # The data path after the flag is read as a size: the message says so (a hostile tester's find).
    from tfxfer.cli.flags import whole

    with pytest.raises(argparse.ArgumentTypeError, match="a path: put it before this flag"):
        whole(0)(__file__)


def test_flag_words_quote_what_the_shell_would_split_and_negate_with_no():
    """Found by a hostile tester: 'pass --text-column text ' lost its space when typed; --no-batch-norm read 'no
    --batch-norm'; a list gave --column-names 'text' with Python's quotes."""
    from tfxfer.cli.terminal import cli_words

    assert cli_words("pass text_column='text ', or remove the spaces") == "pass --text-column 'text ', or remove " \
                                                                         "the spaces"
    assert cli_words("batch_norm=False then") == "--no-batch-norm then"
    assert cli_words("pass column_names=['label', 'text']") == "pass --column-names label text"
    assert cli_words("leave preprocessor= out") == "leave --preprocessor out"
    # `--sep ;` ends the shell's command there, and `--sep \t` reaches us as 't' (a hostile tester's find).
    assert cli_words("so pass sep=';'.") == "so pass --sep ';'."
    assert cli_words("so pass sep='\\t'.") == "so pass --sep tab."
    # Ctrl-C while predict loaded its export said "nothing was trained or written" (a hostile tester's find)
    from tfxfer.cli.terminal import interrupted

    assert interrupted("predict", "loading") == "tfxfer predict: interrupted while loading; nothing was written."
    assert interrupted("train", "loading") == "tfxfer train: interrupted while loading; nothing was trained or written."
    # `lr-find --plot p.png | head -1` said "nothing was written" beside the plot it had written (a tester's find).
    from tfxfer.cli.terminal import reader_gone

    assert interrupted("probe", "writing its results") == (
        "tfxfer probe: interrupted while writing its results; a plot is written whole or not at all.")
    assert reader_gone("lr-find", "writing its results") is None
    # The refusal of one example per batch under a BatchNorm head, as `tfxfer train --batch-size 1` prints it.
    from types import SimpleNamespace

    from tfxfer.training.heads import Head
    from tfxfer.training.inputs import check_batch_size

    with pytest.raises(ValueError) as refusal:
        check_batch_size(Head(), SimpleNamespace(input_kind="text"), 1)
    assert cli_words(str(refusal.value)).startswith("--batch-size 1 under a head that normalises its input") and \
        cli_words(str(refusal.value)).endswith("Use --batch-size 2 or more (16 or more trains best), or a head with "
                                               "--no-batch-norm.")
    check_batch_size(Head(), SimpleNamespace(input_kind="image"), 1)  # a linear image head learns at 1


def test_export_names_an_extractor_that_moved_and_one_that_is_not_the_searchs(tiny_hub_model, images, tmp_path):
    """`export --search` said 'Extractor source ... does not exist. Pass a TF Hub handle...' for a moved extractor,
    and blamed the data for another model passed as --extractor (a hostile tester's finds)."""
    from helpers import tiny_cnn
    from tfxfer.cli.commands import UsageError
    from tfxfer.cli.parser import build_parser
    from tfxfer.cli.searches import load_search_extractors
    from tfxfer.search import SearchSpace, TransferSearch
    import tfxfer as library

    data = library.load_images(images, extractor=library.load_extractor(tiny_hub_model), seed=0)
    TransferSearch(str(tiny_hub_model), max_trials=1, epochs=1, patience=None, directory=tmp_path / "runs",
                   project_name="p", space=SearchSpace(frozen_blocks=[4]), verbose=0).search(data)
    moved = tiny_hub_model.rename(tmp_path / "moved_hub")

    def load(*flags):
        args = build_parser().parse_args(["export", str(images), "--search", str(tmp_path / "runs" / "p"), "--name",
                                          "best", *flags])
        search = TransferSearch.from_folder(args.search, extractor=args.extractor, verbose=0)
        load_search_extractors(args, search)
        return search

    with pytest.raises(UsageError, match=rf"--search .*p: its extractor {tiny_hub_model} is not there any more "
                                         r"\(moved or deleted\): pass --extractor with where it is now"):
        load()
    other = library.save_hub_format(tiny_cnn(seed=7), tmp_path / "other_hub")
    with pytest.raises(UsageError, match=r"--extractor .*other_hub is not the search's extractor \(its weights "
                                         r"differ"):
        load("--extractor", str(other))
    assert load("--extractor", str(moved)).extractor.source == str(moved)
    # One that does not load was told to pass --weights, a flag export does not have (a hostile tester's find).
    with pytest.raises(UsageError, match=r"--extractor .*nowhere did not load \(.*\); export retrains the search's "
                                         r"own extractor: pass where that model is now, or leave --extractor out"):
        load("--extractor", str(tmp_path / "nowhere"))


def test_messages_of_probe_options_and_export_search_are_in_the_command_lines_words(tmp_path):
    """Hostile testers' finds: alpha=abc was "could not convert string to float", a key given twice kept the last,
    a --search that does not exist was "pass the directory and --dir of a TransferSearch", and messages pointed to
    the Python API ("(and tfxfer.load_images)", "(see tfxfer.extractors.application_names())")."""
    from tfxfer.cli.commands import UsageError
    from tfxfer.cli.parser import build_parser
    from tfxfer.cli.extractor_options import extractor_specs
    from tfxfer.cli.searches import take_recorded_data_flags
    from tfxfer.cli.terminal import cli_words

    assert extractor_specs([["MobileNetV2", "alpha=0.35", "weights=none"]]) == [
        ("MobileNetV2", {"alpha": 0.35, "weights": None})]
    for alpha in ("abc", "-1", "0", "nan", "none"):  # -1 and 0 built a MobileNet, none and nan failed in Python's words
        with pytest.raises(UsageError, match=f"--extractor MobileNetV2: 'alpha={alpha}': alpha must be a number "
                                             "above 0"):
            extractor_specs([["MobileNetV2", f"alpha={alpha}"]])
    with pytest.raises(UsageError, match="'sequence_length=0': sequence_length must be a whole number from 1"):
        extractor_specs([["bert_tiny_en_uncased", "sequence_length=0"]])
    # none is None for weights alone (random weights): KerasHub's pooling=none is no pooling, not the default
    assert extractor_specs([["vit", "pooling=none"]]) == [("vit", {"pooling": "none"})]
    assert extractor_specs([["MobileNetV2", "weights=None"]]) == [("MobileNetV2", {"weights": None})]  # not a file
    with pytest.raises(UsageError, match="--extractor MobileNetV2: alpha= is given twice; give it once"):
        extractor_specs([["MobileNetV2", "alpha=0.35", "alpha=0.5"]])
    # A hub model could be probed at 224 px only (a tester's find).
    assert extractor_specs([["hub", "image_size=96x128"], ["other", "image_size=64"]]) == [
        ("hub", {"image_size": (96, 128)}), ("other", {"image_size": (64, 64)})]
    with pytest.raises(UsageError, match="'image_size=big': image_size must be HEIGHTxWIDTH or one side"):
        extractor_specs([["hub", "image_size=big"]])
    # MiniLM's layers could not be probed from the command line (a tester's find)
    assert extractor_specs([["enc", "preprocessor=pre", "cache_sequences=true"]]) == [
        ("enc", {"preprocessor": "pre", "cache_sequences": True})]
    with pytest.raises(UsageError, match="'cache_sequences=maybe': cache_sequences must be true or false"):
        extractor_specs([["enc", "cache_sequences=maybe"]])
    (tmp_path / "images").mkdir()
    for folder, held in ((tmp_path / "nope", "does not exist"), (tmp_path / "images", "is not a search folder")):
        args = build_parser().parse_args(["export", "data", "--search", str(folder), "--name", "x"])
        with pytest.raises(UsageError, match=f"--search {folder} {held}.*: pass the --dir of a `tfxfer tune` run"):
            take_recorded_data_flags(args)
    # Flags given to export are kept even where they equal the default (--seed 0 gave way to the search's seed 3).
    (tmp_path / "tfxfer_search.json").write_text("{}")
    (tmp_path / "tfxfer_data_flags.json").write_text('{"seed": 3, "validation_split": 0.3, "label_column": ["kind"]}')
    argv = ["export", "data", "--search", str(tmp_path), "--name", "x", "--seed", "0", "--label-col=label"]
    args = build_parser().parse_args(argv)
    args.argv = argv
    take_recorded_data_flags(args)
    assert (args.seed, args.validation_split, args.label_column) == (0, 0.3, ["label"])
    # With --overwrite, which empties the folder as the search begins, they were written only after the search, so a
    # search stopped before its end lost them: each trial's start writes them.
    from tfxfer.cli.searches import RECORD, record_data_flags, recording_data_flags

    tune = build_parser().parse_args(["tune", "data", "--extractor", "x", "--dir", str(tmp_path / "run"),
                                      "--overwrite", "--seed", "4"])
    record_data_flags(tune, before=True)
    assert not (tmp_path / "run" / RECORD).exists()
    recording_data_flags(tune).on_train_begin()
    assert json.loads((tmp_path / "run" / RECORD).read_text())["seed"] == 4
    # A resume without the data flags read the data with the defaults ("--text-column text is not a column").
    from tfxfer.search.results import SEARCH_FILE

    (tmp_path / "run" / SEARCH_FILE).write_text("{}")  # the search began
    resume = build_parser().parse_args(["tune", "data", "--extractor", "x", "--dir", str(tmp_path / "run")])
    take_recorded_data_flags(resume, resuming=True)
    assert resume.seed == 4
    # A search stopped or failed before it began (no search record) left its flags, which the next search in the
    # folder took up as its own (testers' finds, the last after a SIGTERM during the probe): they are passed over,
    # and replaced when a search begins there; beside a search that began they stay.
    record_data_flags(build_parser().parse_args(["tune", "data", "--extractor", "x", "--dir", str(tmp_path / "run"),
                                                 "--seed", "5"]), before=True)
    assert json.loads((tmp_path / "run" / RECORD).read_text())["seed"] == 4
    (tmp_path / "run" / SEARCH_FILE).unlink()
    fresh = build_parser().parse_args(["tune", "data", "--extractor", "x", "--dir", str(tmp_path / "run")])
    take_recorded_data_flags(fresh, resuming=True)
    assert fresh.seed == 0
    record_data_flags(fresh, before=True)
    assert json.loads((tmp_path / "run" / RECORD).read_text())["seed"] == 0
    assert cli_words("pass an image extractor (and tfxfer.load_images), or text data.") == \
        "pass an image extractor, or text data."
    assert cli_words("Applications include DenseNet201 (see tfxfer.extractors.application_names()).") == \
        "Applications include DenseNet201."
    assert cli_words("No completed trial in runs/a; run search() first.") == \
        "No completed trial in runs/a; run tfxfer tune until a trial completes first."


def test_train_with_precision_and_tta_builds_the_backbone_mixed_and_records_what_it_serves(images, tmp_path):
    """Found by a hostile tester: --precision mixed the head only (the CLI loaded a Keras extractor before the policy
    applied), and a --tta export stored the scores of the model without flip averaging, saying neither."""
    from tensorflow.core.protobuf import saved_model_pb2

    rows = records(tfxfer("train", images, "--extractor", "MobileNet", "--alpha", "0.25", "--weights", "none",
                          "--image-size", "32", "32", "--epochs", "1", "--precision", "mixed_bfloat16", "--tta",
                          "--export", "mixed", "--root", tmp_path / "exports", "--json"))
    export = tmp_path / "exports" / "mixed" / "1"
    saved = saved_model_pb2.SavedModel.FromString((export / "saved_model.pb").read_bytes())
    convolutions = [node.attr["T"].type for function in saved.meta_graphs[0].graph_def.library.function
                    for node in function.node_def if node.op == "Conv2D"]
    assert convolutions and set(convolutions) == {14}, convolutions  # DT_BFLOAT16: the backbone mixed too
    metadata = json.loads((export / "assets.extra" / "tfxfer.json").read_text())
    assert metadata["test_time_augmentation"] is True and metadata["training"]["precision"] == "mixed_bfloat16"
    assert metadata["metrics"]["val_accuracy"] == pytest.approx(rows[0]["val_accuracy_tta"], abs=1e-4)
