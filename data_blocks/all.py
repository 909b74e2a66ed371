"""Course-style star import of the data layer: ``from fastlearn.data.all import *``.

Also brings the names course code uses without importing them: ``torch``, ``nn``, ``np``, ``pd``.
"""
import numpy as np
import pandas as pd
import torch
from torch import nn

from fastlearn.data import *  # noqa: F401,F403
from fastlearn.data import __all__ as _data_all
from fastlearn.foundation import L, first, listify
from fastlearn.paths import Path

__all__ = list(_data_all) + ["L", "Path", "first", "listify", "np", "nn", "pd", "torch"]
