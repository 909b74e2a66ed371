"""``learn.predict`` gives the same whether the item goes straight to the model (only the default
callbacks act during validation) or through the full validation pass (a callback of the user's
listens to it): images (classification, multi-label, key points), tables, texts, ratings."""
import numpy as np
import pandas as pd
import PIL.Image
import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.collab.data import CollabDataLoaders
from fastlearn.collab.learner import collab_learner
from fastlearn.data import dataloader as dataloader_module
from fastlearn.data.batch_transforms import Normalize
from fastlearn.data.blocks import MultiCategoryBlock
from fastlearn.data.datablock import DataBlock
from fastlearn.data.getters import get_image_files, parent_label
from fastlearn.data.splitters import FuncSplitter
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.tabular.learner import tabular_learner
from fastlearn.tabular.procs import Categorify, NormalizeTab
from fastlearn.tabular.tabular_pandas import TabularDataLoaders
from fastlearn.text.data import TextDataLoaders
from fastlearn.text.learner import text_classifier_learner
from fastlearn.vision.data import ImageBlock, ImageDataLoaders, PointBlock
from fastlearn.vision.transforms import Resize

STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


class Listener(Callback):
    """A callback of the user's that acts during validation: predict runs the full pass for it."""

    def __init__(self):
        self.events = []

    def before_validate(self):
        self.events.append("before_validate")

    def after_batch(self):
        self.events.append("after_batch")


def predict_both_ways(learn, item) -> tuple[tuple, tuple, list]:
    """``learn.predict(item, with_input=True)`` as it goes by default, then through the full pass;
    and the validation events a callback of the user's saw in the second."""
    default = learn.predict(item, with_input=True)
    listener = Listener()
    learn.add_cb(listener)
    try:
        full = learn.predict(item, with_input=True)
    finally:
        learn.remove_cb(listener)
    return default, full, listener.events


def count_test_dls(learn, monkeypatch) -> list:
    """The loaders ``learn.dls.test_dl`` builds from now on."""
    built, test_dl = [], type(learn.dls).test_dl
    monkeypatch.setattr(type(learn.dls), "test_dl", lambda self, *args, **kwargs: built.append(1) or
                        test_dl(self, *args, **kwargs))
    return built


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def images(folder, n: int = 8):
    """Small RGB PNGs ``<class>/<x>_<y>_<n>.png`` with a bright square centred at (x, y)."""
    rng = np.random.default_rng(0)
    for k in range(n):
        x, y = int(rng.integers(4, 36)), int(rng.integers(4, 20))
        array = rng.integers(0, 60, (24, 40, 3), dtype=np.uint8)
        array[y - 2:y + 2, x - 2:x + 2] = 255
        label = ("dark", "light")[k % 2]
        (folder / label).mkdir(exist_ok=True)
        PIL.Image.fromarray(array).save(folder / label / f"{x}_{y}_{k}.png")
    return sorted(get_image_files(folder))


def small_cnn(n_out: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, n_out))


def is_valid(path) -> bool:
    return path.stem.endswith(("_6", "_7"))


def classification(folder):
    files = images(folder)
    dls = ImageDataLoaders.from_folder(folder, valid_pct=0.25, seed=0, item_tfms=Resize(16), bs=4,
                                       batch_tfms=[Normalize.from_stats(*STATS)], num_workers=0, device="cpu")
    return Learner(dls, small_cnn(dls.c)), files


def multi_label(folder):
    files = images(folder)
    dblock = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_items=get_image_files,
                       get_y=lambda path: [parent_label(path), ("edge", "middle", "middle")[int(path.stem[-1]) % 3]],
                       splitter=FuncSplitter(is_valid), item_tfms=Resize(16),
                       batch_tfms=[Normalize.from_stats(*STATS)])
    dls = dblock.dataloaders(folder, bs=4, num_workers=0, device="cpu")
    return Learner(dls, small_cnn(dls.c)), files


def key_points(folder):
    files = images(folder)
    dblock = DataBlock(blocks=(ImageBlock, PointBlock), get_items=get_image_files,
                       get_y=lambda path: [float(v) for v in path.stem.split("_")[:2]],
                       splitter=FuncSplitter(is_valid), item_tfms=Resize((12, 20), method="squish"))
    dls = dblock.dataloaders(folder, bs=4, num_workers=0, device="cpu")
    return Learner(dls, small_cnn(2), loss_func=MSELossFlat()), files


@pytest.mark.parametrize("case", [classification, multi_label, key_points], ids=lambda case: case.__name__)
def test_images_predict_the_same_both_ways(case, tmp_path, monkeypatch):
    learn, files = case(tmp_path)
    learn.model.train()  # predicted in eval mode either way, and put back in training mode
    built = count_test_dls(learn, monkeypatch)
    for item in files[:3]:
        direct, full, events = predict_both_ways(learn, item)
        assert events == ["before_validate", "after_batch"]  # the user's callback saw the pass
        assert_same(direct, full)
        assert learn.model.training and learn.model[0].training
    assert len(built) == 3  # a loader for each full pass, none for the direct predictions
    x, label, decoded, probs = direct
    assert x.shape[0] == 3 and probs.shape[0] == (2 if case is key_points else learn.dls.c)


def test_the_direct_path_builds_no_loader_and_draws_the_same_random_numbers(tmp_path, monkeypatch):
    learn, files = classification(tmp_path)
    torch.manual_seed(1)
    expected = learn.predict(files[0], with_input=True)
    after_full_pass = torch.rand(3)  # the pass draws from torch's generator: the direct path does too

    def refuse(*args, **kwargs):
        raise AssertionError("predict built a loader")

    monkeypatch.setattr(dataloader_module.DataLoader, "__init__", refuse)
    monkeypatch.setattr(dataloader_module.DataLoader, "__iter__", refuse)
    monkeypatch.setattr(dataloader_module.TorchDataLoader, "__init__", refuse)
    torch.manual_seed(1)
    assert_same(learn.predict(files[0], with_input=True), expected)
    assert torch.equal(torch.rand(3), after_full_pass)
    with pytest.raises(AssertionError, match="predict built a loader"):  # a listening callback: the full pass
        predict_both_ways(learn, files[0])


def test_a_bad_item_is_named_the_same_both_ways(tmp_path):
    learn, files = classification(tmp_path)
    missing = tmp_path / "dark" / "missing.png"
    errors = []
    for cbs in ([], [Listener()]):
        learn.add_cbs(cbs)
        with pytest.raises(FileNotFoundError, match="missing.png") as error:
            learn.predict(missing)
        learn.remove_cbs(cbs)
        errors.append(str(error.value))
    assert errors[0] == errors[1] and "failed on validation item 0 (" in errors[0]


def test_mixed_precision_runs_the_full_pass(tmp_path):
    learn, files = classification(tmp_path)
    learn.to_bf16()
    listener = Listener()
    learn.add_cb(listener)
    label, _, probs = learn.predict(files[0])
    assert listener.events == ["before_validate", "after_batch"] and probs.dtype == torch.float32
    learn.remove_cb(listener)
    assert_same(learn.predict(files[0]), (label, _, probs))


def tabular(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"colour": rng.choice(["red", "blue"], 64), "size": rng.normal(size=64),
                       "label": rng.choice(["yes", "no"], 64)})
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, NormalizeTab], cat_names=["colour"], cont_names=["size"],
                                     y_names="label", bs=16, seed=0, device="cpu")
    return tabular_learner(dls, layers=[8]), [df.iloc[i] for i in range(3)]


def collab(tmp_path):
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({"user": rng.integers(0, 10, 200), "item": rng.integers(0, 20, 200),
                            "rating": rng.integers(1, 6, 200).astype(float)})
    dls = CollabDataLoaders.from_df(ratings, bs=32, seed=0, device="cpu")
    return collab_learner(dls, n_factors=4, y_range=(0.5, 5.5)), [ratings.iloc[i] for i in range(3)]


TEXTS = ["the food was great and the service was great", "the food was cold and the waiter was rude",
         "great place great food", "never again, the soup was cold"] * 8


def text(tmp_path):
    df = pd.DataFrame({"text": TEXTS, "label": ["great", "other", "great", "other"] * 8})
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", seed=0, bs=8, min_freq=1, device="cpu")
    return text_classifier_learner(dls, pretrained=False), TEXTS[:3]


@pytest.mark.parametrize("case", [tabular, collab, text], ids=lambda case: case.__name__)
def test_tables_ratings_and_texts_predict_the_same_both_ways(case, tmp_path):
    # their loaders have a test_dl (tables, ratings) or a validation loader class (texts) of their
    # own, so predict builds a loader both ways; the results stay the same whichever way it goes
    learn, items = case(tmp_path)
    for item in items:
        default, full, events = predict_both_ways(learn, item)
        assert events == ["before_validate", "after_batch"]
        assert_same(default, full)
