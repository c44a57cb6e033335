"""Packages whose public names are imported when first used, so that importing a light module (the command line's
parser, a name check) does not wait for TensorFlow.

Every public name is still listed where it is exported: `attach` takes `{submodule: [names]}`.
"""

import importlib


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
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name]), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(home))

    return __getattr__, __dir__, sorted(home)
