"""Small text data shared by the text tests (built once per session in the session's data folder)."""
from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def food_path(builtin_data_path):
    """Food reviews: 300 training and 100 test reviews, ``train/<great|other>/*.txt``."""
    from fastlearn.datasets import food_reviews
    return food_reviews(n_train=300, n_test=100, data=builtin_data_path)


@pytest.fixture(scope="session")
def austen_df(builtin_data_path):
    """Six chapters of Emma for training and two for validation (a DataFrame: text, is_valid)."""
    from fastlearn.datasets import jane_austen
    df = pd.read_csv(jane_austen(data=builtin_data_path) / "austen.csv")
    emma = df[df.novel == "emma"]
    return pd.concat([emma[~emma.is_valid].iloc[:6], emma[emma.is_valid].iloc[:2]]).reset_index(drop=True)
