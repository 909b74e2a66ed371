"""Fixtures shared by the whole test suite.

For the whole session (set up before collection, undone after): ``FASTLEARN_CONFIG`` points at a
temporary config whose ``[paths] data``, ``archive`` and ``storage`` lie in one session temp
folder, so no test writes under ``~/.fastlearn``. The built-in datasets (``fastlearn.datasets``)
are built there on first use and reused by every later test of the session.
``FASTLEARN_SOURCES`` keeps pointing at the unpacked dataset sources: the value it already has,
else the repository's ``.cache/sources`` (filled by ``make sources``), else the user's default.

Fixtures:

- ``builtin_data_path``: the session's data folder (a ``fastlearn.paths.Path``).
- ``fashion_mnist_path``: Fashion-MNIST built once per session, 30 train + 10 valid PNGs per
  class, 28 px grey: ``train/<class>/*.png``, ``valid/<class>/*.png``, 10 classes.
- ``mnist_sample_path``: the MNIST "3 vs 7" sample built once per session, in the layout of the
  course's ``URLs.MNIST_SAMPLE`` (``train/3``, ``train/7``, ``valid/3``, ``valid/7``,
  ``labels.csv``), 40 train + 10 valid per digit.
- ``pets_path``: a folder in the layout of the course's ``URLs.PETS``: ``images/<Breed>_<n>.png``,
  8 Fashion-MNIST images of each of 4 classes, upper-case "cat" breeds (``Bag``, ``Coat``) and
  lower-case "dog" breeds (``sandal``, ``sneaker``).
- ``bears_path``: a bears-style folder, one subfolder per class (Fashion-MNIST, 8 per class).
- ``config_tmp``: a fresh config for one test, with empty ``data``, ``archive`` and ``storage``
  folders under ``tmp_path``; returns the ``fastlearn.config.Config`` (``config_tmp.path("data")``).
  Built-in datasets built inside such a test are built again from the sources (slower).
"""
from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import pytest

REPO_SOURCES = pathlib.Path(__file__).resolve().parents[1] / ".cache" / "sources"
_saved_environ: dict[str, str | None] = {}
_session_folder: list[pathlib.Path] = []


def write_config(folder: pathlib.Path) -> pathlib.Path:
    """Write a config.ini whose data, archive and storage paths are inside ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "config.ini"
    file.write_text("[paths]\n"
                    f"data = {folder / 'data'}\n"
                    f"archive = {folder / 'archive'}\n"
                    f"storage = {folder / 'storage'}\n")
    return file


def pytest_configure(config: pytest.Config) -> None:
    for key in ("FASTLEARN_CONFIG", "FASTLEARN_SOURCES"):
        _saved_environ[key] = os.environ.get(key)
    if not os.environ.get("FASTLEARN_SOURCES"):
        if REPO_SOURCES.is_dir():
            os.environ["FASTLEARN_SOURCES"] = str(REPO_SOURCES)
        else:
            from fastlearn.config import get_config
            os.environ["FASTLEARN_SOURCES"] = str(get_config().path("storage") / "sources")
    folder = pathlib.Path(tempfile.mkdtemp(prefix="fastlearn-tests-"))
    _session_folder.append(folder)
    os.environ["FASTLEARN_CONFIG"] = str(write_config(folder))


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved_environ.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for folder in _session_folder:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def builtin_data_path():
    """The session's data folder, where the built-in datasets are built once."""
    from fastlearn.config import get_config
    return get_config().path("data")


@pytest.fixture(scope="session")
def fashion_mnist_path(builtin_data_path):
    """Fashion-MNIST, 30 train + 10 valid PNGs per class at 28 px, built once per session."""
    from fastlearn.datasets import fashion_mnist
    return fashion_mnist(n_per_class=30, n_valid_per_class=10, size=28, data=builtin_data_path)


@pytest.fixture(scope="session")
def mnist_sample_path(builtin_data_path):
    """The MNIST "3 vs 7" sample (40 train + 10 valid per digit), built once per session."""
    from fastlearn.datasets import mnist_sample
    return mnist_sample(n_per_class=40, n_valid_per_class=10, data=builtin_data_path)


PETS_CLASSES = ("Bag", "Coat", "Sandal", "Sneaker")


@pytest.fixture(scope="session")
def pets_path(tmp_path_factory, builtin_data_path):
    """A pets-style folder: ``images/<Breed>_<n>.png`` (see the module docstring)."""
    from fastlearn.datasets import fashion_mnist
    from fastlearn.paths import Path
    source = fashion_mnist(n_per_class=8, n_valid_per_class=2, size=28, data=builtin_data_path)
    path = tmp_path_factory.mktemp("pets")
    (path / "images").mkdir()
    for name in PETS_CLASSES:
        breed = name if name in ("Bag", "Coat") else name.lower()
        for number, file in enumerate(sorted((source / "train" / name).ls())):
            shutil.copy(file, path / "images" / f"{breed}_{number}.png")
    return Path(path)


@pytest.fixture(scope="session")
def bears_path(builtin_data_path):
    """A bears-style folder: one subfolder per class (``fashion_mnist``'s ``train``)."""
    from fastlearn.datasets import fashion_mnist
    return fashion_mnist(n_per_class=8, n_valid_per_class=2, size=28, data=builtin_data_path) / "train"


@pytest.fixture
def config_tmp(tmp_path, monkeypatch):
    """A fresh config for one test: empty data, archive and storage folders under tmp_path."""
    from fastlearn.config import get_config
    monkeypatch.setenv("FASTLEARN_CONFIG", str(write_config(tmp_path / "fastlearn")))
    return get_config()


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test drew (plots are checked headless; open figures only use memory)."""
    yield
    import matplotlib.pyplot as plt
    plt.close("all")
