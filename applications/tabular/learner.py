"""``tabular_learner``: a :class:`TabularModel` sized from the loaders, in a Learner that can export.

>>> learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy)   # doctest: +SKIP
>>> learn.fit_one_cycle(3)                                              # doctest: +SKIP
>>> label, index, probs = learn.predict(df.iloc[0])                     # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from torch import nn

from fastlearn.learner import Learner, learner_kwargs
from fastlearn.tabular.model import TabularModel, describe_activation, get_emb_sz

CONFIG_KEYS = ("ps", "embed_p", "use_bn", "bn_final", "bn_cont", "act_cls", "lin_first", "y_range")


def tabular_config(ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                   y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False,
                   bn_cont: bool = True, act_cls: nn.Module = nn.ReLU(inplace=True), lin_first: bool = True) -> dict:
    """The :class:`TabularModel` options as a dict, for ``tabular_learner(config=...)``.

    >>> tabular_config(ps=0.1, embed_p=0.05)["embed_p"]
    0.05
    """
    return dict(ps=ps, embed_p=embed_p, y_range=y_range, use_bn=use_bn, bn_final=bn_final, bn_cont=bn_cont,
                act_cls=act_cls, lin_first=lin_first)


def tabular_model_spec(emb_szs, n_cont: int, out_sz: int, layers: Sequence[int], config: dict) -> dict:
    """The export description of a :class:`TabularModel`: its class path and JSON arguments.

    >>> tabular_model_spec([(3, 2)], 1, 2, [4], tabular_config())["builder"]
    'fastlearn.tabular.model.TabularModel'
    """
    args = {"emb_szs": [list(e) for e in emb_szs], "n_cont": n_cont, "out_sz": out_sz, "layers": list(layers)}
    for key, value in config.items():
        if key == "act_cls":
            value = describe_activation(value)
        elif isinstance(value, tuple):
            value = list(value)
        args[key] = value
    return {"builder": "fastlearn.tabular.model.TabularModel", "args": args}


def check_y_range(y_range, dls=None) -> tuple | None:
    """``y_range`` as a tuple ``(low, high)`` after checking it: two finite numbers with ``low < high``, and
    (given the loaders of a regression) holding every training target, which the model's scaled
    sigmoid could otherwise never predict. A ValueError names what is wrong and a range that fits.

    >>> check_y_range([0, 5.5])
    (0, 5.5)
    """
    if y_range is None:
        return None
    try:
        low, high = (float(v) for v in y_range)
    except (TypeError, ValueError):
        raise ValueError(f"y_range={y_range!r}; expected (low, high): two numbers, e.g. y_range=(0, 5.5) "
                         "for ratings from 1 to 5, or y_range=None") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"y_range={y_range!r}; expected (low, high) with finite low < high (predictions are "
                         "squashed between them), e.g. y_range=(0, 5.5); or y_range=None")
    table = getattr(dls, "tabular", None)
    if table is not None and getattr(table, "y_kind", None) == "category":
        raise ValueError(f"y_range={y_range!r} with a class target ({table.y_names}): y_range squashes a regression's "
                         "predictions, and would squash the class scores instead; pass y_range=None, or "
                         "y_block=RegressionBlock() if the target is a number to predict")
    if table is None or getattr(table, "y_kind", None) != "regression" or not table.y_names:
        return tuple(y_range)
    targets = table.train.y
    values = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    outside = ((values < low) | (values > high)).any(axis=1)
    if outside.any():
        found_low, found_high = float(values.min()), float(values.max())
        margin = 0.1 * (found_high - found_low or 1.0)
        fits = (low if found_low >= low else found_low - margin, high if found_high <= high else found_high + margin)
        first = targets.index[outside][0]
        first = first.item() if hasattr(first, "item") else first  # a numpy int prints as np.int64(...)
        raise ValueError(
            f"y_range={y_range!r} but {int(outside.sum())} training target(s) of {table.y_names} lie outside it "
            f"(they go from {found_low:g} to {found_high:g}; row {first!r} holds {values[outside][0].tolist()}): the "
            f"model's predictions stay inside y_range and could never reach them. Pass a range that holds them, "
            f"e.g. y_range=({fits[0]:g}, {fits[1]:g}), or y_range=None")
    return tuple(y_range)


def model_options(config: dict | None, y_range: tuple[float, float] | None) -> dict:
    """:func:`tabular_config` defaults updated with ``config`` (unknown keys are an error) and ``y_range``.

    >>> model_options({"ps": 0.1}, (0, 5))["y_range"]
    (0, 5)
    """
    config = dict(tabular_config(), **(config or {}))
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"config has unknown key(s) {unknown}; known: {list(CONFIG_KEYS)} (see tabular_config)")
    if y_range is not None:
        config["y_range"] = tuple(y_range)
    return config


def tabular_learner(dls, layers: Sequence[int] | None = None, emb_szs: dict[str, int] | None = None,
                    config: dict | None = None, n_out: int | None = None, y_range: tuple[float, float] | None = None,
                    **learner_args) -> Learner:
    """A Learner training a :class:`TabularModel` on tabular loaders.

    ``layers`` are the hidden sizes (default ``[200, 100]``); ``emb_szs`` overrides embedding widths
    by column name; ``config`` holds other model options (:func:`tabular_config`); ``n_out``
    defaults to ``dls.c``; ``y_range=(low, high)`` ends a regression model with a scaled sigmoid;
    the loss defaults to the target's (cross-entropy for a category, MSE for a regression).
    Every other argument (``loss_func``, ``metrics``, ``cbs``, ``lr``, ``wd``, ``train_bn``,
    ``precision``, ... : any of ``Learner``'s) goes to ``Learner`` unchanged.

    >>> learn = tabular_learner(dls, metrics=accuracy)   # doctest: +SKIP
    """
    layers = [200, 100] if layers is None else list(layers)
    if n_out is None:
        n_out = dls.c
        if not n_out:
            raise ValueError("tabular_learner could not infer n_out from dls.c (no target?); pass n_out=")
    config = model_options(config, check_y_range(y_range if y_range is not None else (config or {}).get("y_range"), dls))
    sizes = get_emb_sz(dls, emb_szs)
    n_cont = len(dls.cont_names) if dls.tabular.with_cont else 0
    model = TabularModel(sizes, n_cont, n_out, layers, **config)
    learn = Learner(dls, model, **learner_kwargs("tabular_learner", learner_args))
    learn.model_spec = tabular_model_spec(sizes, n_cont, n_out, layers, config)
    return learn
