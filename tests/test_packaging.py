"""The package layout: every subpackage is listed for wheels, and the layers point one way."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _expected_packages(package_dir: dict[str, str]) -> set[str]:
    """Every folder with an __init__.py under a mapped folder, as the import name it installs as."""
    names = set()
    for name, folder in package_dir.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
                continue
            names.add(".".join([name, *relative.parts]))
    # a folder mapped on its own (fastlearn.data → data_blocks) is found under that name only
    return names


def test_every_subpackage_is_listed_in_packages():
    config = _setuptools_config()
    listed = set(config["packages"])
    expected = _expected_packages(config["package-dir"])
    missing = sorted(expected - listed)
    assert not missing, (f"subpackages missing from [tool.setuptools] packages in pyproject.toml "
                         f"(a wheel would silently drop them): {missing}")


def test_every_listed_package_exists():
    config = _setuptools_config()
    mapped = config["package-dir"]
    for package in config["packages"]:
        root = max((name for name in mapped if package == name or package.startswith(name + ".")), key=len)
        folder = ROOT / mapped[root] / Path(*package[len(root):].lstrip(".").split(".") if package != root else ())
        assert (folder / "__init__.py").exists(), f"{package} is listed but {folder}/__init__.py is missing"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


# The course facade re-exports the data layer for `from fastlearn.basics import *`; it is the one
# module of the core that users import and the library never does.
FACADES = {"basics.py"}
UPPER_LAYERS = ("fastlearn.data", "fastlearn.vision", "fastlearn.text", "fastlearn.tabular", "fastlearn.collab")


def test_core_does_not_import_data_layer_or_applications():
    offenders = []
    for path in sorted((ROOT / "lib").rglob("*.py")):
        if path.name in FACADES:
            continue
        for module in _imported_modules(path):
            if any(module == layer or module.startswith(layer + ".") for layer in UPPER_LAYERS):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "the core (lib/) must not import upper layers:\n" + "\n".join(offenders)


def test_data_layer_does_not_import_applications():
    offenders = []
    for path in sorted((ROOT / "data_blocks").rglob("*.py")):
        for module in _imported_modules(path):
            if module.startswith(UPPER_LAYERS[1:]):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "the data layer must not import applications:\n" + "\n".join(offenders)


def test_library_code_imports_by_package_name_only():
    offenders = []
    for folder in ("lib", "data_blocks", "applications"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in _imported_modules(path):
                if module.split(".")[0] in {"lib", "data_blocks", "applications"}:
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "import fastlearn.… names, never the source folders:\n" + "\n".join(offenders)


def test_settings_ini_matches_builtin_defaults():
    import configparser

    from fastlearn.config import DEFAULTS
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(ROOT / "settings.ini")
    found = {section: dict(parser.items(section)) for section in parser.sections()}
    assert found == DEFAULTS
