"""Splitters give exact indices; check_splits rejects bad splits."""
import pandas as pd
import pytest
import torch

from fastlearn.data.splitters import (ColSplitter, EndSplitter, FileSplitter, FuncSplitter,
                                      GrandparentSplitter, IndexSplitter, MaskSplitter, RandomSplitter,
                                      TrainTestSplitter, check_splits)

ITEMS = [f"item{i}" for i in range(10)]


def test_random_splitter_exact_indices_with_seed():
    train, valid = RandomSplitter(valid_pct=0.2, seed=42)(ITEMS)
    assert list(valid) == [2, 6]
    assert list(train) == [1, 8, 4, 5, 0, 9, 3, 7]
    assert RandomSplitter(0.2, seed=42)(ITEMS) == (train, valid)
    assert list(RandomSplitter(0.2, seed=0)(ITEMS)[1]) != list(valid)
    assert len(RandomSplitter(0.5)(ITEMS)[1]) == 5


def test_random_splitter_leaves_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(1)
    torch.manual_seed(7)
    RandomSplitter(0.2, seed=1)(ITEMS)
    assert torch.rand(1) == expected
    with pytest.raises(ValueError, match="valid_pct=1.5"):
        RandomSplitter(1.5)


def test_grandparent_splitter():
    items = ["p/train/a/1.png", "p/valid/a/2.png", "p/train/b/3.png", "p/test/b/4.png"]
    assert GrandparentSplitter()(items) == ([0, 2], [1])
    assert GrandparentSplitter(valid_name="test")(items) == ([0, 2], [3])


def test_index_func_mask_end_splitters():
    assert IndexSplitter([1, 3])(ITEMS[:5]) == ([0, 2, 4], [1, 3])
    assert FuncSplitter(lambda o: o.endswith(("3", "7")))(ITEMS) == ([0, 1, 2, 4, 5, 6, 8, 9], [3, 7])
    assert MaskSplitter([True, False, False])(ITEMS[:3]) == ([1, 2], [0])
    assert EndSplitter(0.2)(ITEMS) == ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    assert EndSplitter(0.2, valid_last=False)(ITEMS) == ([2, 3, 4, 5, 6, 7, 8, 9], [0, 1])


def test_col_and_file_splitters(tmp_path):
    df = pd.DataFrame({"name": ["a", "b", "c"], "is_valid": [False, True, False], "fold": [1, 2, 2]})
    assert ColSplitter()(df) == ([0, 2], [1])
    assert ColSplitter("fold", on=2)(df) == ([0], [1, 2])
    with pytest.raises(ValueError, match="no column 'nope'"):
        ColSplitter("nope")(df)
    with pytest.raises(TypeError, match="splits a DataFrame"):
        ColSplitter()(["a"])
    listing = tmp_path / "valid.txt"
    listing.write_text("2.png\n4.png\n")
    assert FileSplitter(listing)(["x/1.png", "x/2.png", "y/3.png", "y/4.png"]) == ([0, 2], [1, 3])


def test_train_test_splitter_stratifies():
    labels = ["a"] * 6 + ["b"] * 4
    train, valid = TrainTestSplitter(test_size=0.5, random_state=3, stratify=labels)(ITEMS)
    assert sorted(train + valid) == list(range(10))
    assert sum(labels[i] == "a" for i in valid) == 3 and sum(labels[i] == "b" for i in valid) == 2
    assert TrainTestSplitter(0.5, random_state=3, stratify=labels)(ITEMS) == (train, valid)


def test_check_splits_rejects_bad_splits():
    assert check_splits(([0, 1], [2]), 3) == [[0, 1], [2]]
    with pytest.raises(ValueError, match="item 1 is in split 0 and split 1"):
        check_splits(([0, 1], [1, 2]), 3)
    with pytest.raises(ValueError, match=r"out of range \[5\] for 3 items"):
        check_splits(([0], [5]), 3)
    with pytest.raises(ValueError, match="training split is empty"):
        check_splits(([], [0]), 3)
    with pytest.raises(ValueError, match="must return"):
        check_splits([0, 1, 2], 3)
