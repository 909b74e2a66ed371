"""The package layout: every subpackage is listed for wheels, and the layers point one way."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from layout import ROOT, module_files, setuptools_config


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
    config = setuptools_config()
    listed = set(config["packages"])
    expected = _expected_packages(config["package-dir"])
    missing = sorted(expected - listed)
    assert not missing, (f"subpackages missing from [tool.setuptools] packages in pyproject.toml "
                         f"(a wheel would silently drop them): {missing}")


def test_every_listed_package_exists():
    config = setuptools_config()
    mapped = config["package-dir"]
    for package in config["packages"]:
        root = max((name for name in mapped if package == name or package.startswith(name + ".")), key=len)
        folder = ROOT / mapped[root] / Path(*package[len(root):].lstrip(".").split(".") if package != root else ())
        assert (folder / "__init__.py").exists(), f"{package} is listed but {folder}/__init__.py is missing"


def test_every_module_is_installed_from_its_source_file():
    """The installed package is the source folders: a module added since the install (strict
    editable mode links each file) or a stale install elsewhere shows here."""
    wrong = []
    for module, path in sorted(module_files().items()):
        spec = importlib.util.find_spec(module)
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin != path.resolve():
            wrong.append(f"{module}: {origin or 'not found'} (expected {path.relative_to(ROOT)})")
    assert not wrong, ("the installed fastlearn does not match the sources; reinstall (make install, or "
                       "pip install -e . --config-settings editable_mode=strict):\n" + "\n".join(wrong))


# --- the import graph ------------------------------------------------------------------------
# Every Import / ImportFrom node of every module, function-local ones included: an import hidden in
# a function body is still an arrow between modules (and a cycle through it is still a cycle).

def _import_graph(root: Path = ROOT, package_dir: dict[str, str] | None = None
                  ) -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    """The modules and, for each, the library modules it imports (anywhere in it) with a line number."""
    files = module_files(root, package_dir)
    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        targets: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against this module's package
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[:len(package) - node.level + 1]
                    base = ".".join(package + ([node.module] if node.module else []))
                # `from fastlearn import checkpoint` imports the submodule fastlearn.checkpoint
                found = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            else:
                continue
            for name in found:
                while name and name not in files and "." in name:  # `import a.b.c` of a module a.b
                    name = name.rsplit(".", 1)[0]
                if name in files and name != module:
                    targets.setdefault(name, node.lineno)
        graph[module] = targets
    return files, graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, {}):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return components


def _describe_cycles(files: dict[str, Path], graph: dict[str, dict[str, int]], root: Path) -> list[str]:
    lines = []
    for component in _cycles(graph):
        arrows = [f"{files[a].relative_to(root)}:{graph[a][b]} imports {b}"
                  for a in component for b in graph[a] if b in component]
        lines.append(f"{' <-> '.join(component)}: " + "; ".join(arrows))
    return lines


def test_no_import_cycles_including_function_local_imports():
    files, graph = _import_graph()
    cycles = _describe_cycles(files, graph, ROOT)
    assert not cycles, (
        "import cycles between library modules (a function-local import counts): move what both sides "
        "need into a module below them, or pass the dependency in (an argument, the callback that needs "
        "it):\n" + "\n".join(cycles))


def test_cycle_check_sees_an_import_hidden_in_a_function(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "low.py").write_text("def f():\n    from pkg.high import g\n    return g\n")
    (tmp_path / "pkg" / "high.py").write_text("from . import low\n\ndef g():\n    return low\n")
    files, graph = _import_graph(tmp_path, {"pkg": "pkg"})
    assert graph["pkg.low"] == {"pkg.high": 2} and graph["pkg.high"] == {"pkg.low": 1}
    assert _cycles(graph) == [["pkg.high", "pkg.low"]]
    assert "pkg/low.py:2 imports pkg.high" in _describe_cycles(files, graph, tmp_path)[0]


# The course facade re-exports the data layer for `from fastlearn.basics import *`; it is the one
# module of the core that users import and the library never does.
FACADES = {"fastlearn.basics"}
UPPER_LAYERS = ("fastlearn.data", "fastlearn.vision", "fastlearn.text", "fastlearn.tabular", "fastlearn.collab")


def _in(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _arrows(source_folder: str, forbidden, exempt=()) -> list[str]:
    files, graph = _import_graph()
    base = ROOT / source_folder
    return [f"{files[module].relative_to(ROOT)}:{line} imports {target}"
            for module, targets in sorted(graph.items()) for target, line in targets.items()
            if files[module].is_relative_to(base) and module not in exempt and _in(target, forbidden)]


def test_core_does_not_import_data_layer_or_applications():
    offenders = _arrows("lib", UPPER_LAYERS, exempt=FACADES)
    assert not offenders, "the core (lib/) must not import upper layers:\n" + "\n".join(offenders)


# The core's top level, in layers from the bottom up: what a student reads to see how training works.
# A module imports only modules of its own layer or of a layer listed before it (function-local
# imports included), so `learner` may use `export` (Learner.export) but `export` never imports
# `learner`: `loading` (load_learner), above both, puts an export's parts in a Learner. The built-in
# datasets live in lib/datasets/ (fastlearn.datasets), the data layer and applications elsewhere.
# The Callback base (lib/callback/__init__.py, listed as "callback.py") and the callbacks of the
# course's `fastai.callback.*` paths (hook, fp16, mixup, progress, loggers, profiler) live in the
# core subpackage lib/callback/; its modules are listed one by one ("callback/hook.py").
CORE_LAYERS = [
    ("package, lists, paths, config, devices, memory, registries, atomic files, layers",
     {"__init__.py", "foundation.py", "paths.py", "config.py", "torch_core.py", "allocator.py", "registry.py",
      "atomic.py", "layers.py"}),
    ("dataset download (untar_data, URLs)", {"external.py", "download.py", "archive.py"}),
    ("losses, metrics, optimizers and schedules, the callback base and the export checks",
     {"losses.py", "metrics.py", "metric_base.py", "roc_auc.py", "segmentation_metrics.py", "optimizer.py",
      "schedule.py", "callback.py", "callback/hook.py", "export_checks.py"}),
    ("the loop's callbacks and services: progress, recording, precision, distribution, checkpoints, export",
     {"progress.py", "recorder.py", "tracker.py", "sanity.py", "debugging.py", "precision.py", "distributed.py",
      "training.py", "inference.py", "summary.py", "lr_finder.py", "checkpoint.py", "export.py", "deploy.py",
      "callback/fp16.py", "callback/mixup.py", "callback/progress.py", "callback/profiler.py", "callback/logger.py",
      "callback/tensorboard.py", "callback/wandb.py", "callback/mlflow.py"}),
    ("the Learner", {"learner.py"}),
    ("above the Learner: load_learner, the launcher, the course facades and names",
     {"loading.py", "launch.py", "basics.py", "course.py", "callback/all.py"}),
]
# The core's subpackages: the callbacks (their base and the course's callback paths), the names the
# book's code uses that the library does not need (fastlearn.course: Module, store_attr, the chapter
# 16 Optimizer...), and the built-in datasets.
CORE_SUBPACKAGES = ["callback", "course", "datasets"]


def _core_layer(module: str) -> int | None:
    """The layer of a core module (a module of a core subpackage such as fastlearn.callback.x by its
    own entry "callback/x.py", else as its package); None outside the core's top level
    (fastlearn.datasets, upper layers)."""
    parts = module.split(".")
    if parts[0] != "fastlearn" or _in(module, UPPER_LAYERS) or _in(module, ["fastlearn.datasets"]):
        return None
    own = "/".join(parts[1:]) + ".py"  # a subpackage's module placed on its own (callback/all.py)
    name = "__init__.py" if len(parts) == 1 else parts[1] + ".py"
    for candidate in (own, name):
        layer = next((i for i, (_, names) in enumerate(CORE_LAYERS) if candidate in names), None)
        if layer is not None:
            return layer
    return None


def test_core_modules_import_only_their_own_or_lower_layers():
    files, graph = _import_graph()
    offenders = []
    for module, targets in sorted(graph.items()):
        layer = _core_layer(module)
        for target, line in targets.items():
            target_layer = _core_layer(target)
            if layer is not None and target_layer is not None and target_layer > layer:
                offenders.append(f"{files[module].relative_to(ROOT)}:{line} ({CORE_LAYERS[layer][0]}) imports "
                                 f"{target} ({CORE_LAYERS[target_layer][0]})")
    assert not offenders, ("a core module imports one of a layer above it (CORE_LAYERS in "
                           "tests/test_packaging.py); move the shared code down, or pass it in:\n"
                           + "\n".join(offenders))


def test_core_top_level_holds_only_training_core_modules():
    allowed = set().union(*(names for _, names in CORE_LAYERS))
    found = {path.name for path in (ROOT / "lib").glob("*.py")}
    unexpected = sorted(found - allowed)
    assert not unexpected, (
        f"lib/ holds modules that are not of a training-core kind: {unexpected}. A built-in dataset's "
        "source belongs in lib/datasets/ (fastlearn.datasets); a new core module is added to "
        "CORE_LAYERS in tests/test_packaging.py, in the lowest layer holding everything it imports")
    packages = sorted(path.parent.name for path in (ROOT / "lib").glob("*/__init__.py"))
    assert packages == CORE_SUBPACKAGES, f"lib/ has the subpackages {packages}; expected only {CORE_SUBPACKAGES}"
    listed = {name for _, names in CORE_LAYERS for name in names}
    callback_modules = {f"callback/{path.name}" for path in (ROOT / "lib" / "callback").glob("*.py")
                        if path.name != "__init__.py"}
    assert callback_modules <= listed, (f"lib/callback/ modules missing from CORE_LAYERS: "
                                        f"{sorted(callback_modules - listed)}")


def test_core_does_not_depend_on_the_builtin_datasets():
    offenders = [arrow for arrow in _arrows("lib", ["fastlearn.datasets"])
                 if not arrow.startswith("lib/datasets/")]
    assert not offenders, ("the training core must not need the built-in datasets (they build on the "
                           "core, not the other way):\n" + "\n".join(offenders))


def test_data_layer_does_not_import_applications():
    offenders = _arrows("data_blocks", UPPER_LAYERS[1:])
    assert not offenders, "the data layer must not import applications:\n" + "\n".join(offenders)


def test_library_code_imports_by_package_name_only():
    offenders = []
    for folder in ("lib", "data_blocks", "applications"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                         else [])
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} imports {name}" for name in names
                              if name.split(".")[0] in {"lib", "data_blocks", "applications"}]
    assert not offenders, "import fastlearn.… names, never the source folders:\n" + "\n".join(offenders)


def test_settings_ini_matches_builtin_defaults():
    import configparser

    from fastlearn.config import DEFAULTS
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(ROOT / "settings.ini")
    found = {section: dict(parser.items(section)) for section in parser.sections()}
    assert found == DEFAULTS


def test_training_an_image_model_does_not_import_pandas():
    # pandas takes ~0.15 s to import; only tables, the course's star imports and reports need it
    import subprocess
    import sys
    code = ("import sys; import fastlearn.learner, fastlearn.metrics, fastlearn.vision.data, "
            "fastlearn.vision.learner, fastlearn.vision.transforms; print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
