"""TerminateOnNaN, SaveModelCallback, EarlyStoppingCallback, latest_checkpoint."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.metrics import Metric
from fastlearn.optimizer import SGD, AdamW
from fastlearn.tracker import (EarlyStoppingCallback, SaveModelCallback, TerminateOnNaN, latest_checkpoint,
                               weights_are_finite)

N_TRAIN, BS = 64, 16  # 4 batches per epoch, in order


def make_dls(nan_at: int | None = None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + 16, 4, generator=g)
    y = x.sum(1, keepdim=True)
    if nan_at is not None:
        x[nan_at, 0] = float("nan")
    items = list(zip(x, y))
    return DataBunch.from_dsets(items[:N_TRAIN], items[N_TRAIN:], bs=BS, shuffle=False, device="cpu")


class Scripted(Metric):
    """A metric whose value at epoch e is ``values[e]``."""

    def __init__(self, values, name="score"):
        self.values, self._name, self.epoch = values, name, 0

    def accumulate(self, learn):
        self.epoch = learn.epoch

    @property
    def value(self):
        return self.values[self.epoch]


class NanOnEpoch(Callback):
    """Swaps in a batch holding NaN at one (epoch, iteration)."""

    def __init__(self, epoch, iteration):
        self.at = (epoch, iteration)

    def before_batch(self):
        if self.training and (self.epoch, self.iter) == self.at:
            x = self.xb[0].clone()
            x[0, 0] = float("nan")
            self.learn.xb = (x,)


class WeightsPerEpoch(Callback):
    order = 100

    def before_fit(self):
        self.saved = []

    def after_epoch(self):
        self.saved.append([p.detach().clone() for p in self.model.parameters()])


def make_learner(tmp_path, metrics=None, lr=0.05):
    torch.manual_seed(0)
    return Learner(make_dls(), nn.Linear(4, 1), loss_func=MSELossFlat(), opt_func=SGD, lr=lr, metrics=metrics,
                   path=tmp_path)


def fit(learn, epochs, cbs):
    with learn.no_bar(), learn.no_logging():
        learn.fit(epochs, cbs=cbs)


def test_terminate_on_nan_names_the_batch_and_keeps_the_weights_finite(tmp_path):
    learn = make_learner(tmp_path)
    stop = TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match=r"epoch 1, iteration 2 \(batch 3 of 4\)"):
        fit(learn, 3, [NanOnEpoch(1, 2), stop])
    assert stop.nan_at == (1, 2)
    assert len(learn.recorder.values) == 1  # the run stopped inside epoch 1
    assert weights_are_finite(learn.model)
    assert learn.terminate_on_nan is not stop and isinstance(learn.terminate_on_nan, TerminateOnNaN)  # default back
    unguarded = make_learner(tmp_path).remove_cb(TerminateOnNaN)  # on by default: turned off here
    fit(unguarded, 3, [NanOnEpoch(1, 2)])
    assert not weights_are_finite(unguarded.model)


@pytest.mark.parametrize("nan_batch", [2, 3])  # 3: the last batch of the epoch, read at the end of training
def test_deferred_nan_check_skips_the_step_on_the_device_and_keeps_the_same_weights(tmp_path, nan_batch):
    weights, learners = [], []
    for check in ("every_batch", "deferred"):
        torch.manual_seed(0)
        learn = Learner(make_dls(nan_at=nan_batch * BS + 1), nn.Linear(4, 1), loss_func=MSELossFlat(),
                        opt_func=AdamW, lr=0.05, path=tmp_path, cbs=TerminateOnNaN(check=check))
        with pytest.warns(RuntimeWarning, match=rf"epoch 0, iteration {nan_batch} \(batch {nan_batch + 1} of 4\)"):
            fit(learn, 2, [])
        weights.append([p.detach().clone() for p in learn.model.parameters()])
        learners.append(learn)
    exact, deferred = learners
    assert exact.terminate_on_nan.nan_at == deferred.terminate_on_nan.nan_at == (0, nan_batch)
    assert deferred.terminate_on_nan.deferred and not exact.terminate_on_nan.deferred
    assert weights_are_finite(deferred.model)
    assert all(torch.equal(a, b) for a, b in zip(*weights))  # the bad batch changed nothing on either side
    assert not hasattr(deferred.opt, "found_inf")  # nothing left on the optimizer
    assert deferred.opt.state[next(iter(deferred.model.parameters()))]["step"].item() == nan_batch


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_nan_check_is_deferred_by_default_and_keeps_the_same_weights(tmp_path):
    weights, learners = [], []
    for check in ("every_batch", "auto"):
        torch.manual_seed(0)
        learn = Learner(make_dls(nan_at=2 * BS + 1), nn.Linear(4, 1), loss_func=MSELossFlat(), opt_func=AdamW,
                        lr=0.05, path=tmp_path, device="cuda", cbs=TerminateOnNaN(check=check))
        with pytest.warns(RuntimeWarning, match=r"epoch 0, iteration 2 \(batch 3 of 4\)"):
            fit(learn, 2, [])
        weights.append([p.detach().cpu() for p in learn.model.parameters()])
        learners.append(learn)
    assert learners[1].terminate_on_nan.deferred and not learners[0].terminate_on_nan.deferred
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_deferred_nan_check_needs_a_fused_optimizer(tmp_path):
    learn = make_learner(tmp_path)  # SGD
    learn.add_cb(TerminateOnNaN(check="deferred"))
    with pytest.raises(ValueError, match=r"check='deferred'\) needs fused optimizers"):
        fit(learn, 1, [])
    assert not make_learner(tmp_path).terminate_on_nan.deferred  # "auto" on a CPU: checked at every batch
    with pytest.raises(ValueError, match=r"TerminateOnNaN\(check='later'\); expected one of"):
        TerminateOnNaN(check="later")


def test_nan_never_overwrites_the_last_good_checkpoint(tmp_path):
    learn = make_learner(tmp_path).remove_cb(TerminateOnNaN)  # the checkpoint's own guard, without the stop
    with pytest.warns(RuntimeWarning, match=r"not saving 'model_\d'") as caught:
        fit(learn, 3, [NanOnEpoch(1, 0), SaveModelCallback(every_epoch=True)])
    assert ["model_1" in str(w.message) for w in caught] == [True, False]
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == ["model_0.pth"]
    good = make_learner(tmp_path).load("model_0")
    assert weights_are_finite(good.model)


def test_save_model_keeps_the_best_epoch_and_loads_it_at_the_end(tmp_path):
    learn = make_learner(tmp_path, metrics=Scripted([0.5, 0.9, 0.7]))
    weights = WeightsPerEpoch()
    save = SaveModelCallback(monitor="score", fname="best")
    fit(learn, 3, [save, weights])
    assert save.best == 0.9 and save.saved == ["best", "best"]
    for loaded, best in zip(learn.model.parameters(), weights.saved[1]):
        assert torch.equal(loaded, best)
    assert not torch.equal(weights.saved[1][0], weights.saved[2][0])
    on_disk = make_learner(tmp_path).load("best")
    assert on_disk.epoch == 1


def test_save_model_with_nan_stop_restores_the_best_weights(tmp_path):
    learn = make_learner(tmp_path)
    with pytest.warns(RuntimeWarning, match="epoch 2"):
        fit(learn, 4, [NanOnEpoch(2, 1), TerminateOnNaN(), SaveModelCallback()])
    assert weights_are_finite(learn.model)
    assert (tmp_path / "models" / "model.pth").exists()


def test_early_stopping_waits_patience_epochs_without_improvement(tmp_path):
    learn = make_learner(tmp_path, metrics=Scripted([0.5, 0.6, 0.6, 0.55, 0.9, 0.95]))
    stop = EarlyStoppingCallback(monitor="score", patience=2)
    fit(learn, 6, [stop])
    assert stop.stopped_epoch == 3 and len(learn.recorder.values) == 4
    # an improvement smaller than min_delta does not count
    learn = make_learner(tmp_path, metrics=Scripted([0.5, 0.55, 0.58, 0.9]))
    stop = EarlyStoppingCallback(monitor="score", patience=2, min_delta=0.1)
    fit(learn, 4, [stop])
    assert stop.stopped_epoch == 2


def test_tracker_rejects_an_unknown_monitor(tmp_path):
    learn = make_learner(tmp_path)
    with pytest.raises(ValueError, match=r"monitor='accuracy'.*valid_loss"):
        fit(learn, 1, [SaveModelCallback(monitor="accuracy")])


def test_latest_checkpoint_finds_the_newest_epoch(tmp_path):
    learn = make_learner(tmp_path)
    assert latest_checkpoint(learn) is None
    fit(learn, 3, [SaveModelCallback(every_epoch=True)])
    (tmp_path / "models" / "model_best.pth").write_bytes(b"")
    assert latest_checkpoint(learn) == "model_2"
    assert latest_checkpoint(learn.load("model_1"), fname="other") is None
