"""Execute the course notebooks and save them with their outputs (``make notebooks``).

Each notebook runs top to bottom in a fresh kernel, in an empty temporary folder (what it writes
stays out of the repository), with matplotlib's inline backend at a low resolution so the plots
are saved small. Progress bars are dropped from the saved outputs (the metrics tables stay), and
no execution times are recorded, so a re-run changes only what the code computes.

    python tools/run_notebooks.py                      # every nbs/*.ipynb
    python tools/run_notebooks.py nbs/00_learner.ipynb

``tests/test_notebooks.py`` runs the notebooks the same way and checks the committed ones with
:func:`plot_problems` and :func:`path_problems`.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT / "nbs").glob("*.ipynb"))
DPI = 60
# Calls that draw a figure. A cell calling one shows exactly the images it draws; a cell whose
# call shows a table instead (show_batch of tabular, collaborative or text data) shows no image.
PLOT_CALL = re.compile(r"\b(show_batch|show_results|show_at|show_image|plot_confusion_matrix|plot_top_losses|"
                       r"plot_loss|plot_sched|plot_lr_find|lr_find|plot_layer_stats|color_dim|plt\.subplots|plt\.figure|"
                       r"imshow)\(")


def _is_progress_bar(output) -> bool:
    html = output.get("data", {}).get("text/html") if output.get("output_type") == "display_data" else None
    if html is None:
        return False
    html = html.strip()
    return not html or "<progress" in html or (html.startswith("<style>") and "progress" in html)


def execute(path: Path, workdir: Path, dpi: int = DPI, timeout: int = 600):
    """The notebook at ``path`` executed in ``workdir`` (returned, not saved), progress bars dropped."""
    nb = nbformat.read(path, as_version=4)
    (workdir / "matplotlibrc").write_text(f"figure.dpi: {dpi}\n")
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}  # the kernel's inline backend
    env.update(MATPLOTLIBRC=str(workdir / "matplotlibrc"),
               OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute(env=env)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs if not _is_progress_bar(output)]
    return nb


def errors(nb) -> list[str]:
    """``ename: evalue`` of every error output."""
    return [f"{output['ename']}: {output['evalue']}" for cell in nb.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output.get("output_type") == "error"]


def plot_problems(nb) -> list[str]:
    """Cells that plot but show no image, or show the same image twice (a figure both drawn and
    returned); cells that were never run."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if cell.get("execution_count") is None:
            problems.append(f"cell {index} was not run")
            continue
        images = [output["data"]["image/png"] for output in cell.get("outputs", [])
                  if "image/png" in output.get("data", {})]
        tables = [output for output in cell.get("outputs", []) if "<table" in output.get("data", {}).get("text/html", "")]
        if PLOT_CALL.search(cell.source) and not images and not tables:
            problems.append(f"cell {index} plots but has no image output: {cell.source[:60]!r}")
        if len(images) != len(set(images)):
            problems.append(f"cell {index} shows the same image twice: {cell.source[:60]!r}")
    return problems


def path_problems(nb, folders=()) -> list[str]:
    """Outputs that print an absolute path (``Path('/...')``) or one of ``folders``."""
    pattern = re.compile(r"Path\('/|" + "|".join(re.escape(str(f)) for f in folders) if folders else r"Path\('/")
    problems = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts = [output.get("text", "")] + [v for k, v in output.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                found = pattern.search(text if isinstance(text, str) else "".join(text))
                if found:
                    problems.append(f"cell {index} prints a path of this machine near {found.group(0)!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=NBS, help="default: nbs/*.ipynb")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks:
        with tempfile.TemporaryDirectory(prefix="fastlearn-nb-") as folder:
            nb = execute(path, Path(folder))
            problems = errors(nb) + plot_problems(nb) + path_problems(nb, [folder, ROOT, Path.home()])
        if errors(nb):
            print(f"{path.name}: not saved, it raised {errors(nb)[0]}", file=sys.stderr)
            failed = True
            continue
        nbformat.write(nb, path)
        print(f"{path.name}: saved, {path.stat().st_size / 1024:.0f} KiB"
              + ("".join(f"\n  warning: {p}" for p in problems)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
