"""Getters and labellers: get_files & co., parent_label, RegexLabeller, ColReader, using_attr."""
import pickle

import pandas as pd
import pytest

from fastlearn.data.getters import (ColReader, RegexLabeller, get_files, get_image_files, get_text_files,
                                    parent_label, using_attr)
from fastlearn.foundation import L
from fastlearn.paths import Path


@pytest.fixture
def tree(tmp_path):
    for rel in ["train/cat/1.png", "train/cat/2.JPG", "train/dog/3.png", "valid/dog/4.png",
                "notes.txt", "train/readme.txt", ".hidden/5.png", "train/.x.png", "test/6.png"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    return tmp_path


def names(files, root):
    return [f.relative_to(root).as_posix() for f in files]


def test_get_files_filters_sorts_and_returns_library_paths(tree):
    files = get_files(tree, extensions=[".png", "jpg"])
    assert isinstance(files, L) and all(isinstance(f, Path) for f in files)
    assert names(files, tree) == ["test/6.png", "train/cat/1.png", "train/cat/2.JPG",
                                  "train/dog/3.png", "valid/dog/4.png"]
    assert names(get_files(tree, extensions=".txt", recurse=False), tree) == ["notes.txt"]
    assert names(get_files(tree, extensions=".png", folders=["valid"]), tree) == ["valid/dog/4.png"]
    assert files[0].parent.ls() == [files[0]]


def test_get_image_and_text_files(tree):
    assert names(get_image_files(tree, folders=["train"]), tree) == [
        "train/cat/1.png", "train/cat/2.JPG", "train/dog/3.png"]
    assert names(get_text_files(tree), tree) == ["notes.txt", "train/readme.txt"]
    assert len(get_image_files(tree / "train" / "cat", recurse=False)) == 2


def test_get_files_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope does not exist"):
        get_files(tmp_path / "nope")
    assert get_image_files(tmp_path) == []


def test_a_folder_under_the_home_folder_written_with_a_tilde(tree, monkeypatch):
    monkeypatch.setenv("HOME", str(tree))
    assert names(get_image_files("~/train/cat"), tree) == ["train/cat/1.png", "train/cat/2.JPG"]


def test_labellers():
    assert parent_label("data/train/cat/1.png") == "cat"
    labeller = RegexLabeller(r"^(.+)_\d+\.jpg$")
    assert labeller("great_pyrenees_12.jpg") == "great_pyrenees"
    assert RegexLabeller(r"/([a-z]+)_\d+", match=False)(Path("pets/beagle_3.jpg")) == "beagle"
    assert pickle.loads(pickle.dumps(labeller))("a_1.jpg") == "a"
    with pytest.raises(ValueError, match=r"does not match 'cat\.png'"):
        labeller("cat.png")
    with pytest.raises(ValueError, match="has no group"):
        RegexLabeller(r"\d+")
    assert using_attr(labeller, "name")(Path("/x/y/boxer_7.jpg")) == "boxer"


def test_col_reader():
    df = pd.DataFrame({"fname": ["a.png", "b.png"], "labels": ["cat dog", "dog"], "y": [1.5, 2.5]})
    row = df.iloc[0]
    assert ColReader("fname", pref="imgs/", suff=".bak")(row) == "imgs/a.png.bak"
    assert ColReader(0)(row) == "a.png"
    assert ColReader("labels", label_delim=" ")(row) == ["cat", "dog"]
    assert ColReader(["fname", "y"])(row) == ["a.png", 1.5]
    assert ColReader("fname", pref=Path("imgs"))(row).replace("\\", "/") == "imgs/a.png"
    with pytest.raises(ValueError, match="column 'nope' is not in the row"):
        ColReader("nope")(row)
