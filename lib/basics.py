"""Everything a course notebook needs from the core and the data layer, for a star import.

>>> from fastlearn.basics import *     # doctest: +SKIP

This module is a facade for notebooks and users; the library itself imports names explicitly
from the modules that define them.
"""
import math  # noqa: F401  (the course uses these through the star import)
import os  # noqa: F401
import re  # noqa: F401
from functools import partial  # noqa: F401

import matplotlib.pyplot as plt  # noqa: F401
import numpy as np  # noqa: F401
import pandas as pd  # noqa: F401
from numpy import array  # noqa: F401
from PIL import Image  # noqa: F401
import torch  # noqa: F401
import torch.nn.functional as F  # noqa: F401
from torch import nn  # noqa: F401

from fastlearn.data import *  # noqa: F403  (the data layer's public names)
from fastlearn.data import __all__ as _data_names
from fastlearn.callback import (Callback, CancelBackwardException, CancelBatchException,
                                CancelEpochException, CancelFitException, CancelStepException,
                                CancelTrainException, CancelValidException, TrainEvalCallback)
from fastlearn.callback.fp16 import MixedPrecision
from fastlearn.callback.mixup import CutMix, MixUp
from fastlearn.callback.profiler import Profiler
from fastlearn.callback.progress import CSVLogger, ShowGraphCallback
from fastlearn.callback.hook import (ActivationStats, Hook, HookCallback, Hooks, dummy_eval, has_params, hook_output,
                                     hook_outputs, in_channels, model_sizes, num_features_model)
from fastlearn.config import get_config
from fastlearn.course import *  # noqa: F403  (Module, store_attr, Self, noop, defaults, Optimizer...)
from fastlearn.course import __all__ as _course_names
from fastlearn.external import URLs, download_url, untar_data
from fastlearn.foundation import L, coll_repr, first, listify
from fastlearn.learner import Learner
from fastlearn.launch import notebook_launcher
from fastlearn.layers import Embedding, LinBnDrop, SigmoidRange, sigmoid_range
from fastlearn.losses import (BaseLoss, BCELossFlat, BCEWithLogitsLossFlat, CrossEntropyLossFlat, FocalLossFlat,
                              L1LossFlat, LabelSmoothingCrossEntropy, LabelSmoothingCrossEntropyFlat,
                              MSELossFlat)
from fastlearn.metrics import (AccumMetric, AvgMetric, Dice, DiceMulti, F1Score, F1ScoreMulti, FBeta, FBetaMulti,
                               JaccardCoeff, JaccardCoeffMulti, MatthewsCorrCoef, Metric, Perplexity, Precision,
                               PrecisionMulti, R2Score, Recall, RecallMulti, RocAuc, RocAucBinary, RocAucMulti,
                               TorchMetric, accuracy, accuracy_multi, error_rate, exp_rmspe, foreground_acc, mae, mse,
                               msle, rmse, top_k_accuracy)
from fastlearn.optimizer import SGD, Adam, AdamW, RAdam, RMSProp
from fastlearn.paths import Path
from fastlearn.progress import ProgressCallback
from fastlearn.recorder import Recorder
from fastlearn.sanity import SanityCheckCallback
from fastlearn.schedule import (LRFinder, ParamScheduler, SchedCos, SchedExp, SchedLin, SchedNo, combine_scheds,
                                minimum, slide, steep, valley)
from fastlearn.torch_core import default_device, set_seed, tensor, to_cpu, to_device, trainable_params
from fastlearn.tracker import (EarlyStoppingCallback, ReduceLROnPlateau, SaveModelCallback, TerminateOnNaN,
                               TerminateOnNaNCallback, TrackerCallback, latest_checkpoint)
from fastlearn.training import BnFreeze, CleanEpochs, GradientAccumulation, GradientClip

_core_names = [
    "math", "os", "re", "partial", "plt", "np", "pd", "array", "Image", "torch", "F", "nn", "tensor", "Callback", "CancelBackwardException",
    "CancelBatchException", "CancelEpochException", "CancelFitException", "CancelStepException",
    "CancelTrainException", "CancelValidException", "TrainEvalCallback", "get_config", "URLs", "download_url",
    "untar_data", "L", "coll_repr", "first", "listify", "Learner", "BaseLoss", "BCELossFlat", "BCEWithLogitsLossFlat",
    "CrossEntropyLossFlat", "FocalLossFlat", "L1LossFlat", "LabelSmoothingCrossEntropy",
    "LabelSmoothingCrossEntropyFlat", "MSELossFlat", "AccumMetric", "AvgMetric", "Dice", "F1Score", "FBeta",
    "JaccardCoeff", "MatthewsCorrCoef", "Metric", "Perplexity", "Precision", "R2Score", "Recall", "accuracy",
    "accuracy_multi", "error_rate", "exp_rmspe", "foreground_acc", "mae", "mse", "msle", "rmse",
    "top_k_accuracy", "SGD", "Adam", "AdamW", "RAdam", "RMSProp", "Path", "ProgressCallback", "Recorder",
    "LRFinder", "ParamScheduler", "SchedCos", "SchedExp", "SchedLin", "SchedNo", "combine_scheds",
    "minimum", "slide", "steep", "valley", "default_device", "set_seed", "to_cpu", "to_device", "trainable_params",
    "SanityCheckCallback", "EarlyStoppingCallback", "SaveModelCallback", "TerminateOnNaN", "TerminateOnNaNCallback",
    "latest_checkpoint", "TrackerCallback", "BnFreeze", "GradientAccumulation", "GradientClip", "MixedPrecision",
    "ActivationStats", "Hook", "HookCallback", "Hooks", "dummy_eval", "has_params", "hook_output", "hook_outputs",
    "in_channels", "model_sizes", "num_features_model", "notebook_launcher", "Embedding", "LinBnDrop",
    "SigmoidRange", "sigmoid_range", "DiceMulti", "F1ScoreMulti", "FBetaMulti", "JaccardCoeffMulti",
    "PrecisionMulti", "RecallMulti", "RocAuc", "RocAucBinary", "RocAucMulti", "TorchMetric", "CutMix", "MixUp",
    "Profiler", "CSVLogger", "ShowGraphCallback", "ReduceLROnPlateau",
]

__all__ = list(dict.fromkeys(_core_names + list(_course_names) + list(_data_names)))
