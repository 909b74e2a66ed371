"""Learner: agreement with a plain PyTorch loop, the one-cycle schedule, lr_find, the Recorder,
get_preds, validate and summary, on tiny synthetic problems."""
from __future__ import annotations

import copy
import math
from functools import partial

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat, MSELossFlat
from fastlearn.metrics import accuracy, accuracy_multi
from fastlearn.optimizer import SGD
from fastlearn.schedule import minimum, steep, valley

matplotlib.use("Agg")


def regression_data(n_train=96, n_valid=40, n_in=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, n_in, generator=gen)
    w = torch.arange(1.0, n_in + 1)
    y = (x @ w + 0.5 + 0.1 * torch.randn(n_train + n_valid, generator=gen)).unsqueeze(1)
    items = list(zip(x, y))
    return items[:n_train], items[n_train:]


def regression_learner(bs=16, shuffle=False, lr=0.05, opt_func=SGD, seed=0, **kwargs):
    train, valid = regression_data()
    dls = DataBunch.from_dsets(train, valid, bs=bs, shuffle=shuffle, seed=seed, device="cpu")
    torch.manual_seed(seed)
    return Learner(dls, nn.Linear(3, 1), loss_func=MSELossFlat(), opt_func=opt_func, lr=lr,
                   device="cpu", **kwargs)


def classification_learner(n_train=60, n_valid=23, n_classes=3, bs=8, **kwargs):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n_train + n_valid, 4, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:n_train], items[n_train:], bs=bs, seed=0, device="cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, n_classes))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat(), device="cpu", **kwargs)


# --- same numbers as PyTorch -------------------------------------------------------------------------

@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_sgd_matches_plain_pytorch_loop(shuffle):
    learn = regression_learner(shuffle=shuffle, seed=3)
    start = copy.deepcopy(learn.model.state_dict())
    with learn.no_bar(), learn.no_logging():
        learn.fit(3, lr=0.05)

    model = nn.Linear(3, 1)
    model.load_state_dict(start)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    train, _ = regression_data()
    xs, ys = torch.stack([x for x, _ in train]), torch.stack([y for _, y in train])
    for epoch in range(3):
        if shuffle:  # a seeded loader replays epoch k's order: take the batches from it
            learn.dls.train.set_epoch(epoch)
            batches = list(learn.dls.train)
            assert len(batches) == len(train) // 16  # the shuffled loader drops its last partial batch
        else:
            batches = [(xs[i:i + 16], ys[i:i + 16]) for i in range(0, len(train), 16)]
        for xb, yb in batches:
            loss = ((model(xb) - yb) ** 2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(learn.model.state_dict()[name], value, atol=1e-6, rtol=0)
    assert not torch.equal(learn.model.weight, start["weight"])


# --- one-cycle ---------------------------------------------------------------------------------------

def _cos(start, end, pos):
    return start + (end - start) * (1 - math.cos(math.pi * pos)) / 2


def analytic_one_cycle(n_total, lr_max, div, div_final, pct_start, moms):
    lrs, mms = [], []
    for i in range(n_total):
        pos = i / n_total
        if pos < pct_start:
            p = pos / pct_start
            lrs.append(_cos(lr_max / div, lr_max, p))
            mms.append(_cos(moms[0], moms[1], p))
        else:
            p = (pos - pct_start) / (1 - pct_start)
            lrs.append(_cos(lr_max, lr_max / div_final, p))
            mms.append(_cos(moms[1], moms[2], p))
    return np.array(lrs), np.array(mms)


@pytest.mark.parametrize("kwargs", [{}, {"div": 10.0, "div_final": 100.0, "pct_start": 0.4}])
def test_fit_one_cycle_sets_the_analytic_schedule(kwargs):
    learn = regression_learner(opt_func=partial(SGD, mom=0.9))
    kept = {}

    class KeepHps(Callback):
        def after_fit(self):
            kept.update(self.learn.param_scheduler.hps)

    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, 0.1, cbs=KeepHps(), **kwargs)
    n_total = 2 * len(learn.dls.train)
    expected_lr, expected_mom = analytic_one_cycle(
        n_total, 0.1, kwargs.get("div", 25.0), kwargs.get("div_final", 1e5), kwargs.get("pct_start", 0.25),
        (0.95, 0.85, 0.95))
    recorded_lr = np.array([row[-1] for row in learn.recorder.lrs])
    recorded_mom = np.array([row[-1] for row in learn.recorder.moms])
    assert len(recorded_lr) == n_total
    np.testing.assert_allclose(recorded_lr, expected_lr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(recorded_mom, expected_mom, rtol=1e-9)
    np.testing.assert_allclose([row[-1] for row in kept["lr"]], expected_lr, rtol=1e-9)
    np.testing.assert_allclose([row[-1] for row in kept["mom"]], expected_mom, rtol=1e-9)
    assert not hasattr(learn, "param_scheduler"), "the schedule callback is removed after fit"
    # the schedule peaks at lr_max and ends near lr_max / div_final
    assert recorded_lr.max() <= 0.1 + 1e-12 and recorded_lr[0] == pytest.approx(0.1 / kwargs.get("div", 25.0))


def test_fit_one_cycle_with_slice_schedules_every_group():
    learn = regression_learner(splitter=lambda m: [[m.weight], [m.bias]], wd_bn_bias=True)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, slice(1e-3, 1e-1))
    first = learn.recorder.lrs[0]
    assert first == pytest.approx([1e-3 / 25, 1e-1 / 25])


# --- lr_find -----------------------------------------------------------------------------------------

def _states_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_states_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_states_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_lr_find_restores_weights_and_optimizer_state():
    learn = regression_learner(opt_func=partial(torch.optim.AdamW, betas=(0.9, 0.99)), lr=1e-2)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
    model_before = copy.deepcopy(learn.model.state_dict())
    opt_before = copy.deepcopy(learn.opt.state_dict())
    values_before = copy.deepcopy(learn.recorder.values)
    assert opt_before["state"], "after a fit AdamW has per-parameter state"
    with learn.no_bar():
        learn.lr_find(num_it=30, show_plot=False)
    assert _states_equal(model_before, learn.model.state_dict())
    assert _states_equal(opt_before, learn.opt.state_dict())
    assert learn.recorder.values == values_before


def _divergence_lr(train) -> float:
    """SGD on mean squared error diverges above 2 / (largest eigenvalue of the loss Hessian)."""
    xs = torch.stack([torch.cat([x, torch.ones(1)]) for x, _ in train]).double()
    hessian = 2 * xs.T @ xs / len(xs)
    return 2 / torch.linalg.eigvalsh(hessian).max().item()


def test_lr_find_suggestions_lie_in_the_stable_region():
    learn = regression_learner(bs=16, shuffle=True)
    train, _ = regression_data()
    lr_div = _divergence_lr(train)
    with learn.no_bar():
        suggestions = learn.lr_find(start_lr=1e-5, end_lr=10, num_it=60, show_plot=False,
                                    suggest_funcs=(valley, minimum, steep))
    for name, lr in suggestions._asdict().items():
        assert lr < lr_div, f"{name} suggests {lr}, above the divergence point {lr_div}"
    assert suggestions.valley > lr_div / 100
    assert suggestions.minimum > lr_div / 100
    assert suggestions.steep >= 1e-5


def test_lr_find_unpacks_to_one_float_per_function():
    learn = regression_learner(shuffle=True)
    with learn.no_bar():
        lr_min, lr_steep = learn.lr_find(num_it=30, show_plot=True, suggest_funcs=(minimum, steep))
    assert isinstance(lr_min, float) and isinstance(lr_steep, float)
    assert lr_min > 0 and lr_steep > 0
    default = learn.lr_find(num_it=30, show_plot=False)
    assert isinstance(default.valley, float)


# --- recorder ----------------------------------------------------------------------------------------

def test_recorder_values_use_a_batch_weighted_valid_loss():
    learn = classification_learner(n_valid=23, bs=4, metrics=accuracy)  # valid bs 8: 8 + 8 + 7
    with learn.no_bar(), learn.no_logging():
        learn.fit(2, lr=1e-2)
    assert len(learn.recorder.values) == 2
    assert all(len(row) == 3 for row in learn.recorder.values)
    train_loss, valid_loss, acc = learn.recorder.values[-1]
    model = learn.model.eval()
    xs = torch.stack([x for x, _ in learn.dls.valid_ds])
    ys = torch.stack([y for _, y in learn.dls.valid_ds])
    with torch.no_grad():
        out = model(xs)
    assert valid_loss == pytest.approx(nn.functional.cross_entropy(out, ys).item(), rel=1e-5)
    assert acc == pytest.approx((out.argmax(1) == ys).float().mean().item(), rel=1e-6)
    assert math.isfinite(train_loss)
    assert learn.validate() == [pytest.approx(valid_loss, rel=1e-6), pytest.approx(acc)]


def test_metrics_reassigned_after_construction():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=gen)
    y = (torch.randn(40, 3, generator=gen) > 0).float()
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:30], items[30:], bs=8, device="cpu")
    learn = Learner(dls, nn.Linear(5, 3), loss_func=nn.BCEWithLogitsLoss(), device="cpu")
    learn.metrics = partial(accuracy_multi, thresh=0.1)
    loss, acc = learn.validate()
    with torch.no_grad():
        out = learn.model(x[30:])
    assert acc == pytest.approx(((out.sigmoid() > 0.1) == y[30:].bool()).float().mean().item())
    assert loss == pytest.approx(nn.functional.binary_cross_entropy_with_logits(out, y[30:]).item(), rel=1e-6)


def test_plots_run_headless():
    learn = regression_learner()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, 0.05)
    import matplotlib.pyplot as plt
    assert learn.recorder.plot_loss() is None  # a notebook shows the figure once
    assert len(plt.gca().lines) == 2
    assert learn.recorder.plot_sched() is None
    fig = plt.gcf()
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines[0].get_ydata()) == 2 * len(learn.dls.train)
    plt.close("all")


# --- get_preds, predict, summary ---------------------------------------------------------------------

def test_get_preds_applies_softmax_and_returns_what_is_asked():
    learn = classification_learner(n_valid=23)
    xs = torch.stack([x for x, _ in learn.dls.valid_ds])
    ys = torch.stack([y for _, y in learn.dls.valid_ds])
    with torch.no_grad():
        logits = learn.model.eval()(xs)
    preds, targs = learn.get_preds()
    torch.testing.assert_close(preds, logits.softmax(1))
    torch.testing.assert_close(targs, ys)
    preds, targs, decoded = learn.get_preds(with_decoded=True)
    torch.testing.assert_close(decoded, logits.argmax(1))
    inputs, preds, targs, losses = learn.get_preds(with_input=True, with_loss=True)
    torch.testing.assert_close(inputs, xs)
    torch.testing.assert_close(losses, nn.functional.cross_entropy(logits, ys, reduction="none"))
    raw, _ = learn.get_preds(act=lambda x: x)
    torch.testing.assert_close(raw, logits)
    train_preds, _ = learn.get_preds(ds_idx=0)
    assert len(train_preds) == len(learn.dls.train) * learn.dls.train.bs


def test_get_preds_on_another_loader():
    learn = classification_learner()
    dl = learn.dls.valid.new(bs=5)
    preds, targs = learn.get_preds(dl=dl)
    assert preds.shape == (len(learn.dls.valid_ds), 3)
    assert torch.allclose(preds.sum(1), torch.ones(len(preds)))


def test_summary_lists_layers_shapes_and_counts(capsys):
    learn = classification_learner(bs=8)
    text = learn.summary()
    assert isinstance(text, str) and capsys.readouterr().out == ""  # shown by whoever displays it
    print(text)
    assert capsys.readouterr().out == f"{text}\n" and str(text).startswith("Sequential (input batch [[8, 4]])")
    assert "[8, 8]" in text and "[8, 3]" in text
    assert "ReLU" in text
    assert f"Total params: {4 * 8 + 8 + 8 * 3 + 3:,}" in text
    assert text.count("Linear") >= 2


def test_summary_shows_once_as_text_in_a_notebook_cell(capsys):
    formatters = pytest.importorskip("IPython.core.formatters", reason="IPython is not installed")
    text = classification_learner(bs=8).summary()
    assert repr(text) == str(text)
    shown = formatters.PlainTextFormatter()(text)  # what a cell ending in learn.summary() displays
    assert shown == str(text) and shown.count("Total params") == 1
    assert capsys.readouterr().out == ""


def test_learner_rejects_a_non_module_and_a_missing_loss():
    train, valid = regression_data()
    dls = DataBunch.from_dsets(train, valid, bs=8, device="cpu")
    with pytest.raises(TypeError, match="nn.Module"):
        Learner(dls, lambda x: x, loss_func=MSELossFlat())
    with pytest.raises(ValueError, match="loss_func"):
        Learner(dls, nn.Linear(3, 1))
    learn = Learner(dls, nn.Linear(3, 1), loss_func=MSELossFlat(), device="cpu")
    with pytest.raises(ValueError, match="n_epoch"):
        learn.fit(-1)


def test_get_preds_and_validate_leave_the_recorded_epochs_alone():
    learn = regression_learner()
    with learn.no_bar():
        learn.fit(2, 0.01)
    values = copy.deepcopy(learn.recorder.values)
    learn.get_preds()
    learn.validate()
    assert learn.recorder.values == values


class FirstTargets(Callback):
    """Remembers the first training batch's targets of every epoch."""

    def __init__(self):
        self.seen = []

    def after_pred(self):
        if self.training and self.iter == 0:
            self.seen.append(self.learn.yb[0].flatten().tolist())


def test_a_seeded_loader_moves_on_across_fits_instead_of_replaying_its_first_epochs():
    one_go = regression_learner(shuffle=True, seed=3)
    in_one_go = FirstTargets()
    with one_go.no_bar():
        one_go.fit(3, 0.01, cbs=in_one_go)
    in_parts, two_fits = FirstTargets(), regression_learner(shuffle=True, seed=3)
    with two_fits.no_bar():
        two_fits.fit(1, 0.01, cbs=in_parts)   # like fine_tune's frozen epoch...
        two_fits.fit(2, 0.01, cbs=in_parts)   # ...then its unfrozen ones
    assert in_parts.seen == in_one_go.seen
    assert len({str(s) for s in in_one_go.seen}) == 3  # every epoch its own order


def test_passes_outside_a_fit_add_nothing_to_the_recorders_log():
    learn = classification_learner(metrics=accuracy)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=1e-2)
    log, values = list(learn.recorder.log), list(learn.recorder.values)
    assert len(log) >= 3 and log[0] == 0 and values[0] == log[1:]  # epoch, train loss, valid loss...
    for _ in range(3):
        learn.validate()
        learn.get_preds()
    assert learn.recorder.log == log and learn.recorder.values == values
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=1e-2)  # the next fit's rows are written as before
    assert len(learn.recorder.values) == 1 and len(learn.recorder.log) == len(log)
