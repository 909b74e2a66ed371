"""Every callback, for a course-style star import: ``from fastlearn.callback.all import *``.

The logging callbacks of optional packages (``fastlearn.callback.tensorboard``, ``.wandb``,
``.mlflow``) are imported from their own modules, as in the course.
"""
from fastlearn.callback import *  # noqa: F401,F403
from fastlearn.callback import __all__ as _core
from fastlearn.callback.fp16 import *  # noqa: F401,F403
from fastlearn.callback.fp16 import __all__ as _fp16
from fastlearn.callback.hook import *  # noqa: F401,F403
from fastlearn.callback.hook import __all__ as _hook
from fastlearn.callback.logger import ExperimentLogger
from fastlearn.callback.mixup import CutMix, MixHandler, MixUp
from fastlearn.callback.profiler import Profiler
from fastlearn.callback.progress import CSVLogger, ShowGraphCallback
from fastlearn.progress import ProgressCallback
from fastlearn.recorder import Recorder
from fastlearn.sanity import SanityCheckCallback
from fastlearn.schedule import LRFinder, ParamScheduler
from fastlearn.tracker import (EarlyStoppingCallback, ReduceLROnPlateau, SaveModelCallback, TerminateOnNaN,
                               TerminateOnNaNCallback, TrackerCallback)
from fastlearn.training import BnFreeze, ChannelsLast, GradientAccumulation, GradientClip

_others = ["ExperimentLogger", "CutMix", "MixHandler", "MixUp", "CSVLogger", "ShowGraphCallback", "ReduceLROnPlateau",
           "Profiler", "ProgressCallback", "Recorder", "SanityCheckCallback", "LRFinder", "ParamScheduler",
           "EarlyStoppingCallback", "SaveModelCallback", "TerminateOnNaN", "TerminateOnNaNCallback",
           "TrackerCallback", "BnFreeze", "ChannelsLast", "GradientAccumulation", "GradientClip"]

__all__ = list(dict.fromkeys([*_core, *_fp16, *_hook, *_others]))
