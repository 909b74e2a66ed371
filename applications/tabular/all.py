"""Course-style star import: ``from fastlearn.tabular.all import *`` (core, data layer and tabular).

``Normalize`` here is the data layer's: in ``procs=[Categorify, FillMissing, Normalize]`` it is
mapped to the tabular proc ``NormalizeTab`` (see ``fastlearn.tabular.procs.as_proc``), and
``Normalize.from_stats`` still makes the image batch transform.
"""
from fastlearn.basics import *  # noqa: F401,F403  (Learner, losses, metrics, optimizers, Normalize...)
from fastlearn.basics import __all__ as _basics_all
from fastlearn.data.all import *  # noqa: F401,F403
from fastlearn.data.all import __all__ as _data_all
from fastlearn.loading import load_learner
from fastlearn.tabular import *  # noqa: F401,F403
from fastlearn.tabular import __all__ as _tabular_all

__all__ = list(dict.fromkeys(list(_basics_all) + list(_data_all) + list(_tabular_all) + ["load_learner"]))
