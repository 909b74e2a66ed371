"""Every application learner takes every Learner argument and passes it through unchanged."""
import inspect

import numpy as np
import pandas as pd
import pytest
import torch

from fastlearn.callback import Callback
from fastlearn.collab.data import CollabDataLoaders
from fastlearn.collab.learner import collab_learner
from fastlearn.data.getters import get_image_files
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat, MSELossFlat
from fastlearn.metrics import accuracy
from fastlearn.optimizer import SGD
from fastlearn.tabular.learner import tabular_learner
from fastlearn.tabular.procs import Categorify, NormalizeTab
from fastlearn.tabular.tabular_pandas import TabularDataLoaders
from fastlearn.text.data import TextDataLoaders
from fastlearn.text.learner import language_model_learner, text_classifier_learner
from fastlearn.torch_core import trainable_params
from fastlearn.vision.data import ImageDataLoaders, SegmentationDataLoaders
from fastlearn.vision.learner import vision_learner
from fastlearn.vision.transforms import Resize
from fastlearn.vision.unet import unet_learner

LEARNER_ARGS = [name for name in inspect.signature(Learner).parameters if name not in ("dls", "model")]


class Marker(Callback):
    """A callback to find again among the learner's."""


def every_learner_argument(tmp_path, loss_func):
    return {"loss_func": loss_func, "opt_func": SGD, "lr": 0.0123, "splitter": trainable_params,
            "cbs": [Marker()], "metrics": [accuracy], "path": tmp_path, "model_dir": "weights", "wd": 0.042,
            "wd_bn_bias": True, "train_bn": False, "moms": (0.9, 0.8, 0.9), "device": "cpu",
            "precision": "bf16", "sanity_val_steps": 1, "fast_dev_run": 3, "overfit_batches": 2}


def vision_case(fashion_mnist_path, tmp_path):
    dls = ImageDataLoaders.from_folder(fashion_mnist_path, item_tfms=Resize(32), bs=16, num_workers=0)
    return vision_learner, dls, {"arch": "efficientnet_lite0", "pretrained": False}, CrossEntropyLossFlat()


def unet_case(fashion_mnist_path, tmp_path):
    from fastlearn.datasets import fashion_segmentation
    path = fashion_segmentation(n_images=12, size=64, data=tmp_path / "data")
    codes = (path / "codes.txt").read_text().split()
    dls = SegmentationDataLoaders.from_label_func(
        path, get_image_files(path / "images"), lambda f: path / "labels" / f"{f.stem}_P{f.suffix}",
        codes=codes, bs=4, num_workers=0)
    return unet_learner, dls, {"arch": "resnet18", "pretrained": False}, CrossEntropyLossFlat(axis=1)


def tabular_case(fashion_mnist_path, tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"colour": rng.choice(["red", "blue"], 64), "size": rng.normal(size=64),
                       "label": rng.choice(["yes", "no"], 64)})
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, NormalizeTab], cat_names=["colour"], cont_names=["size"],
                                     y_names="label", bs=16, seed=0, device="cpu")
    return tabular_learner, dls, {}, CrossEntropyLossFlat()


def collab_case(fashion_mnist_path, tmp_path):
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({"user": rng.integers(0, 10, 200), "item": rng.integers(0, 20, 200),
                            "rating": rng.integers(1, 6, 200).astype(float)})
    dls = CollabDataLoaders.from_df(ratings, bs=32, seed=0, device="cpu")
    return collab_learner, dls, {"n_factors": 4}, MSELossFlat()


TEXTS = ["the food was great and the service was great", "the food was cold and the waiter was rude",
         "great place great food", "never again, the soup was cold"] * 8


def text_classifier_case(fashion_mnist_path, tmp_path):
    df = pd.DataFrame({"text": TEXTS, "label": ["great", "other", "great", "other"] * 8})
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", seed=0, bs=8, min_freq=1)
    return text_classifier_learner, dls, {"pretrained": False}, CrossEntropyLossFlat()


def language_model_case(fashion_mnist_path, tmp_path):
    df = pd.DataFrame({"text": TEXTS})
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, seed=0, bs=4, seq_len=8, min_freq=1)
    return language_model_learner, dls, {"pretrained": False}, CrossEntropyLossFlat()


def transformer_case(fashion_mnist_path, tmp_path):
    pytest.importorskip("transformers", reason="the transformers extra is not installed")
    df = pd.DataFrame({"text": TEXTS, "label": ["great", "other", "great", "other"] * 8})
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", seed=0, bs=8, tokenizer="all-MiniLM-L6-v2",
                                  max_len=16)
    return text_classifier_learner, dls, {"arch": "all-MiniLM-L6-v2"}, CrossEntropyLossFlat()


CASES = [vision_case, unet_case, tabular_case, collab_case, text_classifier_case, language_model_case,
         transformer_case]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__[:-5])
def test_application_learner_takes_every_learner_argument(case, fashion_mnist_path, tmp_path):
    make, dls, own, loss_func = case(fashion_mnist_path, tmp_path)
    args = every_learner_argument(tmp_path, loss_func)
    assert set(args) == set(LEARNER_ARGS), "a Learner argument was added: give it a value here"
    learn = make(dls, **own, **args)
    assert learn.loss_func is loss_func and learn.opt_func is SGD and learn.splitter is trainable_params
    assert (learn.lr, learn.wd, learn.wd_bn_bias, learn.train_bn) == (0.0123, 0.042, True, False)
    assert tuple(learn.moms) == (0.9, 0.8, 0.9)
    assert learn.path == tmp_path and str(learn.model_dir) == "weights"
    assert learn.device == torch.device("cpu")
    assert any(isinstance(cb, Marker) for cb in learn.cbs)
    assert [m.name for m in learn.metrics] == ["accuracy"]
    assert getattr(learn, "mixed_precision", None) is not None  # precision="bf16"
    assert (learn.sanity_val_steps, learn.fast_dev_run, learn.overfit_batches) == (1, 3, 2)


@pytest.mark.parametrize("make", [vision_learner, unet_learner, tabular_learner, collab_learner,
                                  text_classifier_learner, language_model_learner], ids=lambda f: f.__name__)
def test_application_learner_signature_reaches_every_learner_argument(make):
    parameters = inspect.signature(make).parameters
    passes_the_rest = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    missing = [name for name in LEARNER_ARGS if name not in parameters]
    assert passes_the_rest or not missing, f"{make.__name__} cannot take {missing}"


def test_a_misspelt_learner_argument_names_the_closest_one(fashion_mnist_path, tmp_path):
    _, dls, own, _ = vision_case(fashion_mnist_path, tmp_path)
    with pytest.raises(TypeError, match=r"vision_learner\(\) got an unexpected keyword argument 'trian_bn'. "
                                        r"Did you mean 'train_bn'\?"):
        vision_learner(dls, **own, trian_bn=False)
