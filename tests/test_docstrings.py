"""The examples in the library's docstrings run and print what they show.

Each module is imported under its package name (``fastlearn.learner``, not ``lib/learner.py``) so
that registries and classes are the library's own. Examples that need data, a trained learner or a
network carry ``# doctest: +SKIP``.
"""
from __future__ import annotations

import doctest
import importlib
import io

import pytest

from layout import module_files

MODULES = sorted(module_files())
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:  # the module's own objects (the finder leaves out what it imports)
        runner.run(test, out=report.write)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} examples in {name} fail:\n{report.getvalue()}"
