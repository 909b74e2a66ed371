"""Tabular loaders, TabularModel, get_emb_sz and tabular_learner on the built-in credit data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fastlearn.data.batch_transforms import Normalize
from fastlearn.data.splitters import RandomSplitter
from fastlearn.loading import load_learner
from fastlearn.metrics import accuracy
from fastlearn.tabular.tabular_pandas import TabularPandas
from fastlearn.tabular.loader import TabularDataLoader
from fastlearn.tabular.tabular_pandas import TabularDataLoaders
from fastlearn.tabular.learner import tabular_learner
from fastlearn.tabular.model import TabularModel, emb_sz_rule, get_emb_sz
from fastlearn.tabular.procs import Categorify, FillMissing

CATS = ["Home", "Marital", "Records", "Job"]
CONTS = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]


@pytest.fixture(scope="module")
def credit_df(builtin_data_path):
    from fastlearn.datasets import credit_data
    df = pd.read_csv(credit_data(data=builtin_data_path) / "credit_data.csv")
    return df.iloc[:2000].reset_index(drop=True)


@pytest.fixture(scope="module")
def credit_to(credit_df):
    splits = RandomSplitter(0.25, seed=0)(range(len(credit_df)))
    return TabularPandas(credit_df, [Categorify, FillMissing, Normalize], cat_names=CATS,
                         cont_names=CONTS, y_names="Status", splits=splits)


def test_batches_are_slices_with_the_right_shapes_and_dtypes(credit_to):
    dls = credit_to.dataloaders(bs=32, device="cpu")
    assert isinstance(dls, TabularDataLoaders) and isinstance(dls.train, TabularDataLoader)
    x_cat, x_cont, y = dls.one_batch()
    n_cat = len(CATS) + 3  # Income_na, Assets_na, Debt_na
    assert x_cat.shape == (32, n_cat) and x_cat.dtype == torch.int64
    assert x_cont.shape == (32, len(CONTS)) and x_cont.dtype == torch.float32
    assert y.shape == (32,) and y.dtype == torch.int64
    assert len(dls.train) == len(credit_to.train) // 32  # drops the last partial training batch
    valid = torch.cat([b[2] for b in dls.valid])
    assert valid.tolist() == credit_to.valid.y.tolist()  # in order, every row
    assert dls.c == 2 and list(dls.vocab) == ["bad", "good"]
    assert dls.classes["Home"].o2i["rent"] == list(dls.classes["Home"]).index("rent")


def test_shuffle_is_seeded_and_covers_every_row(credit_to):
    first = credit_to.dataloaders(bs=50, seed=3, device="cpu", drop_last=False)
    again = credit_to.dataloaders(bs=50, seed=3, device="cpu", drop_last=False)
    ys = torch.cat([b[0][:, 0] for b in first.train])
    assert torch.equal(ys, torch.cat([b[0][:, 0] for b in again.train]))
    assert len(ys) == len(credit_to.train)


def test_get_emb_sz_rule(credit_to):
    assert emb_sz_rule(7) == min(600, round(1.6 * 7 ** 0.56)) == 5
    assert emb_sz_rule(100000) == 600
    sizes = get_emb_sz(credit_to, sz_dict={"Job": 10})
    assert sizes[0] == (len(credit_to.classes["Home"]), emb_sz_rule(len(credit_to.classes["Home"])))
    assert sizes[CATS.index("Job")] == (len(credit_to.classes["Job"]), 10)


def test_tabular_model_layout():
    model = TabularModel([(5, 3), (4, 2)], n_cont=2, out_sz=1, layers=[8, 4], ps=[0.1, 0.2], y_range=(0, 1))
    out = model(torch.tensor([[1, 2], [0, 3]]), torch.randn(2, 2))
    assert out.shape == (2, 1) and bool(((out > 0) & (out < 1)).all())
    assert model.n_emb == 5 and model.embeds[0].weight.std() < 0.05
    with pytest.raises(ValueError, match="ps="):
        TabularModel([(5, 3)], 0, 1, [8, 4], ps=[0.1])


def test_learner_beats_majority_baseline_and_exports(credit_to, credit_df, tmp_path):
    torch.manual_seed(0)
    dls = credit_to.dataloaders(bs=64, seed=0, device="cpu")
    learn = tabular_learner(dls, layers=[64, 32], metrics=accuracy, path=tmp_path)
    learn.fit_one_cycle(4, 1e-2)
    majority = credit_to.valid.y.value_counts(normalize=True).max()
    assert learn.validate()[1] > majority + 0.02

    row = credit_df.iloc[int(credit_to.splits[1][0])]
    label, index, probs = learn.predict(row)
    assert label in ("bad", "good") and label == dls.vocab[int(index)] and probs.shape == (2,)

    loaded = load_learner(learn.export("credit.pkl"))
    label2, index2, probs2 = loaded.predict(row)
    assert label2 == label and torch.allclose(probs2, probs, atol=1e-6)
    rows = credit_df.iloc[:50]
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(rows))
    preds2, _ = loaded.get_preds(dl=loaded.dls.test_dl(rows))
    assert torch.allclose(preds, preds2, atol=1e-6)
    assert loaded.dls.classes["Home"] == dls.classes["Home"]


def test_inference_errors_name_column_and_row(credit_to, credit_df):
    dls = credit_to.dataloaders(bs=64, device="cpu")
    with pytest.raises(ValueError, match=r"\['Income'\]"):
        dls.test_dl(credit_df.drop(columns=["Income"]).iloc[:5])
    strict = TabularPandas(credit_df, [Categorify(unseen="error"), FillMissing], cat_names=CATS,
                           cont_names=CONTS, y_names="Status", splits=credit_to.splits)
    bad = credit_df.iloc[:3].copy()
    bad.loc[1, "Home"] = "castle"
    with pytest.raises(ValueError, match=r"'Home'.*castle.*rows \[1\]"):
        strict.dataloaders(bs=8, device="cpu").test_dl(bad)
    with pytest.warns(UserWarning, match="castle"):
        dls.test_dl(bad)  # the default warns and maps to #na#
    no_fill = TabularPandas(credit_df, [Categorify(unseen="na")], cat_names=CATS, cont_names=CONTS,
                            y_names="Status", splits=credit_to.splits)
    with pytest.raises(ValueError, match=r"'Income'.*row \d+.*FillMissing"):
        no_fill.dataloaders(bs=8)


def test_from_df_regression_with_y_range(credit_df):
    df = credit_df.assign(Amount=np.log(credit_df["Amount"].astype("float64")))
    dls = TabularDataLoaders.from_df(df, procs=[Categorify(unseen="na"), FillMissing, Normalize], cat_names=CATS,
                                     cont_names=["Age", "Income", "Price"], y_names="Amount", bs=128,
                                     valid_idx=range(1500, 2000), device="cpu")
    assert len(dls.valid_ds) == 500 and dls.c == 1
    learn = tabular_learner(dls, layers=[32], y_range=(4.0, 9.0))
    assert type(learn.loss_func).__name__ == "MSELossFlat"
    pred = learn.predict(df.iloc[0])[0]
    assert isinstance(pred, float) and 4.0 < pred < 9.0
    shown = dls.valid.decode_batch(dls.valid.one_batch(), max_n=3)   # what show_batch displays
    assert shown["Amount"].tolist() == pytest.approx(df["Amount"].iloc[1500:1503].tolist())
    table = dls.valid.results_table(learn, max_n=3)
    assert table["Amount_pred"].tolist() == pytest.approx(learn.get_preds()[0][:3, 0].tolist(), abs=1e-5)


def test_show_results_prints_rows_with_predicted_labels(credit_to, capsys):
    import matplotlib.pyplot as plt
    dls = credit_to.dataloaders(bs=32, device="cpu")
    learn = tabular_learner(dls, layers=[8])
    table = dls.valid.results_table(learn, max_n=4)
    preds, _ = learn.get_preds()
    expected = [dls.vocab[int(i)] for i in preds[:4].argmax(dim=1)]
    assert table["Status_pred"].tolist() == expected
    assert table["Status"].tolist() == [dls.vocab[int(i)] for i in credit_to.valid.y[:4]]
    assert table["Home"].isin(list(dls.classes["Home"])).all()
    learn.show_results(max_n=3)
    printed = capsys.readouterr().out
    assert "Status_pred" in printed and "\n2 " in printed and "\n3 " not in printed  # rows 0, 1, 2
    assert plt.get_fignums() == []  # a table, not a figure of empty image axes
