"""What the `tfxfer` flags accept: each flag type checks its value as it is parsed (a bad one is a usage error, exit
2, before anything loads), and the flags' defaults are read from the library's own signatures (`library_defaults`),
so the command line and the API never disagree. Nothing here imports TensorFlow.
"""

import argparse
import ast
import os
import tempfile
from pathlib import Path

import tfxfer

PACKAGE = Path(tfxfer.__file__).resolve().parent


def was_given(args, flag):
    """Whether `flag` was typed (abbreviated or with `=VALUE` too, as argparse takes it), not left at its default.

    Example:
        >>> was_given(argparse.Namespace(argv=["predict", "m", "x.txt", "--enc=latin-1"]), "--encoding")
        True
    """
    return any(len(word) > 2 and flag.startswith(word.split("=")[0]) for word in getattr(args, "argv", [])
               if word.startswith("--"))


def library_defaults(module, function):
    """The keyword defaults of a library function, class `__init__` or dataclass, read from its source file.

    Args:
        module: The module's path under `tfxfer/`, e.g. `"data/images.py"`.
        function: The function's or class's name.

    Returns:
        `{argument: default}` for the defaults that are literals.

    Example:
        >>> library_defaults("data/images.py", "load_images")["validation_split"]
        0.2
    """
    tree = ast.parse((PACKAGE / module).read_text())
    node = next(node for node in tree.body if getattr(node, "name", None) == function)
    if isinstance(node, ast.ClassDef):
        init = next((item for item in node.body if getattr(item, "name", None) == "__init__"), None)
        if init is None:  # a dataclass: its fields' defaults
            pairs = [(item.target.id, item.value) for item in node.body
                     if isinstance(item, ast.AnnAssign) and item.value is not None]
            return _literals(pairs)
        node = init
    arguments = node.args
    positional = arguments.posonlyargs + arguments.args
    pairs = list(zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults))
    pairs += [(argument, default) for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults)
              if default is not None]
    return _literals([(argument.arg, default) for argument, default in pairs])


def _literals(pairs):
    """`{name: value}` of the `(name, expression)` pairs whose expression is a literal."""
    defaults = {}
    for name, default in pairs:
        try:
            defaults[name] = ast.literal_eval(default)
        except ValueError:
            continue
    return defaults


def whole(minimum):
    """An argparse type: a whole number >= `minimum`."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            # A flag that takes several values (--hidden-units 64 data.csv) reads a path after it as one of them.
            hint = " (a path: put it before this flag, whose values run to the next flag)" if os.path.exists(text) \
                else ""
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}{hint}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value
    parse.__name__ = "whole number"
    return parse


def seed(text):
    """An argparse type: a seed, a whole number from 0 to 2**32 - 1."""
    value = whole(0)(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed below 2**32, got {value}")
    return value


def fraction(text):
    """An argparse type: a fraction in [0, 1)."""
    value = number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 up to (not including) 1, got {text}")
    return value


def decay(text):
    """An argparse type: a factor in (0, 1] (1: every block at one rate)."""
    value = number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a factor above 0, up to 1 (every block at one rate), got {text}")
    return value


def positive(text):
    """An argparse type: a number > 0."""
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def figure_file(text):
    """An argparse type: where a figure goes, a new file name in an existing folder whose extension matplotlib
    writes (.png when it has none). A file that exists is refused, not replaced.

    Example:
        >>> figure_file("curve"), figure_file("curve.svg")
        ('curve.png', 'curve.svg')
    """
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file name such as plot.png, got {text!r}")
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    kinds = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in kinds:
        raise argparse.ArgumentTypeError(f"{text}: matplotlib writes {', '.join('.' + kind for kind in kinds)}; "
                                         "not " + path.suffix)
    if not path.resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {path.parent} does not exist; create it first")
    if path.exists():
        raise argparse.ArgumentTypeError(f"{path} exists and would be replaced: pass another file name, or remove "
                                         "it first")
    try:  # said now, not after the work whose figure it is
        tempfile.TemporaryFile(dir=path.resolve().parent).close()
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{text}: folder {path.parent} is not writable ({error.strerror}); pick "
                                         "another") from None
    return str(path)


def number(text):
    """An argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def model_name(text):
    """An argparse type: a name an export can be served under (`tfxfer.serving.versioning.check_name`; `""`, as an
    unset shell variable gives, is refused)."""
    from tfxfer.serving.versioning import check_name

    try:
        check_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def search_folder(text):
    """An argparse type: a search's folder, never the working directory itself (`--overwrite` would empty it)."""
    if not text.strip() or os.path.normpath(text) in (".", "..") or os.path.normpath(text).endswith(os.sep + ".."):
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder of its own: name the search's folder, e.g. "
                                         "runs/ants")
    return text


def separator(text):
    """An argparse type: a field separator; `tab` and `\\t` (as a shell passes it) are the tab character."""
    text = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ","}.get(text, text)
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"expected one character (or tab), got {text!r}")
    return text


def nonnegative(text):
    """An argparse type: a finite number >= 0."""
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def address(text):
    """An argparse type: HOST:PORT."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:8470, got {text!r}")
    return text


def distribution_environment(args):
    """Keras Tuner's chief/worker mode is driven by three environment variables; the flags set them."""
    address = args.chief or args.worker
    if address:
        host, _, port = address.rpartition(":")
        os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"] = host, port
        os.environ["KERASTUNER_TUNER_ID"] = "chief" if args.chief else f"tuner{args.worker_id}"
