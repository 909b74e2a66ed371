"""``load_learner``: a Learner rebuilt from the file ``learn.export()`` wrote, ready to predict.

It sits above both :mod:`fastlearn.learner` and :mod:`fastlearn.export`: the export module reads
and checks the file and rebuilds the data, the model and the loss; this module puts them in a
``Learner``.

>>> learn = load_learner("export.pkl")                              # doctest: +SKIP
>>> label, index, probs = learn.predict("shoe.png")                 # doctest: +SKIP
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from fastlearn.export import rebuild_exported
from fastlearn.learner import Learner


def load_learner(fname: str | os.PathLike, cpu: bool = True, trust_code: bool = False,
                 custom_objects: Mapping[str, Any] | list | type | None = None) -> Learner:
    """Rebuild the Learner that ``learn.export()`` wrote, ready for ``predict`` and ``get_preds``.

    ``cpu=False`` puts it on the default device. ``learn.dls.vocab`` is the training vocab and
    ``learn.dls.test_dl(items)`` prepares new items the way validation items were.

    Loading runs only the library's own code. A file that needs yours (your ``nn.Module``, a cut
    function, a loss class) loads when you pass it: ``custom_objects=[MyNet]`` (matched by dotted
    path) or ``custom_objects={"pkg.mod.MyNet": MyNet}``; ``trust_code=True`` imports whatever the
    file names, for files you trust as much as your own code.

    >>> learn = load_learner("export.pkl")                              # doctest: +SKIP
    >>> learn = load_learner("own.pkl", custom_objects=[TinyNet])       # doctest: +SKIP
    >>> learn.predict(PILImage.create("cat.png"))                       # doctest: +SKIP
    """
    parts = rebuild_exported(fname, cpu=cpu, trust_code=trust_code, custom_objects=custom_objects)
    learn = Learner(parts.dls, parts.model, loss_func=parts.loss_func, device=parts.device)
    learn.model_spec = parts.model_spec
    learn.model.eval()
    return learn
