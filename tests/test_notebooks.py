"""Every course notebook in nbs/ runs top to bottom."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).resolve().parents[1] / "nbs").glob("*.ipynb"))


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NBS, ids=[nb.name for nb in NBS])
def test_notebook_runs(notebook: Path, tmp_path: Path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [output for cell in nb.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors, f"{notebook.name} raised: {errors[0]['ename']}: {errors[0]['evalue']}"


def test_there_are_course_notebooks():
    assert NBS, "nbs/ holds no notebooks"
