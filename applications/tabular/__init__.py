"""fastlearn.tabular: procs, TabularPandas, tabular loaders, TabularModel and tabular_learner."""
from fastlearn.layers import Embedding, LinBnDrop, SigmoidRange, sigmoid_range
from fastlearn.tabular.loader import TabularDataLoader, TabularSplit
from fastlearn.tabular.tabular_pandas import TabularDataLoaders, TabularPandas
from fastlearn.tabular.learner import tabular_config, tabular_learner
from fastlearn.tabular.model import TabularModel, emb_sz_rule, get_emb_sz
from fastlearn.tabular.procs import (PROCS, Categorify, FillMissing, NormalizeTab, TabularProc, as_proc,
                                     register_proc)
from fastlearn.tabular.columns import add_datepart, cont_cat_split

TabularDataBunch = TabularDataLoaders

__all__ = [
    "Categorify", "Embedding", "FillMissing", "LinBnDrop", "NormalizeTab", "PROCS", "SigmoidRange",
    "TabularDataBunch", "TabularDataLoader", "TabularDataLoaders", "TabularModel", "TabularPandas",
    "TabularProc", "TabularSplit", "add_datepart", "as_proc", "cont_cat_split", "emb_sz_rule", "get_emb_sz",
    "register_proc", "sigmoid_range", "tabular_config", "tabular_learner",
]
