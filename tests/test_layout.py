"""The package's shape holds as it grows: the public API in one place, no name that hides a module, private names of
other libraries in `_compat` only, task types and regimes switched on in `Task` and the phase plans only, and
modules small enough to read."""

import importlib
import pkgutil
import re
from pathlib import Path

import tfxfer

PACKAGE = Path(tfxfer.__file__).resolve().parent
MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(tfxfer.__path__, "tfxfer.")
                 if not name.endswith("__main__"))


def sources():
    return {path.relative_to(PACKAGE).as_posix(): path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_public_name_is_in_all_and_exists():
    assert len(set(tfxfer.__all__)) == len(tfxfer.__all__)
    for name in tfxfer.__all__:
        assert hasattr(tfxfer, name), name
    public = {name for name in dir(tfxfer) if not name.startswith("_") and not isinstance(getattr(tfxfer, name),
                                                                                           type(tfxfer))}
    assert public == set(tfxfer.__all__)


def test_no_public_name_rebinds_a_module():
    for name in MODULES:
        module = importlib.import_module(name)
        parent, _, last = name.rpartition(".")
        assert getattr(importlib.import_module(parent), last) is module, f"{parent}.{last} is not the module {name}"


def test_private_names_of_other_libraries_only_in_compat():
    private = re.compile(r"keras_tuner\.src|keras\.src|_gradient_registry|_inbound_nodes|_outbound_nodes|_retry_queue|"
                         r"_flatten_layers|_track_variable|_trainable_variables|_project_dir|flatbuffer_utils")
    found = [(path, line) for path, text in sources().items() if path != "_compat.py"
             for line in text.splitlines() if private.search(line)]
    assert not found, found


def test_task_types_and_regimes_are_compared_only_by_task_and_the_phase_plans():
    names = r"\"(multiclass|multilabel|regression|feature-extraction|mid-layer|fine-tune)\""
    comparison = re.compile(rf"(==|!=|\bin)\s*{names}|{names}\s*(==|!=)|task_type\s*(==|!=|in\b)|regime\s*(==|!=)")
    found = [(path, line.strip()) for path, text in sources().items() if path not in ("data/task.py",
                                                                                       "training/phases.py")
             for line in text.splitlines() if comparison.search(line)]
    assert not found, found


def test_no_module_is_over_350_lines():
    long = {path: text.count("\n") for path, text in sources().items() if text.count("\n") > 350}
    assert not long, long
