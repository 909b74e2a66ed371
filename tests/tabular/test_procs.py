"""Tabular procs and TabularPandas: values learnt from the training rows only, whole-column processing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fastlearn.data.batch_transforms import Normalize
from fastlearn.data.blocks import CategoryBlock
from fastlearn.tabular.tabular_pandas import TabularPandas
from fastlearn.tabular.procs import Categorify, FillMissing, NormalizeTab, as_proc
from fastlearn.tabular.columns import add_datepart, cont_cat_split

# the frame's valid rows hold a colour ("green") the training rows lack: most tests are about other things
pytestmark = pytest.mark.filterwarnings("ignore:categorical column 'color'")


@pytest.fixture
def frame():
    # rows 0-3 train, rows 4-5 valid; valid values are extreme so train-only statistics show
    return pd.DataFrame({
        "color": ["red", "blue", "red", None, "green", "blue"],
        "size": [1.0, np.nan, 3.0, 5.0, 100.0, np.nan],
        "weight": [2.0, 4.0, 6.0, 8.0, 1000.0, 2000.0],
        "label": ["a", "b", "a", "b", "a", "b"],
    })


SPLITS = ([0, 1, 2, 3], [4, 5])


def test_categorify_vocab_from_train_only_na_first(frame):
    with pytest.warns(UserWarning, match="'color'.*green"):
        to = TabularPandas(frame, [Categorify], cat_names=["color"], y_names="label", splits=SPLITS)
    assert list(to.classes["color"]) == ["#na#", "blue", "red"]  # "green" is only in valid
    assert to.items["color"].tolist() == [2, 1, 2, 0, 0, 1]
    assert to.classes["color"].o2i["red"] == 2


def test_fill_missing_median_from_train_and_na_column(frame):
    to = TabularPandas(frame, [FillMissing], cont_names=["size", "weight"], splits=SPLITS)
    proc = to.procs[0]
    assert proc.fill_values["size"] == 3.0  # median of train 1, 3, 5; valid's 100 ignored
    assert proc.na_cols == ["size"]
    assert to.cat_names == ["size_na"]
    assert to.items["size"].tolist() == [1.0, 3.0, 3.0, 5.0, 100.0, 3.0]
    assert to.items["size_na"].tolist() == [False, True, False, False, False, True]


@pytest.mark.parametrize("strategy,expected", [("mode", 1.0), ("constant", -1.0)])
def test_fill_missing_strategies(frame, strategy, expected):
    to = TabularPandas(frame, [FillMissing(fill_strategy=strategy, fill_val=-1.0, add_col=False)],
                       cont_names=["size"], splits=SPLITS)
    assert to.procs[0].fill_values["size"] == expected
    assert "size_na" not in to.items and to.cat_names == []


def test_na_columns_are_categorified_after_filling(frame):
    to = TabularPandas(frame, [Categorify, FillMissing], cat_names=["color"], cont_names=["size"],
                       splits=([0, 1, 2, 3, 5], [4]))
    assert list(to.classes["size_na"]) == ["#na#", False, True]
    assert to.items["size_na"].tolist() == [1, 2, 1, 1, 1, 2]


def test_normalize_uses_train_mean_std(frame):
    to = TabularPandas(frame, [NormalizeTab], cont_names=["weight"], splits=SPLITS)
    train = np.array([2.0, 4.0, 6.0, 8.0])
    assert to.procs[0].means["weight"] == pytest.approx(train.mean())
    assert to.procs[0].stds["weight"] == pytest.approx(train.std(), rel=1e-6)
    assert to.train.xs["weight"].mean() == pytest.approx(0.0, abs=1e-6)
    assert to.valid.xs["weight"].iloc[0] == pytest.approx((1000 - 5) / train.std(), rel=1e-5)


def test_data_layer_normalize_maps_to_the_tabular_proc(frame):
    to = TabularPandas(frame, [Categorify, FillMissing, Normalize], cat_names=["color"],
                       cont_names=["weight"], splits=([0, 1, 2, 3, 5], [4]))
    assert [type(p).__name__ for p in to.procs] == ["FillMissing", "Categorify", "NormalizeTab"]
    assert isinstance(Normalize.from_stats([0.5] * 3, [0.2] * 3), Normalize)  # image use unchanged
    with pytest.raises(TypeError, match="from_stats"):
        as_proc(Normalize.from_stats([0.5] * 3, [0.2] * 3))
    with pytest.raises(TypeError, match="procs takes"):
        as_proc("Categorify")


def test_target_and_splits_views(frame):
    to = TabularPandas(frame, [Categorify, FillMissing], cat_names=["color"], cont_names=["size"],
                       y_names="label", splits=([0, 1, 2, 3, 5], [4]))
    assert list(to.vocab) == ["a", "b"] and to.c == 2
    assert to.train.y.tolist() == [0, 1, 0, 1, 1]
    assert to.train.xs.columns.tolist() == ["color", "size_na", "size"]
    assert len(to.valid.xs) == 1
    assert type(to.loss_func).__name__ == "CrossEntropyLossFlat"


def test_float_target_is_regression(frame):
    to = TabularPandas(frame, [], cont_names=["weight"], y_names="size", splits=([0, 2, 3], [4]))
    assert to.y_kind == "regression" and to.c == 1 and to.vocab is None
    assert type(to.loss_func).__name__ == "MSELossFlat"
    cats, conts, ys = to.train.tensors()
    # one column per target, as the model's output (N, 1): F.mse_loss(out, y) does not broadcast
    assert ys.dtype == torch.float32 and ys.tolist() == [[1.0], [3.0], [5.0]]
    out = torch.tensor([[0.0], [1.0], [2.0]])
    assert float(torch.nn.functional.mse_loss(out, ys)) == pytest.approx((1 + 4 + 9) / 3)


def test_missing_column_error_names_it(frame):
    with pytest.raises(ValueError, match=r"\['colour'\].*columns are"):
        TabularPandas(frame, [Categorify], cat_names=["colour"])


def test_nan_in_continuous_without_fill_missing_names_column_and_row(frame):
    to = TabularPandas(frame, [Categorify], cat_names=["color"], cont_names=["size"], splits=SPLITS)
    with pytest.raises(ValueError, match=r"'size'.*row 1.*FillMissing"):
        to.dataloaders(bs=2)


def test_unseen_category_error_option(frame):
    with pytest.raises(ValueError, match=r"'color'.*green.*rows \[4\]"):
        TabularPandas(frame, [Categorify(unseen="error")], cat_names=["color"], splits=SPLITS)


def test_new_applies_the_same_procs(frame):
    to = TabularPandas(frame, [Categorify, FillMissing, Normalize], cat_names=["color"],
                       cont_names=["size", "weight"], splits=([0, 1, 2, 3, 5], [4]))
    new = to.new(pd.DataFrame({"color": ["blue"], "size": [np.nan], "weight": [4.0]}))
    assert new.items["color"].tolist() == [1]
    assert new.items["size_na"].tolist() == [2]
    fill = to.procs[0].fill_values["size"]
    norm = to.procs[2]
    assert new.items["size"].iloc[0] == pytest.approx((fill - norm.means["size"]) / norm.stds["size"], rel=1e-5)


def test_add_datepart_and_cont_cat_split():
    df = pd.DataFrame({"saledate": ["2020-03-01", "2021-12-31"], "n": [1, 2], "price": [1.5, 2.5]})
    df = add_datepart(df, "saledate")
    assert "saledate" not in df
    assert df["saleYear"].tolist() == [2020, 2021] and df["saleIs_year_end"].tolist() == [False, True]
    assert df["saleElapsed"].tolist() == [1583020800, 1640908800]
    cont, cat = cont_cat_split(df, max_card=1, dep_var="price")
    assert "price" not in cont + cat and "n" in cont and "saleIs_year_end" in cat


def test_integer_target_is_regression_as_in_fastai_and_integer_classes_take_category_block(frame):
    frame = frame.assign(count=[3, 7, 1, 9, 4, 2])
    to = TabularPandas(frame, [], cont_names=["weight"], y_names="count", splits=([0, 2, 3], [4]))
    assert to.y_kind == "regression" and to.c == 1 and type(to.loss_func).__name__ == "MSELossFlat"
    assert to.train.tensors()[-1].tolist() == [[3.0], [1.0], [9.0]]   # a label unseen in training is no error
    to = TabularPandas(frame, [], cont_names=["weight"], y_names="count", y_block=CategoryBlock(),
                       splits=([0, 1, 2, 3, 4, 5], []))
    assert to.y_kind == "category" and list(to.vocab) == [1, 2, 3, 4, 7, 9]
    flags = TabularPandas(frame.assign(flag=[True, False] * 3), [], cont_names=["weight"], y_names="flag")
    assert flags.y_kind == "category" and list(flags.vocab) == [False, True]
