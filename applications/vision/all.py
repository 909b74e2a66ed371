"""Course-style star import: ``from fastlearn.vision.all import *`` (data layer and vision)."""
from fastlearn.basics import *  # noqa: F401,F403  (Learner, losses, metrics, optimizers, untar_data...)
from fastlearn.basics import __all__ as _basics_all
from fastlearn.data.all import *  # noqa: F401,F403
from fastlearn.data.all import __all__ as _data_all
from fastlearn.vision import *  # noqa: F401,F403
from fastlearn.vision import __all__ as _vision_all

__all__ = list(dict.fromkeys(list(_basics_all) + list(_data_all) + list(_vision_all)))
