"""What the tabular set-up produces, pinned against references written out plainly here (sorted
sets, dict look-ups, pandas statistics of ``df.iloc[train_rows]``): category codes and vocabs,
fill values and ``_na`` columns, means and stds, dtypes, the loaders' tensors and new rows through
``test_dl``; on ordered and shuffled splits, with string, object, integer, boolean and pandas
categorical columns, missing values and categories the training rows lack."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from fastlearn.data.blocks import CategoryBlock
from fastlearn.data.checks import missing_in_columns
from fastlearn.data.tables import as_slice, column_codes, values_in_rows
from fastlearn.tabular.procs import Categorify, FillMissing, NormalizeTab, TabularProc
from fastlearn.tabular.tabular_pandas import TabularPandas

N, N_TRAIN = 400, 300
CATS = ["s", "obj", "i", "flag", "catd"]
CONTS = ["f1", "f2", "iv", "late_nan"]


def table() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    df = pd.DataFrame({
        "s": rng.choice(["b", "a", "c", None, "d e", "Z"], N),
        "obj": pd.Series(rng.choice([3, 1, "x", 2.5, "a"], N), dtype=object),
        "i": rng.integers(0, 5, N),
        "flag": rng.random(N) < 0.3,
        "catd": pd.Categorical(rng.choice(["lo", "mid", "hi"], N), categories=["lo", "mid", "hi", "unused"]),
        "f1": np.where(rng.random(N) < 0.1, np.nan, rng.normal(5, 2, N)),
        "f2": rng.normal(0, 1, N).astype("float32"),
        "iv": rng.integers(-3, 100, N),
        "late_nan": rng.normal(0, 1, N),
        "unused": rng.choice(["u", "v"], N),
        "y": rng.choice(["yes", "no", "maybe"], N),
    }, index=[f"r{k}" for k in range(N)])
    return df


def split_rows(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "ordered":
        return np.arange(N_TRAIN), np.arange(N_TRAIN, N)
    perm = np.random.default_rng(3).permutation(N)
    return perm[:N_TRAIN], perm[N_TRAIN:]


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def reference_vocab(values) -> list:
    """``#na#`` then the distinct non-missing values, numbers before strings, each group sorted."""
    distinct = {v.item() if isinstance(v, np.generic) else v for v in values if not is_missing(v)}
    numbers = sorted(v for v in distinct if isinstance(v, (int, float)) and not isinstance(v, bool))
    others = sorted((v for v in distinct if v not in numbers), key=str)
    return ["#na#", *numbers, *others]


def reference_codes(values, vocab: list) -> list[int]:
    index = {v: i for i, v in enumerate(vocab) if i}
    return [0 if is_missing(v) else index.get(v.item() if isinstance(v, np.generic) else v, 0) for v in values]


@pytest.fixture(params=["ordered", "shuffled"])
def built(request):
    df = table()
    df.loc[df.index[-40:], "late_nan"] = np.nan  # missing in the last rows only
    df.loc[df.index[-25:], "s"] = "NEW"          # a category only the last rows hold
    train, valid = split_rows(request.param)
    before = df.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "NEW" is unseen when the last rows are validation rows
        to = TabularPandas(df, [Categorify, FillMissing, NormalizeTab], cat_names=CATS, cont_names=CONTS,
                           y_names="y", y_block=CategoryBlock(), splits=(train, valid))
    return df, before, train, valid, to


def test_categorical_codes_and_vocabs_match_the_reference(built):
    df, _, train, _, to = built
    for name in CATS:
        vocab = reference_vocab(df[name].iloc[train].tolist())
        assert list(to.classes[name].items) == vocab, name
        assert to.items[name].tolist() == reference_codes(df[name].tolist(), vocab), name
        assert to.items[name].dtype == np.int64
    assert "unused" not in to.classes["catd"].o2i  # a category of the dtype that no training row holds


def test_fill_values_na_columns_and_statistics_match_pandas_on_the_training_rows(built):
    df, _, train, _, to = built
    fill, normalize = to.procs[0], to.procs[2]
    train_df = df.iloc[train]
    expected_na = [n for n in CONTS if train_df[n].isna().any()]
    assert fill.na_cols == expected_na
    assert to.cat_names == CATS + [f"{n}_na" for n in expected_na]
    for name in CONTS:
        raw = df[name].astype("float64")
        median = float(train_df[name].astype("float64").dropna().median())
        assert fill.fill_values[name] == median, name
        filled = raw.fillna(median)
        mean, std = float(filled.iloc[train].mean()), float(filled.iloc[train].std(ddof=0)) + 1e-7
        assert (normalize.means[name], normalize.stds[name]) == (mean, std), name
        expected = ((filled - mean) / std).astype("float32").to_numpy()
        np.testing.assert_array_equal(to.items[name].to_numpy(), expected)
        assert to.items[name].dtype == np.float32
    for name in expected_na:  # the flag column, categorified: False -> 1, True -> 2
        assert to.items[f"{name}_na"].tolist() == [2 if m else 1 for m in df[name].isna()]


def test_target_vocab_from_training_rows_and_codes(built):
    df, _, train, _, to = built
    vocab = sorted(set(df["y"].iloc[train]))
    assert list(to.vocab.items) == vocab
    assert to.items["y"].tolist() == [vocab.index(v) for v in df["y"]]
    assert to.items["y"].dtype == np.int64


def test_the_given_frame_is_left_as_it_was(built):
    df, before, _, _, to = built
    pd.testing.assert_frame_equal(df, before)
    assert to.items["unused"].tolist() == df["unused"].tolist()  # other columns are kept, unchanged
    to.items.loc[to.items.index[0], "unused"] = "changed"
    assert df.loc[df.index[0], "unused"] == before.loc[before.index[0], "unused"]


def test_loader_tensors_are_the_processed_rows_of_each_split(built):
    _, _, train, valid, to = built
    dls = to.dataloaders(bs=64, seed=0)
    n_cat = len(to.cat_names)
    for split, dl in ((train, dls.train), (valid, dls.valid)):
        cats, conts, ys = dl.dataset.tensors()
        rows = to.items.iloc[split]
        assert cats.dtype == torch.int64 and conts.dtype == torch.float32 and ys.dtype == torch.int64
        assert cats.is_contiguous() and conts.is_contiguous()  # rows in memory order: batches gather rows
        assert cats.shape == (len(split), n_cat) and conts.shape == (len(split), len(CONTS))
        assert torch.equal(cats, torch.tensor(rows[to.cat_names].to_numpy(np.int64)))
        assert torch.equal(conts, torch.tensor(rows[CONTS].to_numpy(np.float32)))
        assert torch.equal(ys, torch.tensor(rows["y"].to_numpy(np.int64)))
    batches = list(dls.valid)
    assert torch.equal(torch.cat([b[0] for b in batches]), dls.valid.dataset.tensors()[0])
    seen = torch.cat([b[2] for b in dls.train])
    assert len(seen) == (len(train) // 64) * 64  # the training loader drops its last partial batch


def test_new_rows_through_test_dl_are_processed_like_the_training_rows(built):
    df, _, train, _, to = built
    dls = to.dataloaders(bs=64, seed=0)
    new = df.iloc[:6].copy()
    new.loc[new.index[0], "obj"] = "never seen"
    new.loc[new.index[1], "s"] = None
    new.loc[new.index[2], "f2"] = np.nan        # no missing f2 in training: filled, no f2_na column
    new.loc[new.index[3], "late_nan"] = np.nan  # late_nan_na (when training had one) says True
    new_before = new.copy(deep=True)
    with pytest.warns(UserWarning, match="'obj' has 1 value.*never seen"):
        cats, conts, ys = dls.test_dl(new).one_batch()
    pd.testing.assert_frame_equal(new, new_before)
    fill, normalize = to.procs[0], to.procs[2]
    for j, name in enumerate(to.cat_names):
        if name.endswith("_na"):
            expected = [2 if m else 1 for m in new[name[:-3]].isna()]
        else:
            expected = reference_codes(new[name].tolist(), list(to.classes[name].items))
        assert cats[:, j].tolist() == expected, name
    assert cats[0, CATS.index("obj")] == 0 and cats[1, CATS.index("s")] == 0
    for j, name in enumerate(CONTS):
        filled = new[name].astype("float64").fillna(fill.fill_values[name])
        expected = ((filled - normalize.means[name]) / normalize.stds[name]).astype("float32").to_numpy()
        np.testing.assert_array_equal(conts[:, j].numpy(), expected)
    assert ys.tolist() == [list(to.vocab.items).index(v) for v in new["y"]]


def test_a_proc_with_only_setup_and_apply_gets_the_training_rows():
    df = table()
    train, valid = split_rows("shuffled")

    class Centre(TabularProc):
        def setup(self, to, train_df):
            self.index = list(train_df.index)
            self.mean = float(train_df["iv"].mean())

        def apply(self, df, to):
            df["iv"] = df["iv"] - self.mean
            return df

    proc = Centre()
    to = TabularPandas(df, [proc], cont_names=["iv"], splits=(train, valid))
    assert proc.index == list(df.index[train])
    assert proc.mean == float(df["iv"].iloc[train].astype("float64").mean())
    np.testing.assert_array_equal(to.items["iv"].to_numpy(),
                                  (df["iv"].astype("float64") - proc.mean).astype("float32").to_numpy())


def test_a_target_label_missing_from_the_training_rows_is_an_error_naming_it():
    df = pd.DataFrame({"a": list("xyxyx"), "y": ["p", "q", "p", "q", "r"]})
    with pytest.raises(ValueError, match=r"target column 'y' of the data has label\(s\) not in the training vocab "
                                         r"\['p', 'q'\] \(e.g. 'r' at row 4\)"):
        TabularPandas(df, [Categorify], cat_names=["a"], y_names="y", splits=([0, 1, 2, 3], [4]))


def test_blank_and_missing_targets_are_found_per_column_kind():
    df = pd.DataFrame({
        "s": ["a", "  ", None, "b", "", np.nan],
        "o": pd.Series([1, "x", " ", None, 2.5, "y"], dtype=object),
        "c": pd.Categorical(["u", None, " ", "u", "v", "v"]),
        "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        "lists": pd.Series([["a"], [], None, ["b"], " ", ["d"]], dtype=object),
        "f": [1.0, np.inf, 2.0, np.nan, 3.0, 4.0],
    })
    assert missing_in_columns(df, ["s"]).tolist() == [False, True, True, False, True, True]
    assert missing_in_columns(df, ["o"]).tolist() == [False, False, True, True, False, False]
    assert missing_in_columns(df, ["c"]).tolist() == [False, True, True, False, False, False]
    assert missing_in_columns(df, ["n"]).tolist() == [False, True, False, False, False, False]
    assert missing_in_columns(df, ["lists"]).tolist() == [False, False, True, False, True, False]
    assert missing_in_columns(df, ["f", "n"]).tolist() == [False, True, False, True, False, False]


def test_column_codes_spread_the_distinct_values_to_the_rows():
    for column in (pd.Series(["b", None, "a", "b"]), pd.Series(["b", np.nan, "a", "b"], dtype=object),
                   pd.Series(pd.Categorical(["b", None, "a", "b"], categories=["a", "b", "c"])),
                   pd.Series(pd.array(["b", None, "a", "b"], dtype="string"))):
        codes, uniques = column_codes(column)
        assert codes.dtype == np.int64 and codes[1] == -1
        assert [uniques[c] for c in codes[[0, 2, 3]]] == ["b", "a", "b"]
        assert sorted(values_in_rows(codes, uniques, np.array([1, 2]))) == ["a"]
    codes, uniques = column_codes(pd.Series(pd.array([2, None, 2, 7], dtype="Int64")))
    assert codes.tolist() == [0, -1, 0, 1] and list(uniques) == [2, 7]
    assert as_slice(np.array([4, 5, 6])) == slice(4, 7)
    assert isinstance(as_slice(np.array([4, 6, 5])), np.ndarray) and isinstance(as_slice(np.arange(0)), np.ndarray)
