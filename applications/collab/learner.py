"""``collab_learner``: a dot-product (or neural) collaborative-filtering model in a Learner.

>>> learn = collab_learner(dls, n_factors=50, y_range=(0, 5.5))   # doctest: +SKIP
>>> learn.fit_one_cycle(5, 5e-3, wd=0.1)                          # doctest: +SKIP
>>> learn.model.i_bias.weight.shape                               # doctest: +SKIP
torch.Size([1665, 1])
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from fastlearn.collab.models import EmbeddingDotBias, EmbeddingNN
from fastlearn.learner import Learner, learner_kwargs
from fastlearn.losses import MSELossFlat
from fastlearn.tabular.learner import check_y_range, model_options, tabular_model_spec
from fastlearn.tabular.model import get_emb_sz


def _plain(value):
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def collab_learner(dls, n_factors: int = 50, use_nn: bool = False, emb_szs: dict[str, int] | None = None,
                   layers: Sequence[int] | None = None, config: dict | None = None,
                   y_range: tuple[float, float] | None = None, loss_func: Callable | None = None,
                   **learner_args) -> Learner:
    """A Learner for ratings: :class:`EmbeddingDotBias` with ``n_factors`` (default), or with
    ``use_nn`` an :class:`EmbeddingNN` (embedding widths from ``get_emb_sz``/``emb_szs``, hidden
    ``layers``, other options in ``config``). ``y_range`` squashes predictions into a range; the
    loss is ``MSELossFlat`` unless given. Every other argument (``metrics``, ``cbs``, ``lr``, ``wd``,
    ``precision``, ... : any of ``Learner``'s) goes to ``Learner`` unchanged.

    >>> learn = collab_learner(dls, use_nn=True, y_range=(0, 5.5), layers=[100, 50])   # doctest: +SKIP
    """
    loss_func = loss_func if loss_func is not None else MSELossFlat()
    y_range = check_y_range(y_range if y_range is not None else (config or {}).get("y_range"), dls)
    if use_nn:
        sizes = get_emb_sz(dls, emb_szs)
        layers = [n_factors] if layers is None else list(layers)
        options = model_options(config, y_range)
        model = EmbeddingNN(sizes, layers, **options)
        spec = tabular_model_spec(sizes, 0, 1, layers, options)
        spec["builder"] = "fastlearn.collab.models.EmbeddingNN"
        del spec["args"]["n_cont"], spec["args"]["out_sz"]
    else:
        user, item = dls.cat_names[0], dls.cat_names[1]
        classes = {user: list(dls.classes[user]), item: list(dls.classes[item])}
        model = EmbeddingDotBias.from_classes(n_factors, classes, user, item, y_range=y_range)
        spec = {"builder": "fastlearn.collab.models.EmbeddingDotBias.from_classes",
                "args": {"n_factors": n_factors, "user": user, "item": item,
                         "classes": {k: [_plain(v) for v in vs] for k, vs in classes.items()},
                         "y_range": None if y_range is None else list(y_range)}}
    learn = Learner(dls, model, loss_func=loss_func, **learner_kwargs("collab_learner", learner_args))
    learn.model_spec = spec
    return learn
