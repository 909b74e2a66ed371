"""Schedules: the annealing functions, combine_scheds, flat-cos and SGDR through the Learner,
and the lr_find suggestion functions on curves with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.optimizer import SGD
from fastlearn.schedule import (ParamScheduler, SchedCos, SchedExp, SchedLin, SchedNo, combine_scheds,
                                minimum, one_cycle_scheds, slide, steep, valley)


def test_annealers_hit_their_ends_and_midpoints():
    assert SchedLin(1.0, 3.0)(0.5) == pytest.approx(2.0)
    assert SchedCos(1.0, 3.0)(0.0) == pytest.approx(1.0)
    assert SchedCos(1.0, 3.0)(0.5) == pytest.approx(2.0)
    assert SchedCos(1.0, 3.0)(0.25) == pytest.approx(1 + 2 * (1 - math.cos(math.pi / 4)) / 2)
    assert SchedExp(1e-4, 1e-2)(0.5) == pytest.approx(1e-3)
    assert SchedNo(0.7, 5.0)(0.9) == pytest.approx(0.7)
    np.testing.assert_allclose(SchedCos([1.0, 10.0], [0.0, 0.0])(0.5), [0.5, 5.0])


def test_combine_scheds_joins_pieces_and_checks_fractions():
    f = combine_scheds([0.3, 0.7], [SchedLin(0.0, 1.0), SchedLin(1.0, 0.0)])
    assert f(0.15) == pytest.approx(0.5)
    assert f(0.3) == pytest.approx(1.0)
    assert f(0.65) == pytest.approx(0.5)
    assert f(1.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="sum to"):
        combine_scheds([0.3, 0.3], [SchedLin(0, 1), SchedLin(1, 0)])
    with pytest.raises(ValueError, match="2 fractions for 1"):
        combine_scheds([0.5, 0.5], [SchedLin(0, 1)])
    with pytest.raises(ValueError, match="only lr, mom, wd"):
        ParamScheduler({"momentum": SchedLin(0, 1)})


def test_one_cycle_scheds_shape():
    scheds = one_cycle_scheds(1.0, div=10.0, div_final=1e4, pct_start=0.2)
    assert scheds["lr"](0.0) == pytest.approx(0.1)
    assert scheds["lr"](0.2) == pytest.approx(1.0)
    assert scheds["lr"](1.0) == pytest.approx(1e-4)
    assert scheds["mom"](0.0) == pytest.approx(0.95)
    assert scheds["mom"](0.2) == pytest.approx(0.85)
    assert scheds["mom"](1.0) == pytest.approx(0.95)
    assert "mom" not in one_cycle_scheds(1.0, moms=None)


def make_learner():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=gen)
    items = list(zip(x, x.sum(1, keepdim=True)))
    dls = DataBunch.from_dsets(items[:32], items[32:], bs=8, shuffle=False, device="cpu")
    torch.manual_seed(0)
    return Learner(dls, nn.Linear(2, 1), loss_func=MSELossFlat(), opt_func=SGD, device="cpu")


def test_fit_flat_cos_is_flat_then_cosine():
    learn = make_learner()
    with learn.no_bar(), learn.no_logging():
        learn.fit_flat_cos(2, 0.1, pct_start=0.5)
    lrs = [row[-1] for row in learn.recorder.lrs]
    n = len(lrs)
    assert n == 8
    expected = [0.1 if i / n < 0.5 else 0.1 + (0.1 / 1e5 - 0.1) * (1 - math.cos(math.pi * (i / n - 0.5) / 0.5)) / 2
                for i in range(n)]
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_fit_sgdr_restarts_each_cycle():
    learn = make_learner()
    with learn.no_bar(), learn.no_logging():
        learn.fit_sgdr(2, 1, 0.1, cycle_mult=2)  # cycles of 1 and 2 epochs
    lrs = [row[-1] for row in learn.recorder.lrs]
    assert len(lrs) == 3 * len(learn.dls.train)
    assert len(learn.recorder.values) == 3
    per_epoch = len(learn.dls.train)
    assert lrs[0] == pytest.approx(0.1) and lrs[per_epoch] == pytest.approx(0.1)  # restart
    assert lrs[per_epoch - 1] < 0.1 / 5 and lrs[-1] < 0.1 / 20
    assert lrs[per_epoch + per_epoch] == pytest.approx(0.05, rel=1e-9)  # middle of the long cycle


def test_suggestion_functions_on_known_curves():
    lrs = np.logspace(-6, 0, 61)
    log_lr = np.log10(lrs)
    # falls fastest at 1e-3, is lowest at 1e-1, then shoots up
    losses = 2 - np.tanh((log_lr + 3) * 1.5) + np.where(log_lr > -1, (log_lr + 1) ** 2 * 20, 0)
    lr_min, (lr_at_min, loss_at_min) = minimum(lrs, losses, 61)
    assert lr_at_min == pytest.approx(lrs[np.argmin(losses)])
    assert lr_min == pytest.approx(lr_at_min / 10)
    lr_steep, _ = steep(lrs, losses, 61)
    assert lr_steep == pytest.approx(1e-3, rel=0.3)
    lr_valley, _ = valley(lrs, losses, 61)
    assert 1e-5 < lr_valley < lr_at_min
    lr_slide, _ = slide(lrs, losses, 61)
    assert lr_slide <= lr_at_min
