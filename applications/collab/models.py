"""Collaborative-filtering models: ``EmbeddingDotBias`` (dot product plus biases) and
``EmbeddingNN`` (embeddings through a small neural net).

>>> import torch
>>> model = EmbeddingDotBias(5, n_users=10, n_items=20, y_range=(0, 5.5))
>>> model(torch.tensor([[1, 2], [3, 4]])).shape
torch.Size([2])
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fastlearn.layers import Embedding, sigmoid_range
from fastlearn.registry import register_code
from fastlearn.tabular.model import TabularModel


class EmbeddingDotBias(nn.Module):
    """A rating as the dot product of a user's and an item's latent factors plus a bias for each,
    squashed into ``y_range`` when given. ``forward(x)`` takes ``(B, 2)`` codes: users, items.

    ``u_weight``, ``i_weight`` (factors) and ``u_bias``, ``i_bias`` (biases) are the
    embeddings; :meth:`weight` and :meth:`bias` look items (or users) up by code or, when the model
    was made by :meth:`from_classes`, by name.

    >>> model = EmbeddingDotBias(4, 3, 5)
    >>> model.i_bias.weight.shape
    torch.Size([5, 1])
    """

    def __init__(self, n_factors: int, n_users: int, n_items: int, y_range: tuple[float, float] | None = None):
        super().__init__()
        self.y_range = None if y_range is None else tuple(y_range)
        self.u_weight, self.i_weight = Embedding(n_users, n_factors), Embedding(n_items, n_factors)
        self.u_bias, self.i_bias = Embedding(n_users, 1), Embedding(n_items, 1)
        self.classes: dict[str, list] | None = None
        self.user_name = self.item_name = None

    @classmethod
    def from_classes(cls, n_factors: int, classes: dict[str, Sequence], user: str | None = None,
                     item: str | None = None, y_range: tuple[float, float] | None = None) -> "EmbeddingDotBias":
        """A model sized from the loaders' ``classes`` (user column first), that can look items up by name.

        >>> model = EmbeddingDotBias.from_classes(3, {"user": ["#na#", 1, 2], "movie": ["#na#", "A", "B"]})
        >>> model.weight(["B"]).shape
        torch.Size([1, 3])
        """
        user = user if user is not None else list(classes)[0]
        item = item if item is not None else list(classes)[1]
        model = cls(n_factors, len(classes[user]), len(classes[item]), y_range=y_range)
        model.classes = {user: list(classes[user]), item: list(classes[item])}
        model.user_name, model.item_name = user, item
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        users, items = x[:, 0], x[:, 1]
        dot = (self.u_weight(users) * self.i_weight(items)).sum(dim=1)
        result = dot + self.u_bias(users).squeeze(-1) + self.i_bias(items).squeeze(-1)
        return result if self.y_range is None else sigmoid_range(result, *self.y_range)

    def _codes(self, arr, is_item: bool) -> torch.Tensor:
        device = self.i_bias.weight.device
        if isinstance(arr, torch.Tensor):  # codes
            return arr.long().to(device)
        values = list(arr)
        if self.classes is None:
            if not all(isinstance(v, int) for v in values):
                raise ValueError(f"{values[:3]} are not codes and this model has no classes to look names up; pass "
                                 "codes (dls.classes[col].o2i[name]) or make it with EmbeddingDotBias.from_classes")
            return torch.as_tensor(values, dtype=torch.long, device=device)
        o2i = {name: i for i, name in enumerate(self._names(is_item))}
        missing = [v for v in values if v not in o2i]
        if missing:
            column = self.item_name if is_item else self.user_name
            raise ValueError(f"{missing[:5]} not in the classes of {column!r}; check the spelling against "
                             f"dls.classes[{column!r}], or pass a tensor of codes")
        return torch.as_tensor([o2i[v] for v in values], dtype=torch.long, device=device)

    def _names(self, is_item: bool) -> list:
        return self.classes[self.item_name if is_item else self.user_name]

    def weight(self, arr, is_item: bool = True) -> torch.Tensor:
        """The latent factors of items (or users when ``is_item=False``): names (a model from
        :meth:`from_classes`) or a tensor of codes."""
        layer = self.i_weight if is_item else self.u_weight
        return layer(self._codes(arr, is_item)).detach()

    def bias(self, arr, is_item: bool = True) -> torch.Tensor:
        """The biases of items (or users when ``is_item=False``), by name or code."""
        layer = self.i_bias if is_item else self.u_bias
        return layer(self._codes(arr, is_item)).squeeze(-1).detach()


class EmbeddingNN(TabularModel):
    """A :class:`TabularModel` on the user and item embeddings only (no continuous columns), one
    output: ``forward(x)`` with ``(B, 2)`` codes.

    >>> import torch
    >>> EmbeddingNN([(10, 4), (20, 5)], layers=[8])(torch.tensor([[1, 2], [3, 4]])).shape
    torch.Size([2, 1])
    """

    def __init__(self, emb_szs: Sequence[tuple[int, int]], layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False,
                 bn_cont: bool = True, act_cls: nn.Module | dict | None = nn.ReLU(inplace=True),
                 lin_first: bool = True) -> None:
        super().__init__(emb_szs, n_cont=0, out_sz=1, layers=layers, ps=ps, embed_p=embed_p, y_range=y_range,
                         use_bn=use_bn, bn_final=bn_final, bn_cont=bn_cont, act_cls=act_cls, lin_first=lin_first)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x_cat, None)


# what export files may name (fastlearn.registry)
register_code("model", EmbeddingDotBias.from_classes)
register_code("model", EmbeddingNN)
