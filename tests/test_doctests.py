"""The examples in the modules' docstrings, run against ``paperchat.*`` (the names a user imports)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from .conftest import ROOT

FOLDERS = ("rag", "ui", "eval", "bench")


def modules_with_examples() -> list[str]:
    """``paperchat.<folder>.<module>`` for every module whose source shows a ``>>>`` example."""
    return [
        "paperchat." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for folder in FOLDERS
        for path in sorted((ROOT / folder).glob("*.py")) + sorted((ROOT / folder).glob("*/*.py"))  # packages too
        if ">>>" in path.read_text(encoding="utf-8") and path.name != "__init__.py"
    ]


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{name} shows >>> but no example was found"
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name} (see the output above)"
