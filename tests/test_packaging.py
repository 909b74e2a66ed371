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


# The core's top level, by kind: what a student reads to see how training works. The built-in
# datasets live in lib/datasets/ (fastlearn.datasets), the data layer and applications elsewhere.
# The Callback base class and the callbacks of the course's ``fastai.callback.*`` paths (hooks,
# fp16, loggers...) live in lib/callback/ (fastlearn.callback).
CORE_KINDS = {
    "package and course facade": {"__init__.py", "basics.py"},
    "training loop and its callbacks": {"learner.py", "training.py", "tracker.py", "recorder.py",
                                        "progress.py", "inference.py", "lr_finder.py", "summary.py",
                                        "sanity.py", "debugging.py"},
    "optimizers and schedules": {"optimizer.py", "schedule.py"},
    "losses and metrics": {"losses.py", "metrics.py", "metric_base.py", "roc_auc.py", "segmentation_metrics.py"},
    "layers": {"layers.py"},
    "device, precision and distribution": {"torch_core.py", "precision.py", "distributed.py", "launch.py"},
    "saving, export and loading": {"checkpoint.py", "export.py", "export_checks.py", "registry.py", "atomic.py",
                                   "deploy.py"},
    "config, paths and lists": {"config.py", "paths.py", "foundation.py"},
    "dataset download (untar_data, URLs)": {"external.py", "download.py", "archive.py"},
}


CORE_SUBPACKAGES = ["callback", "datasets"]


def test_core_top_level_holds_only_training_core_modules():
    allowed = set().union(*CORE_KINDS.values())
    found = {path.name for path in (ROOT / "lib").glob("*.py")}
    unexpected = sorted(found - allowed)
    assert not unexpected, (
        f"lib/ holds modules that are not of a training-core kind: {unexpected}. A built-in dataset's "
        "source belongs in lib/datasets/ (fastlearn.datasets); a new core module is added to "
        "CORE_KINDS in tests/test_packaging.py under its kind")
    packages = sorted(path.parent.name for path in (ROOT / "lib").glob("*/__init__.py"))
    assert packages == CORE_SUBPACKAGES, f"lib/ has the subpackages {packages}; expected only {CORE_SUBPACKAGES}"


def test_core_does_not_depend_on_the_builtin_datasets():
    offenders = []
    for path in sorted((ROOT / "lib").glob("*.py")):
        for module in _imported_modules(path):
            if module == "fastlearn.datasets" or module.startswith("fastlearn.datasets."):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, ("the training core must not need the built-in datasets (they build on the "
                           "core, not the other way):\n" + "\n".join(offenders))


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
