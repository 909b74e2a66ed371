"""Every application learner takes every Learner argument and passes it through unchanged, and
predicts the same after ``export`` and ``load_learner``."""
import inspect
import os

import numpy as np
import pandas as pd
import pytest
import torch

from fastlearn.callback import Callback
from fastlearn.collab.data import CollabDataLoaders
from fastlearn.collab.learner import collab_learner
from fastlearn.data.blocks import MultiCategoryBlock
from fastlearn.data.datablock import DataBlock
from fastlearn.data.getters import ColReader, get_image_files
from fastlearn.data.splitters import ColSplitter
from fastlearn.datasets import fashion_keypoints, fashion_multilabel
from fastlearn.learner import Learner
from fastlearn.loading import load_learner
from fastlearn.losses import CrossEntropyLossFlat, MSELossFlat
from fastlearn.metrics import accuracy
from fastlearn.optimizer import SGD
from fastlearn.tabular.learner import tabular_learner
from fastlearn.tabular.procs import Categorify, NormalizeTab
from fastlearn.tabular.tabular_pandas import TabularDataLoaders
from fastlearn.text.data import TextDataLoaders
from fastlearn.text.learner import TextLearner, language_model_learner, text_classifier_learner
from fastlearn.torch_core import trainable_params
from fastlearn.vision.data import ImageBlock, ImageDataLoaders, PointBlock, SegmentationDataLoaders
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


def small_table(regression: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"colour": rng.choice(["red", "blue"], 64), "size": rng.normal(size=64),
                         "label": rng.normal(size=64) if regression else rng.choice(["yes", "no"], 64)})


def small_ratings() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"user": rng.integers(0, 10, 200), "item": rng.integers(0, 20, 200),
                         "rating": rng.integers(1, 6, 200).astype(float)})


def tabular_case(fashion_mnist_path, tmp_path, regression: bool = False):
    dls = TabularDataLoaders.from_df(small_table(regression), procs=[Categorify, NormalizeTab], cat_names=["colour"],
                                     cont_names=["size"], y_names="label", bs=16, seed=0, device="cpu")
    return tabular_learner, dls, {}, MSELossFlat() if regression else CrossEntropyLossFlat()


def collab_case(fashion_mnist_path, tmp_path):
    dls = CollabDataLoaders.from_df(small_ratings(), bs=32, seed=0, device="cpu")
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


def multi_label_case(fashion_mnist_path, tmp_path):
    path = fashion_multilabel(n_train=16, n_valid=8, size=64, data=tmp_path / "data")
    df = pd.read_csv(path / "train.csv")
    dblock = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_x=ColReader("fname", pref=f"{path / 'train'}{os.sep}"),
                       get_y=ColReader("labels", label_delim=" "), splitter=ColSplitter("is_valid"), item_tfms=Resize(32))
    return vision_learner, dblock.dataloaders(df, bs=8, num_workers=0), {"arch": "resnet18", "pretrained": False}, None


def key_points_case(fashion_mnist_path, tmp_path):
    path = fashion_keypoints(n_train=16, n_valid=8, size=64, data=tmp_path / "data")
    points = pd.read_csv(path / "points.csv")
    points["fname"] = [str(path / "images" / name) for name in points["fname"]]
    dblock = DataBlock(blocks=(ImageBlock, PointBlock), get_x=ColReader("fname"), get_y=ColReader(["x", "y"]),
                       splitter=ColSplitter("is_valid"), item_tfms=Resize(32))
    return vision_learner, dblock.dataloaders(points, bs=8, num_workers=0), {"arch": "resnet18", "pretrained": False}, None


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


# --- export and load_learner ------------------------------------------------------------------

def valid_inputs(dls, n: int = 3) -> list:
    """The first ``n`` validation inputs as a user passes them to ``predict`` (what ``get_x`` returns)."""
    dataset = dls.valid_ds
    items = dataset.items
    rows = [items.iloc[i] for i in range(n)] if isinstance(items, pd.DataFrame) else list(items[:n])
    getter = dataset.getters[0]
    return [getter(row) for row in rows] if getter is not None else rows


EXPORT_CASES = {
    "vision": (vision_case, valid_inputs),
    "multi_label": (multi_label_case, valid_inputs),
    "key_points": (key_points_case, valid_inputs),
    "segmentation": (unet_case, valid_inputs),
    "tabular_classification": (tabular_case, lambda dls: [row for _, row in small_table().iloc[:3].iterrows()]),
    "tabular_regression": (lambda path, tmp: tabular_case(path, tmp, regression=True),
                           lambda dls: [row for _, row in small_table(regression=True).iloc[:3].iterrows()]),
    "collab": (collab_case, lambda dls: [row for _, row in small_ratings().iloc[:3].iterrows()]),
    "text_classifier": (text_classifier_case, lambda dls: TEXTS[:3]),
    "language_model": (language_model_case, lambda dls: [" ".join(TEXTS[:4]), " ".join(TEXTS[4:8]), TEXTS[1]]),
    "transformer": (transformer_case, lambda dls: TEXTS[:3]),
}


def assert_equal_outputs(got, expected, where: str) -> None:
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{where}: {type(got).__name__} instead of a tensor"
        assert (got.shape, got.dtype) == (expected.shape, expected.dtype), where
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6, msg=where)
    elif isinstance(expected, (tuple, list)):
        assert type(got) is type(expected) and len(got) == len(expected), f"{where}: {got!r} != {expected!r}"
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_equal_outputs(a, b, f"{where}[{i}]")
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


@pytest.mark.parametrize("name", list(EXPORT_CASES))
def test_exported_learner_predicts_as_the_original(name, fashion_mnist_path, tmp_path):
    case, inputs_of = EXPORT_CASES[name]
    make, dls, own, _ = case(fashion_mnist_path, tmp_path)
    learn = make(dls, **own, path=tmp_path)
    if name in ("tabular_regression", "collab", "language_model"):  # a few steps, so the weights are not the initial ones
        learn.fit(1, 1e-2)
    items = inputs_of(dls)
    loaded = load_learner(learn.export(f"{name}.pkl"))
    assert type(loaded) is type(learn)
    assert getattr(loaded.dls, "is_lm", False) == getattr(learn.dls, "is_lm", False)
    if name == "language_model":
        outputs = []
        for model in (learn, loaded):
            torch.manual_seed(7)
            text = model.predict("the food was", 6, temperature=0.8)
            torch.manual_seed(8)
            texts = model.predict_batch(["great place", "never"], n_words=4, temperature=0.5)
            outputs.append((text, texts))
        (text, texts), (loaded_text, loaded_texts) = outputs
        assert isinstance(text, str) and text.startswith("the food was") and len(text.split()) > 3
        assert [t.startswith(start) for t, start in zip(texts, ("great place", "never"))] == [True, True]
        assert (loaded_text, loaded_texts) == (text, texts)
    else:
        assert_equal_outputs(loaded.predict(items[0]), learn.predict(items[0]), "predict")
        assert_equal_outputs(loaded.predict_batch(items), learn.predict_batch(items), "predict_batch")
    expected = learn.get_preds(dl=learn.dls.test_dl(items), with_decoded=True)
    got = loaded.get_preds(dl=loaded.dls.test_dl(items), with_decoded=True)
    assert expected[0].shape[0] > 0
    assert_equal_outputs(got, expected, "get_preds")
