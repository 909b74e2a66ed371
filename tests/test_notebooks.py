"""Every course notebook in nbs/ runs top to bottom, and is committed with its outputs.

The notebooks run the way ``make notebooks`` runs them (``tools/run_notebooks.py``: a fresh
kernel in an empty folder, the inline backend). The committed notebooks are read as they are: a
course reader opens them on the web, without running them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from layout import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import run_notebooks  # noqa: E402  (tools/ is not a package)

NBS = run_notebooks.NBS
MAX_KIB = 400  # a committed notebook with its plots; figures are drawn at run_notebooks.DPI


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NBS, ids=[nb.name for nb in NBS])
def test_notebook_runs(notebook: Path, tmp_path: Path):
    nb = run_notebooks.execute(notebook, tmp_path)
    assert not run_notebooks.errors(nb), f"{notebook.name} raised {run_notebooks.errors(nb)[0]}"
    problems = run_notebooks.plot_problems(nb)
    assert not problems, f"{notebook.name}, run now:\n" + "\n".join(problems)


@pytest.mark.parametrize("notebook", NBS, ids=[nb.name for nb in NBS])
def test_committed_notebook_shows_its_outputs_and_each_plot_once(notebook: Path):
    nb = nbformat.read(notebook, as_version=4)
    problems = run_notebooks.errors(nb) + run_notebooks.plot_problems(nb)
    assert not problems, (f"{notebook.name} as committed (refresh it with make notebooks):\n"
                          + "\n".join(problems))
    assert notebook.stat().st_size <= MAX_KIB * 1024, (
        f"{notebook.name} is {notebook.stat().st_size // 1024} KiB; keep its figures small (figsize, "
        f"at most {MAX_KIB} KiB per notebook)")


@pytest.mark.parametrize("notebook", NBS, ids=[nb.name for nb in NBS])
def test_committed_notebook_prints_no_path_of_this_machine(notebook: Path):
    nb = nbformat.read(notebook, as_version=4)
    problems = run_notebooks.path_problems(nb, [ROOT, Path.home(), "/tmp/"])
    assert not problems, (f"{notebook.name}: " + "\n".join(problems)
                          + "\nprint paths relative to the data (Path.BASE_PATH = path)")


def test_plot_check_finds_a_missing_and_a_doubled_image():
    image = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
             "metadata": {}}
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("dls.show_batch()", execution_count=1, outputs=[]),
        nbformat.v4.new_code_cell("learn.recorder.plot_loss()", execution_count=2, outputs=[image, image]),
        nbformat.v4.new_code_cell("learn.fit(1)", execution_count=None),
        nbformat.v4.new_code_cell("interp.plot_confusion_matrix()", execution_count=3, outputs=[image]),
    ])
    problems = run_notebooks.plot_problems(nb)
    assert [p.split(" ")[1] for p in problems] == ["0", "1", "2"]
    assert "no image" in problems[0] and "twice" in problems[1] and "not run" in problems[2]


def test_there_are_course_notebooks():
    assert NBS, "nbs/ holds no notebooks"
