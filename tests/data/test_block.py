"""DataBlock, Datasets, TfmdLists and DataBlock.summary on small in-memory sources."""
import pandas as pd
import pytest
import torch

from fastlearn.data.dataloader import DataLoader
from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock, TransformBlock
from fastlearn.data.categorical import Categorize
from fastlearn.data.datasets import Datasets, TfmdLists
from fastlearn.data.getters import ColReader
from fastlearn.data.splitters import IndexSplitter, RandomSplitter
from fastlearn.data.summary import SummaryError
from fastlearn.data.transforms import Transform


@pytest.fixture
def df():
    return pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                         "label": ["b", "a", "b", "a", "c", "a"],
                         "tags": ["u v", "v", "", "u", "v u", "w"],
                         "is_valid": [False, False, False, False, True, True]})


def test_no_blocks_gives_raw_items(df):
    dsets = DataBlock(splitter=IndexSplitter([0])).datasets(df)
    x, y = dsets.train[0]
    assert x["label"] == "a" and y["x"] == 1.0
    dsets = DataBlock(get_x=ColReader("x"), get_y=ColReader("label"), splitter=IndexSplitter([0])).datasets(df)
    assert dsets.train[0] == (1.0, "a")


def test_vocab_is_built_on_the_training_split_only(df):
    dblock = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=ColReader("x"),
                       get_y=ColReader("label"), splitter=IndexSplitter([0, 2, 4]))
    # the training rows (1, 3, 5) are all 'a': the validation label 'b' is not in the vocab
    with pytest.raises(ValueError, match=r"validation item 0 .*label 'b' is not in the vocab \['a'\]"):
        dblock.datasets(df)
    dsets = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=ColReader("x"),
                      get_y=ColReader("label"), splitter=IndexSplitter([1, 3])).datasets(df)
    assert list(dsets.vocab) == ["a", "b", "c"]
    assert dsets.train[0] == (torch.tensor(0.0), torch.tensor(1))
    assert dsets.decode(dsets.valid[0]) == (torch.tensor(1.0), "a")
    assert dsets.c == 3 and type(dsets.loss_func).__name__ == "CrossEntropyLossFlat"


def test_label_missing_from_a_given_vocab_fails_at_build_time(df):
    dblock = DataBlock(blocks=(RegressionBlock, CategoryBlock(vocab=["a", "b"])), get_x=ColReader("x"),
                       get_y=ColReader("label"), splitter=IndexSplitter([5]))
    with pytest.raises(ValueError, match=r"training item 4 .*'c' is not in the vocab.*add the label"):
        dblock.datasets(df)


def test_get_y_failing_for_some_rows_names_the_row(df):
    def first_letter_upper(row):
        if row["x"] == 3.0:
            raise KeyError("no label for this row")
        return row["label"].upper()

    dblock = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=ColReader("x"),
                       get_y=first_letter_upper, splitter=IndexSplitter([0]))
    with pytest.raises(ValueError, match=r"getter first_letter_upper failed on training item 3 .*'x': 3\.0"):
        dblock.datasets(df)


def test_bad_splitters_and_empty_sources(df):
    overlapping = DataBlock(splitter=lambda items: ([0, 1, 2], [2, 3]))
    with pytest.raises(ValueError, match="item 2 is in split 0 and split 1"):
        overlapping.datasets(df)
    out_of_range = DataBlock(splitter=lambda items: ([0, 1], [99]))
    with pytest.raises(ValueError, match=r"out of range \[99\] for 6 items"):
        out_of_range.datasets(df)
    with pytest.raises(ValueError, match="no items found"):
        DataBlock().datasets([])
    with pytest.raises(TypeError, match="no get_items"):
        DataBlock().datasets("some/folder")


def test_multicategory_regression_and_losses(df):
    dblock = DataBlock(blocks=(RegressionBlock, MultiCategoryBlock), get_x=ColReader("x"),
                       get_y=ColReader("tags", label_delim=" "), splitter=IndexSplitter([4]))
    dsets = dblock.datasets(df)
    assert list(dsets.vocab) == ["u", "v", "w"]
    assert dsets.train[0][1].tolist() == [1.0, 1.0, 0.0] and dsets.train[2][1].tolist() == [0.0, 0.0, 0.0]
    assert type(dsets.loss_func).__name__ == "BCEWithLogitsLossFlat"
    reg = DataBlock(blocks=(RegressionBlock, RegressionBlock), get_x=ColReader("x"),
                    get_y=ColReader(["x", "x"]), splitter=IndexSplitter([0])).datasets(df)
    assert reg.c == 2 and type(reg.loss_func).__name__ == "MSELossFlat"


def test_n_inp_getters_and_new(df):
    dblock = DataBlock(blocks=(TransformBlock, TransformBlock, CategoryBlock), n_inp=2,
                       get_x=[ColReader("x"), ColReader("tags")], get_y=ColReader("label"),
                       splitter=IndexSplitter([0]))
    dsets = dblock.datasets(df)
    assert dsets.n_inp == 2 and dsets.train[0][:2] == (1.0, "v")
    doubled = Transform(lambda x: x)
    new = dblock.new(item_tfms=[doubled])
    assert new.item_tfms == [doubled] and new.getters == dblock.getters
    with pytest.raises(ValueError, match="2 get_y functions for 1 target blocks"):
        DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=[str, str])


def test_datasets_and_tfmd_lists_directly():
    dsets = Datasets(["a1", "b2", "a3", "c4"], tfms=[[str.upper], [lambda s: s[0], Categorize()]],
                     splits=([0, 1, 3], [2]))
    assert dsets.train[1] == ("B2", torch.tensor(1))
    assert list(dsets.vocab) == ["a", "b", "c"] and len(dsets.valid) == 1
    assert dsets.kinds == ("raw", "category")
    tl = TfmdLists([1, 2, 3], [lambda x: x * 10], splits=([0, 1], [2]))
    assert tl.train[1] == 20 and tl.valid[0] == 30
    dls = dsets.dataloaders(bs=2, device="cpu", num_workers=0, seed=0)
    xb, yb = next(iter(dls.valid))
    assert list(xb) == ["A3"] and yb.tolist() == [0]


def test_summary_walks_a_working_pipeline(df, capsys):
    dblock = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=ColReader("x"),
                       get_y=ColReader("label"), splitter=IndexSplitter([3, 5]))
    dblock.summary(df, bs=2)
    out = capsys.readouterr().out
    assert "Found 6 items" in out and "2 datasets of sizes 4, 2" in out
    assert "applying ColReader(['label']" in out and "applying Categorize(" in out
    assert "Tensor int64 () 1" in out  # 'b' of the first training row
    assert "Final batch: (Tensor float32 (2,) [0.0, 1.0], Tensor int64 (2,) [1, 0])" in out


def test_summary_names_the_failing_step_item_and_fix(df, capsys):
    def broken_get_x(row):
        return 1 // int(row["x"])

    dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_x=broken_get_x,
                       get_y=ColReader("label"), splitter=IndexSplitter([3, 5]))
    with pytest.raises(SummaryError, match="broken_get_x") as info:
        dblock.summary(df)
    out = capsys.readouterr().out
    assert "Step failed: building the datasets" in out
    assert "training item 0" in out and "ZeroDivisionError" in out and "Fix:" in out
    assert isinstance(info.value, ValueError)


def test_summary_reports_a_batch_that_cannot_collate(capsys):
    items = [[1.0], [1.0, 2.0], [3.0], [4.0]]
    dblock = DataBlock(blocks=(RegressionBlock, RegressionBlock), splitter=RandomSplitter(0.25, seed=0))
    with pytest.raises(SummaryError):
        dblock.summary(items, bs=4)
    assert "Step failed: collating a batch of 4 samples" in capsys.readouterr().out


class _TaggedLoader(DataLoader):
    """A loader class a block can ask for, with an argument of its own."""

    def __init__(self, dataset, tag: str = "none", **kwargs):
        super().__init__(dataset, **kwargs)
        self.tag = tag


def test_dataloaders_pass_loader_arguments_and_name_unknown_ones(df):
    dblock = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=ColReader("x"), get_y=ColReader("label"),
                       splitter=IndexSplitter([3, 5]))
    calls = []

    def collate(samples):
        calls.append(len(samples))
        return torch.utils.data.default_collate(samples)
    dls = dblock.dataloaders(df, bs=2, collate_fn=collate, device="cpu")
    dls.one_batch()
    assert calls == [2] and dls.train.collate_fn is collate
    with pytest.raises(TypeError, match=r"'seq_len'.*DataLoader, takes \['collate_fn', 'decode_batch_fn', "
                                        r"'prefetch_factor', 'sampler'\]"):
        dblock.dataloaders(df, bs=2, seq_len=8)
    with pytest.raises(TypeError, match=r"'seq_len'.*Datasets.dataloaders|'seq_len'"):
        dblock.datasets(df).dataloaders(bs=2, seq_len=8)


def test_a_block_chooses_the_loader_and_its_arguments(df):
    tagged = TransformBlock(dl_type=_TaggedLoader, dls_kwargs={"tag": "from the block"})
    dblock = DataBlock(blocks=(tagged, CategoryBlock), get_x=ColReader("x"), get_y=ColReader("label"),
                       splitter=IndexSplitter([3, 5]))
    dls = dblock.dataloaders(df, bs=2, device="cpu")
    assert all(isinstance(dl, _TaggedLoader) and dl.tag == "from the block" for dl in dls.loaders)
    assert dblock.dataloaders(df, bs=2, tag="given", device="cpu").valid.tag == "given"   # the caller wins
    dls = dblock.datasets(df).dataloaders(bs=2, dl_type=DataLoader, device="cpu")      # dl_type wins over the block
    assert type(dls.train) is DataLoader
    with pytest.raises(TypeError, match=r"'tagg'.*_TaggedLoader.*'tag'"):
        dblock.dataloaders(df, bs=2, tagg="x")
