"""The first-batch check (``SanityCheckCallback``, on by default): a model whose output cannot fit
the targets is an error that says what to change, before any weight moves, instead of torch's
"Target 2 is out of bounds" or a model that trains and then fails in ``predict``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from fastlearn.data.databunch import DataBunch
from fastlearn.data.getters import ColReader, get_image_files, parent_label
from fastlearn.data.splitters import RandomSplitter
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.sanity import SanityCheckCallback
from fastlearn.tabular.tabular_pandas import TabularDataLoaders
from fastlearn.tabular.learner import tabular_learner
from fastlearn.vision.data import ImageBlock, ImageDataLoaders
from fastlearn.vision.learner import vision_learner
from fastlearn.vision.transforms import Resize


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    rng = np.random.default_rng(0)
    for label in "abc":
        (root / label).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    return ImageDataLoaders.from_folder(root, valid_pct=0.25, seed=0, item_tfms=Resize(16), bs=3, num_workers=0)


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


def unchanged(before, model) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def quiet(learn):
    return learn.no_bar()


def test_too_few_outputs_name_n_out_before_any_step(three_classes):
    learn = vision_learner(three_classes, "resnet18", pretrained=False, n_out=2)
    before = weights(learn.model)
    with quiet(learn), pytest.raises(ValueError, match=r"2 class score\(s\) per item.*targets include class 2.*"
                                                      r"3 classes.*n_out=3"):
        learn.fit(1)
    assert unchanged(before, learn.model)


def test_too_many_outputs_are_refused_at_fit_and_at_predict(three_classes):
    learn = vision_learner(three_classes, "resnet18", pretrained=False, n_out=5)
    with quiet(learn), pytest.raises(ValueError, match=r"5 class scores per item but the data has 3 classes "
                                                      r"\['a', 'b', 'c'\].*extra outputs have no label.*n_out=3"):
        learn.fit(1)
    image = get_image_files(three_classes.path)[0]
    with pytest.raises(ValueError, match="5 class scores per item but the data has 3 classes"):
        learn.predict(image)  # was "list index out of range"


def test_the_right_number_of_outputs_trains_and_predicts(three_classes):
    learn = vision_learner(three_classes, "resnet18", pretrained=False)  # n_out from the data
    with quiet(learn):
        learn.fit(1)
    image = get_image_files(three_classes.path)[0]
    label, index, probs = learn.predict(image)
    assert label in ("a", "b", "c") and probs.shape == (3,)
    assert learn.predict(image)[0] == label  # the check passed once for this model and data
    learn.model = vision_learner(three_classes, "resnet18", pretrained=False, n_out=5).model
    with pytest.raises(ValueError, match="5 class scores per item but the data has 3 classes"):
        learn.predict(image)  # another model: checked again


def test_a_plain_model_with_too_few_outputs_for_the_labels():
    x = torch.randn(12, 4)
    y = torch.tensor([0, 1, 2] * 4)
    # loaders of plain tensors know no number of classes (dls.c is None): the first batch, which
    # holds class 2, is what shows the model is short of outputs
    dls = DataBunch.from_dsets(list(zip(x, y)), list(zip(x[:3], y[:3])), bs=4, shuffle=False, device="cpu")
    assert dls.c is None
    learn = Learner(dls, nn.Linear(4, 2), loss_func=CrossEntropyLossFlat())
    with quiet(learn), pytest.raises(ValueError, match=r"targets include class 2.*3 outputs"):
        learn.fit(1)
    learn.remove_cb(SanityCheckCallback)  # turned off, torch's own error comes back
    with quiet(learn), pytest.raises(IndexError, match="out of bounds"):
        learn.fit(1)


def test_regression_and_multi_label_outputs_must_match_the_targets(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"{i}.png" for i in range(8)]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / name)
    df = pd.DataFrame({"name": names, "a": rng.random(8), "b": rng.random(8), "tags": ["x y", "x", "y", "x"] * 2})
    two_values = DataBlock(blocks=(ImageBlock, RegressionBlock(n_out=2)), get_x=ColReader("name", pref=tmp_path),
                           get_y=ColReader(["a", "b"]), splitter=RandomSplitter(0.25, seed=0), item_tfms=Resize(16))
    learn = vision_learner(two_values.dataloaders(df, bs=3, num_workers=0), "resnet18", pretrained=False, n_out=1)
    with quiet(learn), pytest.raises(ValueError, match=r"1 value\(s\) per item.*regression target has 2.*n_out=2"):
        learn.fit(1)
    tags = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_x=ColReader("name", pref=tmp_path),
                     get_y=ColReader("tags", label_delim=" "), splitter=RandomSplitter(0.25, seed=0),
                     item_tfms=Resize(16))
    learn = vision_learner(tags.dataloaders(df, bs=3, num_workers=0), "resnet18", pretrained=False, n_out=3)
    with quiet(learn), pytest.raises(ValueError, match=r"3 value\(s\) per item.*multicategory target has 2"):
        learn.fit(1)


def test_a_tabular_classifier_with_the_wrong_n_out():
    df = pd.DataFrame({"x": np.arange(12.0), "y": list("abc") * 4})
    dls = TabularDataLoaders.from_df(df, cont_names=["x"], y_names="y", bs=4, seed=0)
    learn = tabular_learner(dls, layers=[8], n_out=2)
    with quiet(learn), pytest.raises(ValueError, match=r"class score\(s\) per item.*n_out=3"):
        learn.fit(1)
