"""What the command line does for the terminal: TensorFlow's start-up noise hidden, errors in the words of its flags,
and Ctrl-C answered with one line.

TensorFlow 2.21 writes 5-6 lines to the process's stderr file descriptor on every start (absl's "All log messages
before absl::InitializeLog()", oneDNN's notice, "Could not find cuda drivers", "failed call to cuInit", the CPU
instruction notice), whatever `TF_CPP_MIN_LOG_LEVEL` says, and they read like errors when none happened. `quiet_stderr`
puts a pipe in front of file descriptor 2 for the whole command and drops exactly those lines (and TensorFlow's
retracing warnings); every other line, a real error included, goes through.
"""

import ast
import contextlib
import json
import os
import re
import shlex
import sys
import tempfile
import threading
import warnings

from tfxfer.data.errors import printable

#: Lines TensorFlow, absl and Keras print when nothing is wrong.
NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"oneDNN custom operations are on",
    r"Could not find cuda drivers on your machine",
    r"failed call to cuInit",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"cuda_(executor|diagnostics|driver)\.cc",
    r"cudart_stub\.cc",
    r"triggered tf\.function retracing",
    r"OP_REQUIRES failed at",
    r"local_rendezvous\.cc:\d+\] Local rendezvous is aborting with status",  # an op's error, which tfxfer reports
    # libjpeg's own lines for a truncated or corrupt JPEG (both are its fatal errors), printed as the up-front check
    # decodes it; tfxfer names the file itself
    r"^Improper call to JPEG library in state \d+$",
    r"^Unsupported marker type 0x[0-9a-f]{2}$",
    # TensorFlow's decoders on a file's flaws: libpng's notices (an iCCP profile it calls incorrect, which it reads
    # anyway) and libjpeg's "Premature end of JPEG data" for a truncated file, which tfxfer names itself
    r"^[WE]\d{4} [\d:.]+\s+\d+ (png_io|jpeg_mem)\.cc:\d+\]",
    r"oneDNN supports DT_BOOL only on platforms with AVX-512",
    r"Skipping variable loading for optimizer",
    r"^\s*saveable\.load_own_variables\(store\)\s*$",
    # The LiteRT converter's progress (absl info and warning lines, which TF_CPP_MIN_LOG_LEVEL=2 would hide) and the
    # interpreter's notices: a LiteRT export prints its own line saying what was written and verified.
    r"^[IW]\d{4} [\d:.]+\s+\d+ (tf_tfl_flatbuffer_helpers|reader|loader|mlir_graph_optimization_pass|dump_mlir_util|"
    r"flatbuffer_export)\.cc:\d+\]",
    r"^fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+$",
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$",
]))


@contextlib.contextmanager
def quiet_stderr(enabled=True):
    """Filters TensorFlow's start-up noise out of file descriptor 2 while the block runs (see the module docstring).

    Args:
        enabled: False leaves stderr as it is (`--debug`).
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    # Duplicated here, not in the thread: a block that ends at once (a usage error) closes `original` before the
    # thread would run, and the message would be lost.
    forward_to = os.dup(original)

    def forward():
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(forward_to, "wb", buffering=0) as out:
            for line in pipe:
                if not NOISE.search(line.decode("utf-8", "replace")):
                    out.write(line)

    thread = threading.Thread(target=forward, name="tfxfer-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end, so the thread reads to the end and stops
        os.close(original)
        thread.join(timeout=5)


#: The library's argument names that its messages mention, and the flag that sets each on the command line.
FLAGS = {"on_bad": "--on-bad", "encoding": "--encoding", "sep": "--sep", "task": "--task",
         "path_column": "--path-column", "label_column": "--label-column", "text_column": "--text-column",
         "split_column": "--split-column", "column_names": "--column-names", "class_names": "--class-names",
         "label_delimiter": "--label-delimiter", "validation_split": "--validation-split", "test_split": "--test-split",
         "batch_size": "--batch-size", "augment": "--augment", "weights": "--weights", "preprocessor": "--preprocessor",
         "output_key": "--output-key", "alpha": "--alpha", "freeze_blocks": "--freeze", "regime": "--regime",
         "learning_rate": "--learning-rate", "fine_tune_learning_rate": "--fine-tune-learning-rate",
         "warmup_epochs": "--warmup-epochs", "epochs": "--epochs", "patience": "--patience", "max_trials": "--trials",
         "overwrite": "--overwrite", "root": "--root", "project_name": "--dir", "directory": "--dir",
         "pooling": "--pooling", "sequence_length": "--sequence-length", "granularity": "--granularity",
         "cache_sequences": "--cache-sequences", "layer_decay": "--layer-decay",
         "block_rates": "--block-rates", "schedule": "--schedule", "label_smoothing": "--label-smoothing",
         "precision": "--precision", "test_time_augmentation": "--tta", "texts": "--texts",
         "probe_score": "--probe-score", "probe_margin": "--probe-margin", "unlabeled": "--unlabeled",
         "temperature": "--temperature",
         "start": "--start", "end": "--end", "steps": "--steps", "batch_norm": "--batch-norm",
         "frozen_blocks": "--freeze-choices",
         "tuner": "--tuner", "seed": "--seed", "select_tf_ops": "--select-tf-ops", "format": "--format",
         "image_size": "--image-size", "value_range": "--value-range", "quantize": "--quantize",
         "input_type": "--input-type", "output_type": "--output-type", "calibration_size": "--calibration-size",
         "base_path": "--models-config", "teacher": "--teacher"}

#: `tfxfer tune`'s words for the search space's learning-rate ranges, which no flag sets one by one.
TUNE_FLAGS = {**FLAGS, "learning_rate": "the learning-rate range (of --centre-rates)",
              "fine_tune_learning_rate": "the fine-tuning rate range (of --centre-rates)"}


#: Python's quotes around a value in a message, which the flag's words leave out.
_QUOTES = "'\""
#: The flags that `--no-...` negates (argparse's BooleanOptionalAction).
_NEGATABLE = {"--batch-norm"}


def these_apply(flags):
    """The flags as the subject of a sentence: `"--a applies"` or `"--a and --b apply"`.

    Example:
        >>> these_apply(["--texts"]), these_apply(["--weights", "--alpha"])
        ('--texts applies', '--weights and --alpha apply')
    """
    return f"{' and '.join(flags)} {'applies' if len(flags) == 1 else 'apply'}"


def cli_words(message, flags=FLAGS):
    """Rewrites the Python argument names in a library message as the command line's flags.

    `on_bad="skip"` becomes `--on-bad skip`, `encoding='latin-1'` `--encoding latin-1`, `column_names=[...]`
    `--column-names ...`, a bare `sep=` `--sep`; names without a flag stay as they are.

    Example:
        >>> cli_words('pass on_bad="skip" to count it, or encoding=\\'latin-1\\'', {"on_bad": "--on-bad",
        ...                                                                          "encoding": "--encoding"})
        'pass --on-bad skip to count it, or --encoding latin-1'
    """
    def replace(match):
        name, value = match.group(1), match.group(2)
        if name not in flags:
            return match.group(0)
        flag = flags[name]
        if value is None or value in ("True", "[...]", "..."):
            return flag
        if value == "False":
            return f"--no-{flag[2:]}" if flag in _NEGATABLE else f"no {flag}"
        if value[:1] in _QUOTES and value[1:-1] != value[1:-1].strip():  # spaces at its ends: quoted for the shell
            return f"{flag} {value}"
        if value[:1] in "[(" and flag.startswith("--"):  # a list: the values one after another, as a shell takes
            try:                                                # them ('Message Text' quoted)
                items = [shlex.quote(str(item)) for item in ast.literal_eval(value)]
            except (ValueError, SyntaxError):
                items = [item.strip(_QUOTES) for item in value[1:-1].replace(",", " ").split()]
            return " ".join([flag] + items)
        if value[:1] in _QUOTES:  # as a shell must be given it: sep=';' is --sep ';' (a bare ; ends the command)
            return f"{flag} {'tab' if value[1:-1] == chr(92) + 't' else shlex.quote(value[1:-1])}"
        return f"{flag} {value}"

    flagged = re.sub(r"\b([a-z][a-z_]*)=(\"[^\"]*\"|'[^']*'|\[[^\[\]]*\]|\([^()]*\)|\w(?:[\w.-]*\w)?)?", replace,
                     message)
    # Argument names with an underscore are Python's alone; as bare words (freeze_blocks must be...) they are flags.
    flagged = re.sub(r"(?<![\w.-])([a-z]+_[a-z_]+)\b(?![=(])",
                     lambda match: flags.get(match.group(1), match.group(1)), flagged)
    # A Python call given as advice, such as load_extractor('MobileNetV2', --weights w.h5), is just its flags here;
    # two arguments that one flag sets (project_name= or directory=) are that flag once.
    flagged = re.sub(r"\b[a-z_.]+\([^()]*?(--[a-z][^()]*)\)", r"\1", flagged)
    # Where the extractor's options are not flags (tfxfer probe), such a call is `--extractor SOURCE KEY=VALUE`.
    flagged = re.sub(r"\bload_extractor\('([^']*)', (\w+)='([^']*)'\)", r"--extractor \1 \2=\3", flagged)
    # Pointers to the Python API, such as "(and tfxfer.load_images)" or "(see tfxfer.extractors.application_names())".
    flagged = re.sub(r" \((?:and|see) tfxfer\.[\w.]+(?:\(\))?\)", "", flagged)
    flagged = flagged.replace("run search() first", "run tfxfer tune until a trial completes first")
    return re.sub(r"(--[a-z][\w-]*) or \1\b", r"\1", flagged)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(error):
    r"""The line of an exception's message that says what went wrong.

    Keras wraps an error raised inside a layer as "Exception encountered when calling X.call()", with the real
    message on a later line; TensorFlow's graph errors end with it after "in user code:" and a traceback. Those are
    unwrapped; a worker's gRPC error (a repr) gives its details; any other message gives its first line.

    Example:
        >>> one_line(ValueError("Exception encountered when calling Dense.call().\n\nbad shape (2, 3)\n\nArguments"))
        'bad shape (2, 3)'
    """
    if type(error).__module__.startswith("grpc") and hasattr(error, "details"):  # a worker's call to its chief
        chief = ":".join(os.environ.get(f"KERASTUNER_ORACLE_{part}", "") for part in ("IP", "PORT")).strip(":")
        return f"a call to the search's chief{' at ' + chief if chief else ''} failed: {error.details()} " \
               f"({error.code().name})"
    lines = [line.strip() for line in _ANSI.sub("", str(error)).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if lines[0].startswith("Exception encountered when calling") and len(lines) > 1:
        return lines[1]
    if lines[0].startswith("in user code:"):
        return lines[-1]
    return lines[0]


def was_interrupted(error):
    """Whether an exception is Ctrl-C wrapped by TensorFlow (a KeyboardInterrupt raised inside a traced function)."""
    return isinstance(error.__cause__ or error.__context__, KeyboardInterrupt) or "KeyboardInterrupt" in str(error)


def warning_line(command, debug):
    """A `warnings.showwarning` that prints tfxfer's warnings as one line, and others only with `--debug`."""
    def show(message, category, filename, lineno, file=None, line=None):
        if "tfxfer" in filename.replace("\\", "/").split("/"):
            print(f"tfxfer {command}: warning: {cli_words(str(message))}", file=sys.stderr)
        elif debug:
            print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)

    return show


#: What is true after Ctrl-C, by what the command was doing.
_AFTER_INTERRUPT = {
    "loading": "nothing was trained or written",
    "training": "nothing was exported",
    "searching": "the trials that completed are kept; run the same command again to resume the search",
    "exporting": "no half-written version was left, and the versions already there are unchanged",
    "predicting": "nothing was written",
    "probing": "nothing was written",
    "reporting": "the report folder may hold part of the report; the export, if any, is whole",
    "writing its results": "a plot is written whole or not at all",
}


def interrupted(command, stage):
    """The one line that answers Ctrl-C: what was interrupted and what state it left."""
    if stage == "loading" and command in ("predict", "probe"):  # they train nothing: say nothing of training
        after = "nothing was written"
    else:
        after = _AFTER_INTERRUPT.get(stage, "nothing was written")
    return f"tfxfer {command}: interrupted while {stage}; {after}."


def reader_gone(command, stage):
    """The line for stderr when stdout's reader went away (`| head -1`) while the command was still at work, or None
    where only its output was cut short."""
    if stage in ("training", "searching", "finding a learning rate"):
        return (f"tfxfer {command}: stopped while {stage}, as the reader of its output went away; "
                f"{_AFTER_INTERRUPT.get(stage, 'nothing was written')}.")
    return None


def json_records(table):
    """A table as one line of JSON records: NaN as null and NumPy numbers as numbers (pandas'), '/' and non-ASCII
    letters as they are, and a file name that is not UTF-8 with its odd bytes as `\\xNN` (no JSON holds them).

    Example:
        >>> import pandas as pd
        >>> print(json_records(pd.DataFrame({"file": ["bees/abeille.png", "caf\\udce9.png"], "score": [0.5, None]})))
        [{"file": "bees/abeille.png", "score": 0.5}, {"file": "caf\\\\xe9.png", "score": null}]
    """
    records = table.map(lambda value: printable(value) if isinstance(value, str) else value).to_json(
        orient="records", default_handler=str)
    return json.dumps(json.loads(records), ensure_ascii=False)


#: Skipped files or rows printed one by one; the rest are written to a file whose path is printed.
LISTED_SKIPS = 10


def print_skipped(skipped, what="file(s) or row(s)"):
    """Lists what the loader left out on stderr (its records, or their lines): the first few, and a file with all
    of them."""
    if not skipped:
        return
    print(f"{len(skipped)} {what} left out or not read:", file=sys.stderr)
    for item in skipped[:LISTED_SKIPS]:
        print(f"  {item}", file=sys.stderr)
    if len(skipped) > LISTED_SKIPS:
        with tempfile.NamedTemporaryFile("w", prefix="tfxfer-skipped-", suffix=".tsv", delete=False) as file:
            file.write("source\treason\tdetail\n")
            file.writelines(printable(f"{item.source}\t{item.reason}\t{item.detail}\n") if hasattr(item, "source")
                            else f"{item}\t\t\n" for item in skipped)
        print(f"  ... and {len(skipped) - LISTED_SKIPS} more; all {len(skipped)} are listed in {file.name}",
              file=sys.stderr)


def table_cell(text, width=60):
    """A text as one table cell: its line breaks as spaces, cut to `width` characters.

    Example:
        >>> table_cell("Dear all,\\n\\nthe bees are back. " * 5)
        'Dear all, the bees are back. Dear all, the bees are back....'
    """
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + "..."
