"""``TabularModel``: embeddings for the categorical columns, the continuous columns, then
linear/batch-norm/dropout blocks; ``get_emb_sz`` picks embedding sizes.

>>> import torch
>>> model = TabularModel([(4, 3), (6, 4)], n_cont=2, out_sz=2, layers=[8])
>>> model(torch.tensor([[1, 2], [3, 0]]), torch.randn(2, 2)).shape
torch.Size([2, 2])
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from fastlearn.export import describe_loss
from fastlearn.layers import Embedding, LinBnDrop, SigmoidRange
from fastlearn.registry import code_from_name, register_code


def emb_sz_rule(n_cat: int) -> int:
    """The rule of thumb for an embedding's width: ``min(600, round(1.6 * n_cat ** 0.56))``.

    >>> emb_sz_rule(3), emb_sz_rule(1000)
    (3, 77)
    """
    return min(600, round(1.6 * n_cat ** 0.56))


def get_emb_sz(to_or_dls, sz_dict: dict[str, int] | None = None) -> list[tuple[int, int]]:
    """``(vocab size, embedding width)`` for each categorical column of a ``TabularPandas`` or its
    loaders (collab: users, then items), the width from ``sz_dict`` or :func:`emb_sz_rule`.

    >>> get_emb_sz(dls)          # doctest: +SKIP
    [(944, 74), (1665, 102)]
    """
    classes, cat_names = getattr(to_or_dls, "classes", None), getattr(to_or_dls, "cat_names", None)
    if not isinstance(classes, dict) or cat_names is None:
        raise TypeError(f"get_emb_sz takes a TabularPandas or tabular/collab DataLoaders, got "
                        f"{type(to_or_dls).__name__}")
    sz_dict = sz_dict or {}
    missing = [name for name in cat_names if name not in classes]
    if missing:
        raise ValueError(f"categorical column(s) {missing} have no vocab; add Categorify to procs")
    return [(len(classes[name]), sz_dict.get(name, emb_sz_rule(len(classes[name])))) for name in cat_names]


def _activation(act_cls: nn.Module | dict | None) -> nn.Module | None:
    if isinstance(act_cls, dict):  # the description an export recorded (see describe_activation)
        return code_from_name(act_cls["builder"], "activation")(**act_cls.get("args", {}))
    return act_cls


def describe_activation(act_cls: nn.Module | None) -> dict | None:
    """An activation module as ``{"builder": class path, "args": {...}}`` for an export.

    >>> describe_activation(nn.ReLU(inplace=True))["builder"]
    'torch.nn.modules.activation.ReLU'
    """
    return describe_loss(act_cls) if act_cls is not None else None


class TabularModel(nn.Module):
    """A model for tabular data: ``forward(x_cat, x_cont)``.

    The categorical codes go through one :class:`Embedding` each (``emb_szs`` = ``[(n, width)]``),
    then dropout ``embed_p``; the continuous values through ``BatchNorm1d`` when ``bn_cont``; both
    are concatenated and go through :class:`LinBnDrop` blocks of sizes ``layers`` (dropouts ``ps``,
    one per hidden layer, activation ``act_cls``), then a linear layer to ``out_sz`` (batch norm
    on it when ``bn_final``), then ``SigmoidRange(*y_range)`` when given.

    >>> TabularModel([(10, 4)], n_cont=3, out_sz=1, layers=[20, 10], y_range=(0, 5)).layers[-1]
    SigmoidRange(low=0, high=5)
    """

    def __init__(self, emb_szs: Sequence[tuple[int, int]], n_cont: int, out_sz: int, layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False,
                 bn_cont: bool = True, act_cls: nn.Module | dict | None = nn.ReLU(inplace=True),
                 lin_first: bool = True) -> None:
        super().__init__()
        layers = list(layers)
        if ps is None:
            ps = [0.0] * len(layers)
        elif isinstance(ps, (int, float)):
            ps = [float(ps)] * len(layers)
        ps = list(ps)
        if len(ps) != len(layers):
            raise ValueError(f"ps={ps} has {len(ps)} dropouts for layers={layers}; pass one per hidden layer "
                             "or a single float")
        self.embeds = nn.ModuleList([Embedding(n, width) for n, width in emb_szs])
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = nn.BatchNorm1d(n_cont) if bn_cont and n_cont else None
        self.n_emb, self.n_cont = sum(width for _, width in emb_szs), n_cont
        act = _activation(act_cls)
        sizes = [self.n_emb + n_cont] + layers + [out_sz]
        blocks: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            is_last = i == len(sizes) - 2
            blocks.append(LinBnDrop(n_in, n_out, bn=use_bn and (not is_last or bn_final),
                                    p=0.0 if is_last else ps[i], act=None if is_last or act is None else copy.deepcopy(act),
                                    lin_first=lin_first))
        if y_range is not None:
            blocks.append(SigmoidRange(*y_range))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        if len(self.embeds):
            embedded = torch.cat([emb(x_cat[:, i]) for i, emb in enumerate(self.embeds)], dim=1)
            parts.append(self.emb_drop(embedded))
        if self.n_cont:
            parts.append(self.bn_cont(x_cont) if self.bn_cont is not None else x_cont)
        return self.layers(torch.cat(parts, dim=1))


register_code("model", TabularModel)  # export files may name it (fastlearn.registry)
