"""Fixtures for the reliability tests: a small tabular learner and its export, and an editor for
export files (to craft the descriptions an attacker would write)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch


def make_tabular_learner(path):
    from fastlearn.data.batch_transforms import Normalize
    from fastlearn.tabular.tabular_pandas import TabularDataLoaders
    from fastlearn.tabular.learner import tabular_learner
    from fastlearn.tabular.procs import Categorify
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], 64), "size": rng.normal(size=64)})
    df["label"] = np.where(df["size"] > 0, "big", "small")
    dls = TabularDataLoaders.from_df(df, path=path, procs=[Categorify, Normalize], cat_names=["color"],
                                     cont_names=["size"], y_names="label", bs=16, device="cpu")
    torch.manual_seed(0)
    return tabular_learner(dls, layers=[8]), df


@pytest.fixture
def tabular_export(tmp_path):
    """``(learn, path of its export, the DataFrame it was trained on)``."""
    learn, df = make_tabular_learner(tmp_path)
    return learn, learn.export("model.pkl"), df


@pytest.fixture
def craft(tmp_path):
    """``craft(source, edit, name)``: a copy of the export ``source`` whose description (a dict)
    ``edit`` changed in place; ``edit_weights`` changes the state dict the same way."""
    def make(source, edit=None, name="crafted.pkl", edit_weights=None):
        content = torch.load(source, weights_only=True)
        description = json.loads(content["description"])
        if edit is not None:
            edit(description)
        state = dict(content["state_dict"])
        if edit_weights is not None:
            edit_weights(state)
        out = tmp_path / name
        torch.save({"description": json.dumps(description), "state_dict": state}, out)
        return out
    return make
