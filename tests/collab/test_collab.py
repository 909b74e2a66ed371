"""Collaborative filtering on the built-in MovieLens-100K ratings."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from fastlearn.collab.data import CollabDataLoaders
from fastlearn.collab.learner import collab_learner
from fastlearn.collab.models import EmbeddingDotBias, EmbeddingNN
from fastlearn.loading import load_learner
from fastlearn.layers import Embedding, sigmoid_range
from fastlearn.tabular.model import get_emb_sz


@pytest.fixture(scope="module")
def ratings(builtin_data_path):
    from fastlearn.datasets import movielens_100k
    path = movielens_100k(data=builtin_data_path)
    ratings = pd.read_csv(path / "ratings.csv")
    movies = pd.read_csv(path / "movies.csv")
    top_users = ratings["user"].value_counts().index[:300]
    top_movies = ratings["movie"].value_counts().index[:400]
    subset = ratings[ratings["user"].isin(top_users) & ratings["movie"].isin(top_movies)]
    return subset.merge(movies[["movie", "title"]]).reset_index(drop=True)


@pytest.fixture(scope="module")
def dls(ratings):
    return CollabDataLoaders.from_df(ratings, item_name="title", bs=256, seed=0, device="cpu")


def test_batches_and_classes(dls, ratings):
    x, y = dls.one_batch()
    assert x.shape == (256, 2) and x.dtype == torch.int64 and y.dtype == torch.float32 and y.shape == (256,)
    assert set(dls.classes) == {"user", "title"}
    assert dls.classes["title"][0] == "#na#" and len(dls.classes["user"]) == ratings["user"].nunique() + 1
    assert dls.classes["title"].o2i["Star Wars (1977)"] > 0
    assert get_emb_sz(dls) == [(len(dls.classes["user"]), round(1.6 * len(dls.classes["user"]) ** 0.56)),
                               (len(dls.classes["title"]), round(1.6 * len(dls.classes["title"]) ** 0.56))]


def test_default_columns_are_first_three(ratings):
    dls = CollabDataLoaders.from_df(ratings[["user", "movie", "rating"]], bs=64, seed=1, device="cpu")
    assert dls.cat_names == ["user", "movie"] and dls.y_names == ["rating"]


def test_dot_model_trains_and_beats_the_global_mean(dls, tmp_path):
    torch.manual_seed(0)
    learn = collab_learner(dls, n_factors=20, y_range=(0, 5.5), path=tmp_path)
    n_items = len(dls.classes["title"])
    assert learn.model.i_bias.weight.shape == (n_items, 1) and learn.model.u_weight.weight.shape[1] == 20
    learn.fit_one_cycle(4, 5e-3, wd=0.1)
    preds, targs = learn.get_preds()
    rmse = float(((preds.flatten() - targs) ** 2).mean().sqrt())
    train_mean = float(torch.cat([b[1] for b in dls.train]).mean())
    baseline = float(((targs - train_mean) ** 2).mean().sqrt())
    assert rmse < baseline - 0.02
    star_wars = learn.model.bias(["Star Wars (1977)"])
    index = dls.classes["title"].o2i["Star Wars (1977)"]
    assert torch.allclose(star_wars, learn.model.i_bias.weight[index].detach())
    assert learn.model.weight(["Star Wars (1977)"]).shape == (1, 20)
    with pytest.raises(ValueError, match="Star Wars 2"):
        learn.model.bias(["Star Wars 2"])

    loaded = load_learner(learn.export())
    rows = pd.DataFrame({"user": [dls.classes["user"][1]], "title": ["Star Wars (1977)"]})
    first = learn.get_preds(dl=learn.dls.test_dl(rows))[0]
    assert torch.allclose(first, loaded.get_preds(dl=loaded.dls.test_dl(rows))[0])
    rated = rows.assign(**{dls.y_names[0]: [4.0]})  # targets keep the (N,) shape of the trained loaders'
    targets = learn.get_preds(dl=learn.dls.test_dl(rated))[1]
    assert targets.shape == (1,) and torch.equal(loaded.get_preds(dl=loaded.dls.test_dl(rated))[1], targets)


def test_nn_model(dls):
    learn = collab_learner(dls, use_nn=True, y_range=(0, 5.5), layers=[32, 16])
    assert isinstance(learn.model, EmbeddingNN)
    x, _ = dls.one_batch()
    assert learn.model(x).shape == (len(x), 1)


def test_layers_helpers():
    emb = Embedding(50, 8)
    weight = emb.weight.detach()
    assert weight.abs().max() <= 0.02 + 1e-6 and 0.005 < float(weight.std()) < 0.015
    assert torch.allclose(sigmoid_range(torch.tensor([0.0]), 1, 5), torch.tensor([3.0]))
    model = EmbeddingDotBias(3, 4, 5)
    assert model(torch.tensor([[1, 2]])).shape == (1,)
    with pytest.raises(ValueError, match="codes"):
        model.bias(["a name"])


def test_show_results_prints_ratings_with_predictions(dls, capsys):
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    table = dls.valid.results_table(learn, max_n=5)
    preds, targs = learn.get_preds()
    assert table.columns.tolist() == ["user", "title", "rating", "rating_pred"]
    assert table["rating"].tolist() == pytest.approx(targs[:5].tolist())
    assert table["rating_pred"].tolist() == pytest.approx(preds[:5].tolist(), abs=1e-6)
    assert table["title"].isin(list(dls.classes["title"])).all()
    learn.show_results(max_n=2)
    assert "rating_pred" in capsys.readouterr().out
