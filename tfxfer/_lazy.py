"""Packages whose public names are imported when first used, so that importing a light module (the command line's
parser, a name check) does not wait for TensorFlow.

Every public name is still listed where it is exported: `attach` takes `{submodule: [names]}`.
"""

import importlib
import importlib.util


def attach(package, exports):
    """The `__getattr__`, `__dir__` and `__all__` of a package that imports its public names on first use.

    Args:
        package: The package's `__name__`.
        exports: `{submodule name: [public names it defines]}`.

    Example:
        >>> getattr_, dir_, names = attach("tfxfer.data", {"stratify": ["stratified_split"]})
        >>> getattr_("stratified_split").__name__, names
        ('stratified_split', ['stratified_split'])
    """
    home = {name: f"{package}.{module}" for module, names in exports.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name):
        if name not in home:
            if importlib.util.find_spec(f"{package}.{name}") is None:  # a submodule, as in any package
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            return importlib.import_module(f"{package}.{name}")
        value = getattr(importlib.import_module(home[name]), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(home))

    return __getattr__, __dir__, sorted(home)
