"""The examples in the data layer's docstrings run and show what they say."""

import doctest
import importlib

import pytest

MODULES = ["data_splits", "decoding", "errors", "folders", "images", "splits", "tables", "task", "text"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"tfxfer.data.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
