"""fastlearn.course: names the fast.ai book's code uses that the library itself does not need.

The book's from-scratch chapters write models, optimizers and a whole ``Learner`` with a few
shortcuts: ``Module`` (no ``super().__init__()``), ``sequential``, ``store_attr``, ``GetAttr``,
``Self``, ``noop``, ``defaults``, the chapter 16 ``Optimizer`` built from steppers... They are
here, each documented with the chapter that uses it, and reach course code through the star
imports (``from fastlearn.vision.all import *``). ``docs/course.md`` lists, chapter by chapter,
what runs and where fastlearn differs from fastai.

>>> from fastlearn.course import Module, store_attr, Self
"""
# standard-library names the book's code uses through the star import, without importing them
import functools  # noqa: F401
import glob  # noqa: F401
import inspect  # noqa: F401
import io  # noqa: F401
import itertools  # noqa: F401
import json  # noqa: F401
import operator  # noqa: F401
import pickle  # noqa: F401
import random  # noqa: F401
import shutil  # noqa: F401  (chapter 2 moves relabelled images with shutil.move)
import string  # noqa: F401  (chapter 4 batches string.ascii_lowercase)
import sys  # noqa: F401
import time  # noqa: F401
import warnings  # noqa: F401
from collections import Counter, OrderedDict, defaultdict, namedtuple  # noqa: F401
from concurrent.futures import ThreadPoolExecutor  # noqa: F401
from copy import deepcopy  # noqa: F401
from types import SimpleNamespace  # noqa: F401  (chapters 1-2 fake an upload with it)

import matplotlib  # noqa: F401

from fastprogress.fastprogress import master_bar, progress_bar  # noqa: F401

from fastlearn.course.attributes import GetAttr, Self, delegates, store_attr
from fastlearn.course.modules import Lambda, Module, Tensor, one_hot, params, sequential, to_np
from fastlearn.course.optimizer import (Optimizer, OptimWrapper, adam_step, average_grad, average_sqr_grad, debias,
                                        l2_reg, momentum_step, rms_prop_step, sgd_step, step_stat, weight_decay)
from fastlearn.course.pickles import load_pickle, save_pickle
from fastlearn.course.shortcuts import (Defaults, Inf, ProcessPoolExecutor, defaults, noop, num_cpus, parallel, range_of,
                                        subplots)

_standard_library = [
    "Counter", "OrderedDict", "SimpleNamespace", "ThreadPoolExecutor", "deepcopy", "defaultdict", "functools",
    "glob", "inspect", "io", "itertools", "json", "matplotlib", "namedtuple", "operator", "pickle", "random",
    "shutil", "string", "sys", "time", "warnings",
]
__all__ = _standard_library + [
    "Defaults", "GetAttr", "Inf", "Lambda", "Module", "OptimWrapper", "Optimizer", "ProcessPoolExecutor", "Self",
    "Tensor", "adam_step", "average_grad", "average_sqr_grad", "debias",
    "defaults", "delegates", "l2_reg", "load_pickle", "master_bar", "momentum_step", "noop",
    "num_cpus", "one_hot", "parallel", "params", "progress_bar", "range_of", "rms_prop_step",
    "save_pickle", "sequential", "sgd_step", "step_stat", "store_attr", "subplots", "to_np",
    "weight_decay",
]
