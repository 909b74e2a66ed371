"""L, Path.ls and the layered configuration."""
from __future__ import annotations

import configparser
import pathlib

import numpy as np
import pytest
import torch

from fastlearn import config as config_module
from fastlearn.config import DEFAULTS, get_config
from fastlearn.foundation import L, first
from fastlearn.paths import Path

REPO = pathlib.Path(__file__).resolve().parents[2]


# --- L -------------------------------------------------------------------------------------------

def test_L_construction_and_repr():
    assert L(1, 2, 3) == [1, 2, 3] and L([1, 2, 3]) == [1, 2, 3]
    assert L() == [] and L(None) == [] and L(5) == [5] and L("ab") == ["ab"]
    assert repr(L(range(12))) == "(#12) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9...]"
    assert L.range(3) == [0, 1, 2] and L.range(2, 8, 3) == [2, 5]


def test_L_indexing_with_lists_masks_and_tensors():
    xs = L("a", "b", "c", "d")
    assert xs[[0, 2]] == ["a", "c"] and isinstance(xs[[0, 2]], L)
    assert xs[[True, False, False, True]] == ["a", "d"]
    assert xs[np.array([3, 1])] == ["d", "b"]
    assert xs[torch.tensor([1, 2])] == ["b", "c"]
    assert xs[torch.tensor([False, True, True, False])] == ["b", "c"]
    assert xs[1:3] == ["b", "c"] and isinstance(xs[1:3], L)
    assert xs[-1] == "d"
    with pytest.raises(IndexError, match="mask of length 2"):
        xs[[True, False]]


def test_L_map_itemgot_attrgot_unique_val2idx():
    pairs = L((1, "x"), (2, "y"), (3, "x"))
    assert pairs.itemgot(1) == ["x", "y", "x"]
    assert pairs.itemgot(1).unique() == ["x", "y"]
    assert L([[1, [2, 3]]]).itemgot(1, 0) == [2]
    assert L(1, 2, 3).map(lambda x, k: x * k, 10) == [10, 20, 30]
    assert L(torch.zeros(2, 3), torch.zeros(4)).attrgot("shape") == [(2, 3), (4,)]
    assert L({"a": 1}, {"b": 2}).attrgot("a", default=0) == [1, 0]
    assert L("c", "a", "b").val2idx() == {"c": 0, "a": 1, "b": 2}
    assert L(3, 1, 2).sorted() == [1, 2, 3]
    assert L(1, 2, 3, 4).filter(lambda x: x % 2) == [1, 3]
    assert sorted(L.range(20).shuffle()) == list(range(20))
    assert L([1, 2], [3]).concat() == [1, 2, 3]
    assert first(L(1, 2, 3), lambda x: x > 1) == 2 and first([]) is None


# --- Path.ls -------------------------------------------------------------------------------------

def test_path_ls_lists_sorted_entries_as_L(tmp_path):
    for name in ("b.png", "a.png", "labels.csv"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    listing = Path(tmp_path).ls()
    assert isinstance(listing, L)
    assert [p.name for p in listing] == ["a.png", "b.png", "labels.csv", "sub"]
    assert all(isinstance(p, Path) for p in listing)
    assert [p.name for p in Path(tmp_path).ls(file_exts=".csv")] == ["labels.csv"]
    assert [p.name for p in Path(tmp_path).ls(file_type="image")] == ["a.png", "b.png"]
    assert len(Path(tmp_path).ls(n_max=2)) == 2
    assert isinstance(Path(tmp_path) / "sub", Path) and (Path(tmp_path) / "sub").ls() == []
    with pytest.raises(NotADirectoryError, match="b.png"):
        (Path(tmp_path) / "b.png").ls()


def test_path_base_path_shortens_repr(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "BASE_PATH", Path(tmp_path))
    assert repr(Path(tmp_path) / "train" / "3") == "Path('train/3')"


# --- config ----------------------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FASTLEARN_CONFIG", raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_config_builtin_defaults(home):
    cfg = get_config()
    assert cfg.get("defaults", "bs") == 64
    assert cfg.get("defaults", "device") == "auto"
    assert cfg.get("defaults", "precision") == "fp32"
    assert cfg.path("data") == home / ".fastlearn" / "data"
    assert cfg.path("models") == pathlib.Path("models")


def test_config_user_file_then_environment_file(home, tmp_path, monkeypatch):
    user = home / ".fastlearn" / "config.ini"
    user.parent.mkdir()
    user.write_text("[defaults]\nbs = 32\ndevice = cpu\n[paths]\ndata = mydata\n")
    cfg = get_config()
    assert cfg.get("defaults", "bs") == 32 and cfg.get("defaults", "device") == "cpu"
    assert cfg.path("data") == user.parent / "mydata"  # relative to the file naming it
    env_file = tmp_path / "project" / "fl.ini"
    env_file.parent.mkdir()
    env_file.write_text("[defaults]\nbs = 16\n[paths]\narchive = ~/archives\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(env_file))
    cfg = get_config()
    assert cfg.get("defaults", "bs") == 16  # the environment's file wins...
    assert cfg.get("defaults", "device") == "cpu"  # ...key by key
    assert cfg.path("data") == user.parent / "mydata"
    assert cfg.path("archive") == home / "archives"  # "~" expanded


def test_config_errors_are_clear(home, tmp_path, monkeypatch):
    bad = tmp_path / "bad.ini"
    bad.write_text("[defaults]\nbatch_size = 32\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(bad))
    with pytest.raises(ValueError, match=r"unknown key 'batch_size'.*\[defaults\].*'bs'"):
        get_config()
    bad.write_text("[default]\nbs = 32\n")
    with pytest.raises(ValueError, match=r"unknown section \[default\]"):
        get_config()
    bad.write_text("[defaults]\nbs = many\n")
    with pytest.raises(ValueError, match="not an integer"):
        get_config().get("defaults", "bs")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(tmp_path / "missing.ini"))
    with pytest.raises(FileNotFoundError, match="missing.ini"):
        get_config()


def test_settings_ini_holds_exactly_the_builtin_defaults():
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(REPO / "settings.ini")
    from_file = {section: dict(parser.items(section)) for section in parser.sections()}
    assert from_file == DEFAULTS
    assert config_module.DEFAULTS is DEFAULTS


def test_tensor_takes_images_arrays_numbers_and_tensor_lists():
    import numpy as np
    import torch
    from PIL import Image

    from fastlearn.torch_core import tensor
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert torch.equal(tensor(Image.fromarray(pixels)), torch.from_numpy(pixels))
    assert torch.equal(tensor(pixels), torch.from_numpy(pixels))
    assert tensor(1, 2, 3).tolist() == [1, 2, 3]
    assert tensor([torch.zeros(2), torch.ones(2)]).shape == (2, 2)
    assert tensor([1.5]).dtype == torch.float32


def test_console_table_keeps_columns_apart_when_a_value_is_wider_than_its_header(capsys):
    from fastlearn.progress import ProgressCallback
    cb = ProgressCallback()
    cb.master = None
    cb._write(["epoch", "valid_loss"], header=True)
    cb._write([0, 123456.789], header=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["epoch", "valid_loss"]
    assert lines[1].split() == ["0", "123456.789000"]


def test_config_is_read_again_whenever_a_file_changes(home, tmp_path, monkeypatch):
    env_file = tmp_path / "fl.ini"
    env_file.write_text("[defaults]\nbs = 16\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(env_file))
    assert get_config().get("defaults", "bs") == 16
    env_file.write_text("[defaults]\nbs = 32\n")  # same size, within the same timestamp tick
    assert get_config().get("defaults", "bs") == 32
    monkeypatch.setattr(config_module, "_SETTLE_S", 0.0)  # files count as settled at once
    first = get_config()
    assert get_config() is first  # unchanged files: the last read is reused
    env_file.write_text("[defaults]\nbs = 128\n")
    assert get_config() is not first and get_config().get("defaults", "bs") == 128
    other = tmp_path / "other.ini"
    other.write_text("[defaults]\nbs = 8\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(other))
    assert get_config().get("defaults", "bs") == 8
    monkeypatch.delenv("FASTLEARN_CONFIG")
    assert get_config().get("defaults", "bs") == 64
