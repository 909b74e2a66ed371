"""``load_learner``: a Learner rebuilt from the file ``learn.export()`` wrote, ready to predict.

It sits above both :mod:`fastlearn.learner` and :mod:`fastlearn.export`: the export module reads
and checks the file and rebuilds the data, the model and the loss; this module puts them in a
Learner of the class the file records (``TextLearner`` for text, so a language model's
``predict`` continues the text as the original's did).

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

    ``cpu=False`` puts it on the default device. The learner is of the exported one's class
    (``TextLearner`` for ``language_model_learner`` and ``text_classifier_learner``), so
    ``predict``, ``predict_batch`` and ``get_preds`` give what the original's gave.
    ``learn.dls.vocab`` is the training vocab and ``learn.dls.test_dl(items)`` prepares new items
    the way validation items were.

    Loading runs only the library's own code. A file that needs yours (your ``nn.Module``, a cut
    function, a loss class) loads when you pass it: ``custom_objects=[MyNet]`` (matched by dotted
    path) or ``custom_objects={"pkg.mod.MyNet": MyNet}``; ``trust_code=True`` imports whatever the
    file names, for files you trust as much as your own code.

    >>> learn = load_learner("export.pkl")                              # doctest: +SKIP
    >>> learn = load_learner("own.pkl", custom_objects=[TinyNet])       # doctest: +SKIP
    >>> learn.predict(PILImage.create("cat.png"))                       # doctest: +SKIP
    """
    parts = rebuild_exported(fname, cpu=cpu, trust_code=trust_code, custom_objects=custom_objects)
    learner_cls = parts.learner_cls
    if not issubclass(learner_cls, Learner):
        raise ValueError(f"{fname} names {learner_cls.__qualname__} as its Learner class, which is not a Learner; "
                         "export the model again")
    try:
        learn = learner_cls(parts.dls, parts.model, loss_func=parts.loss_func, device=parts.device)
    except TypeError as error:
        raise TypeError(f"{fname} records the Learner class {learner_cls.__qualname__}, which cannot be built as "
                        f"{learner_cls.__name__}(dls, model, loss_func=..., device=...) ({error}); give it that "
                        "signature, or load with load_learner(path, custom_objects={...}) mapping its name "
                        "to a class that has it") from error
    learn.model_spec = parts.model_spec
    learn.model.eval()
    return learn
