"""Training that used to report a result it did not have: a batch size larger than the training
set (no batch at all), an epoch with no batch, a NaN loss that kept going."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fastlearn.callback import Callback, CancelBatchException
from fastlearn.data.databunch import DataBunch
from fastlearn.data.dataloader import DataLoader
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.metrics import accuracy
from fastlearn.optimizer import SGD
from fastlearn.tracker import SaveModelCallback, TerminateOnNaN, weights_are_finite
from fastlearn.vision.data import ImageDataLoaders
from fastlearn.vision.learner import vision_learner
from fastlearn.vision.transforms import Resize


def regression_dls(n_train=64, bs=16, nan_row=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + 16, 4, generator=g)
    y = x.sum(1, keepdim=True)
    if nan_row is not None:
        y[nan_row] = float("nan")
    items = list(zip(x, y))
    return DataBunch.from_dsets(items[:n_train], items[n_train:], bs=bs, shuffle=False, device="cpu")


def fit(learn, epochs, cbs=None, lr=None):
    with learn.no_bar(), learn.no_logging():
        learn.fit(epochs, lr=lr, cbs=cbs)


@pytest.fixture
def twelve_images(tmp_path):
    rng = np.random.default_rng(0)
    for label in "ab":
        (tmp_path / label).mkdir()
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    return tmp_path


def test_a_batch_size_larger_than_the_training_set_trains_on_the_partial_batch(twelve_images):
    dls = ImageDataLoaders.from_folder(twelve_images, valid_pct=0.25, seed=0, item_tfms=Resize(16), bs=64,
                                       num_workers=0)
    assert len(dls.train) == 0  # 9 training images and bs=64: drop_last would leave nothing
    learn = vision_learner(dls, "resnet18", pretrained=False, metrics=accuracy)
    before = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.warns(RuntimeWarning, match=r"bs=64 is larger than the 9 training items.*one batch of 9"):
        fit(learn, 1)
    assert len(dls.train) == 1
    train_loss = learn.recorder.values[0][0]
    assert math.isfinite(train_loss)  # was nan: no batch had run
    assert any(not torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))


def test_an_empty_training_set_is_an_error_before_training():
    dls = DataBunch.from_dsets([], [(torch.zeros(4), torch.zeros(1))], bs=4, device="cpu")
    learn = Learner(dls, nn.Linear(4, 1), loss_func=MSELossFlat())
    with pytest.raises(ValueError, match="training set is empty"):
        fit(learn, 1)


def test_a_classifier_on_data_of_one_class_is_an_error_before_training(twelve_images):
    import pandas as pd
    from fastlearn.tabular.learner import tabular_learner
    from fastlearn.tabular.tabular_pandas import TabularDataLoaders
    # from_folder on one class's folder: every label is 'a', the loss 0 whatever the weights
    dls = ImageDataLoaders.from_folder(twelve_images / "a", valid_pct=0.25, seed=0, item_tfms=Resize(16),
                                       bs=4, num_workers=0)
    learn = vision_learner(dls, "resnet18", pretrained=False)
    before = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(ValueError, match=r"the data has one class \['a'\].*loss .* is 0 for every item.*at least two"):
        fit(learn, 1)
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))
    table = pd.DataFrame({"size": np.linspace(-1, 1, 40), "label": "big"})
    tab = tabular_learner(TabularDataLoaders.from_df(table, cont_names=["size"], y_names="label", bs=8,
                                                     device="cpu"), layers=[4])
    with pytest.raises(ValueError, match=r"one class \['big'\].*target column with one value"):
        fit(tab, 1)


def test_an_epoch_that_ran_no_batch_is_not_reported():
    class NoBatches(DataLoader):
        def __iter__(self):
            return iter(())

    items = [(torch.randn(4), torch.randn(1)) for _ in range(8)]
    dls = DataBunch(NoBatches(items, bs=4), DataLoader(items, bs=4), device="cpu")
    learn = Learner(dls, nn.Linear(4, 1), loss_func=MSELossFlat())
    with pytest.raises(ValueError, match=r"epoch 0 ran no training batch.*nothing was trained"):
        fit(learn, 1)
    assert learn.recorder.values == []


def test_an_epoch_whose_batches_were_all_cancelled_says_so():
    class SkipAll(Callback):
        def after_pred(self):
            if self.training:
                raise CancelBatchException()

    learn = Learner(regression_dls(), nn.Linear(4, 1), loss_func=MSELossFlat(), cbs=SkipAll())
    with pytest.warns(RuntimeWarning, match="none of its 4 training batches reached the optimizer step"):
        fit(learn, 1)


def test_a_nan_loss_stops_training_by_default_naming_epoch_and_batch(tmp_path):
    torch.manual_seed(0)
    learn = Learner(regression_dls(nan_row=16 * 4 - 1), nn.Linear(4, 1), loss_func=MSELossFlat(),
                    opt_func=SGD, lr=0.05, path=tmp_path)  # batch 4 of each epoch holds a NaN target
    with pytest.warns(RuntimeWarning, match=r"epoch 0, iteration 3 \(batch 4 of 4\).*stopped before this batch "
                                            r"changed the weights"):
        fit(learn, 3)
    assert learn.terminate_on_nan.nan_at == (0, 3)
    assert weights_are_finite(learn.model) and learn.recorder.values == []


def test_a_nan_stop_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    learn = Learner(regression_dls(), nn.Linear(4, 1), loss_func=MSELossFlat(), opt_func=SGD, lr=0.05,
                    path=tmp_path)
    fit(learn, 2, cbs=SaveModelCallback(every_epoch=True))
    saved = torch.load(tmp_path / "models" / "model_1.pth", weights_only=True)
    class NanRate(Callback):  # a rate that turns NaN inside the fit, after fit's own check of lr
        def before_fit(self):
            for group in self.learn.opt.param_groups:
                group["lr"] = float("nan")
    with pytest.warns(RuntimeWarning, match="epoch 0, iteration 1"):  # the first step made them NaN
        fit(learn, 2, cbs=[SaveModelCallback(every_epoch=True), NanRate()])
    assert not weights_are_finite(learn.model)
    again = torch.load(tmp_path / "models" / "model_1.pth", weights_only=True)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["model_0.pth", "model_1.pth"]
    assert torch.equal(saved["model"]["weight"], again["model"]["weight"])  # not overwritten


def test_the_nan_stop_can_be_turned_off():
    torch.manual_seed(0)
    learn = Learner(regression_dls(nan_row=0), nn.Linear(4, 1), loss_func=MSELossFlat(), opt_func=SGD, lr=0.05)
    learn.remove_cb(TerminateOnNaN)
    fit(learn, 1)
    assert not weights_are_finite(learn.model)


def test_the_nan_stop_is_in_the_course_star_imports():
    import fastlearn.vision.all as vision_all
    namespace = {}
    exec("from fastlearn.vision.all import *", namespace)
    assert namespace["TerminateOnNaNCallback"] is namespace["TerminateOnNaN"] is TerminateOnNaN
    assert "SanityCheckCallback" in vision_all.__all__


@pytest.mark.parametrize("kwargs", [dict(lr=float("nan")), dict(lr=float("inf")), dict(lr=-1e-3),
                                    dict(lr=slice(-1e-5, 1e-3)), dict(lr=1e-3, wd=float("nan"))],
                         ids=["lr nan", "lr inf", "lr negative", "slice from a negative", "wd nan"])
def test_a_nan_or_negative_learning_rate_is_refused_before_any_step(kwargs):
    """A NaN learning rate made the first step's weights NaN: the loss of that batch was still
    finite, so the NaN stop came one batch late and what was trained before was lost."""
    torch.manual_seed(0)
    learn = Learner(regression_dls(), nn.Linear(4, 1), loss_func=MSELossFlat())
    fit(learn, 1, lr=1e-2)
    before = [p.detach().clone() for p in learn.model.parameters()]
    name = "wd" if "wd" in kwargs else "lr"
    for train in (lambda: learn.fit(1, **kwargs), lambda: learn.fit_one_cycle(1, kwargs["lr"], wd=kwargs.get("wd"))):
        with pytest.raises(ValueError, match=rf"^{name}=.*expected a finite number >? ?=? ?0.*nothing was changed"):
            with learn.no_bar(), learn.no_logging():
                train()
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))
    with pytest.raises(ValueError, match=rf"{name}=.*finite"):
        Learner(regression_dls(), nn.Linear(4, 1), loss_func=MSELossFlat(), **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(div=0), r"div=0; expected a finite number > 0"), (dict(div_final=float("nan")), r"div_final=nan; expected"),
    (dict(div=-25), r"div=-25; expected"), (dict(pct_start=2), r"pct_start=2; expected the fraction .* from 0 to 1"),
    (dict(pct_start=-0.5), r"pct_start=-0.5"), (dict(moms=(0.95, 0.85)), r"moms=\(0.95, 0.85\); expected three")])
def test_a_one_cycle_schedule_that_would_make_the_weights_nan_is_refused_before_any_step(kwargs, message):
    """div=0 gave an infinite first learning rate: the first step made every weight NaN and the
    NaN stop, one batch later, kept nothing of what was trained; pct_start=2 was taken."""
    torch.manual_seed(0)
    learn = Learner(regression_dls(), nn.Linear(4, 1), loss_func=MSELossFlat())
    fit(learn, 1, lr=1e-2)
    before = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(ValueError, match=message):
        with learn.no_bar(), learn.no_logging():
            learn.fit_one_cycle(1, 1e-2, **kwargs)
    if "moms" not in kwargs:
        with pytest.raises(ValueError, match=message):
            with learn.no_bar(), learn.no_logging():
                learn.fine_tune(1, 1e-2, **kwargs) if "div_final" not in kwargs else learn.fit_flat_cos(1, 1e-2, **kwargs)
    for bad in (dict(epochs=-1), dict(epochs=1, lr_mult=0), dict(epochs=1, base_lr=float("nan"))):
        with pytest.raises(ValueError, match=r"(epochs|lr_mult|lr)=.*expected .*nothing was changed"):
            learn.fine_tune(**bad)  # was: refused only after the frozen phase had trained
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))


@pytest.mark.parametrize("args", [(0, 1), (2, 0), (2, 1, None, 0), (2, 1.5)],
                         ids=["no cycle", "cycles of 0 epochs", "cycle_mult 0", "cycle_len 1.5"])
def test_sgdr_with_no_cycle_or_empty_cycles_says_what_it_expects(args):
    """fit_sgdr(0, 1) said "schedule fractions [] sum to 0", fit_sgdr(2, 0) was a ZeroDivisionError and
    cycle_mult=0 trained cycles of no epoch."""
    learn = Learner(regression_dls(), nn.Linear(4, 1), loss_func=MSELossFlat())
    with pytest.raises(ValueError, match=r"(n_cycles|cycle_len|cycle_mult)=.*; expected a whole number >= 1"):
        learn.fit_sgdr(*args)
