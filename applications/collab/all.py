"""Course-style star import: ``from fastlearn.collab.all import *`` (core, data layer, tabular and collab)."""
from fastlearn.collab import *  # noqa: F401,F403
from fastlearn.collab import __all__ as _collab_all
from fastlearn.tabular.all import *  # noqa: F401,F403
from fastlearn.tabular.all import __all__ as _tabular_all

__all__ = list(dict.fromkeys(list(_tabular_all) + list(_collab_all)))
