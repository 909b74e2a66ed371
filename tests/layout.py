"""The source folders and the import names they install as, for the packaging and docstring tests:
``from layout import ROOT, module_files``."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setuptools_config() -> dict:
    """``[tool.setuptools]`` of pyproject.toml (``package-dir``, ``packages``)."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def module_files(root: Path = ROOT, package_dir: dict[str, str] | None = None) -> dict[str, Path]:
    """Import name → source file, for every .py file under the mapped folders (a deeper mapping
    wins: ``applications/vision/x.py`` is ``fastlearn.vision.x``)."""
    package_dir = package_dir if package_dir is not None else setuptools_config()["package-dir"]
    files: dict[str, Path] = {}
    for name, folder in sorted(package_dir.items(), key=lambda item: len(item[0])):
        base = root / folder
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if any(part.startswith(".") or part == "__pycache__" for part in parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join([name, *parts])] = path
    return files
