"""Debugging runs: fast_dev_run writes nothing and reports one line, overfit_batches replays the
same batches, and the sanity validation runs before the first training batch."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.metrics import accuracy
from fastlearn.optimizer import Adam
from fastlearn.tracker import SaveModelCallback


def random_label_dls(n_train=96, n_valid=64, bs=16, seed=0, shuffle=True):
    """Random inputs with random labels: nothing to learn that generalises, everything to memorise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, 10, generator=gen)
    y = torch.randint(0, 3, (n_train + n_valid,), generator=gen)
    items = list(zip(x, y))
    return DataBunch.from_dsets(items[:n_train], items[n_train:], bs=bs, val_bs=2 * bs, shuffle=shuffle, seed=3,
                               device="cpu")


def make_learner(tmp_path=None, cbs=None, dropout=0.0, **kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, 3))
    return Learner(random_label_dls(), model, loss_func=CrossEntropyLossFlat(), opt_func=Adam, lr=1e-2,
                   metrics=accuracy, cbs=cbs, path=tmp_path, device="cpu", **kwargs)


class Batches(Callback):
    """Counts batches per phase and keeps each training batch's inputs."""

    def __init__(self):
        self.train, self.valid, self.inputs, self.events = 0, 0, [], []

    def before_validate(self):
        self.events.append(("before_validate", self.learn.sanity_checking))

    def before_epoch(self):
        self.events.append(("before_epoch", self.learn.sanity_checking))

    def after_batch(self):
        if self.training:
            self.train += 1
            self.inputs.append(self.xb[0].clone())
        else:
            self.valid += 1


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_fast_dev_run_runs_one_batch_each_writes_nothing_and_reports_one_line(tmp_path, capsys):
    count = Batches()
    learn = make_learner(tmp_path, cbs=[count, SaveModelCallback(every_epoch=True)], fast_dev_run=True)
    weights = learn.model[0].weight.detach().clone()
    learn.fit_one_cycle(5)
    assert (count.train, count.valid) == (1, 1)
    assert not torch.equal(weights, learn.model[0].weight)  # the batch did train
    learn.save("model")
    learn.export("export.pkl")
    assert files_under(tmp_path) == []
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("fast_dev_run: 1 training batch and 1 validation batch ran without error")
    assert "train_loss" in lines[0] and "accuracy" in lines[0]
    assert lines[0].endswith("nothing was written (left out: SaveModelCallback)")
    assert lines[1:] == [f"fast_dev_run: checkpoint {tmp_path / 'models' / 'model.pth'} not written",
                         f"fast_dev_run: export {tmp_path / 'export.pkl'} not written"]
    assert isinstance(learn.cbs[-1], Callback) and not hasattr(learn, "dev_run")  # the run's callback is gone
    assert any(isinstance(cb, SaveModelCallback) for cb in learn.cbs)  # the writer is back


def test_fast_dev_run_for_one_fit_only(tmp_path, capsys):
    count = Batches()
    learn = make_learner(tmp_path, cbs=count)
    with learn.no_bar():
        learn.fit(4, fast_dev_run=3)
    assert (count.train, count.valid) == (3, 2)  # the validation set has only 2 batches
    assert capsys.readouterr().out.startswith("fast_dev_run: 3 training batches and 2 validation batches")
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
    assert count.train == 3 + 6  # a whole epoch of 96 items in batches of 16
    learn.save("model")
    assert files_under(tmp_path) == ["models/model.pth"]


def test_overfit_batches_trains_and_validates_on_the_same_batches():
    count = Batches()
    learn = make_learner(cbs=count, overfit_batches=2, sanity_val_steps=0)
    with learn.no_bar(), learn.no_logging():
        learn.fit(40, lr=1e-2)
    assert count.train == 80 and count.valid == 80
    assert all(torch.equal(x, count.inputs[i % 2]) for i, x in enumerate(count.inputs))
    train_loss, valid_loss, acc = learn.recorder.values[-1]
    assert valid_loss < 0.05 and acc == 1.0  # 32 random labels memorised
    loss_on_held_out, _ = learn.validate()  # outside the fit: the real validation set
    assert loss_on_held_out > 1.0


def test_debug_arguments_are_checked():
    with pytest.raises(ValueError, match="fast_dev_run=-1; expected True / False or a number"):
        make_learner(fast_dev_run=-1)
    with pytest.raises(ValueError, match="overfit_batches='2'"):
        make_learner(overfit_batches="2")
    with pytest.raises(ValueError, match="sanity_val_steps=1.5"):
        make_learner(sanity_val_steps=1.5)


def test_sanity_validation_runs_before_the_first_training_batch_and_changes_nothing():
    count = Batches()
    learn = make_learner(cbs=count, dropout=0.5)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
    assert count.events[:2] == [("before_validate", True), ("before_epoch", False)]
    assert count.valid == 2 + 2  # the two batches before training, then the two of the epoch (64 items, bs 32)
    with_check = [p.detach().clone() for p in learn.model.parameters()]
    plain = make_learner(sanity_val_steps=0, dropout=0.5)
    with plain.no_bar(), plain.no_logging():
        plain.fit(1)
    for a, b in zip(with_check, plain.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # same shuffling, same dropout: the same run


def sanity_passes(events):
    return sum(1 for event, checking in events if event == "before_validate" and checking)


def test_the_sanity_validation_runs_once_per_validation_path():
    count = Batches()
    learn = make_learner(cbs=count)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
        learn.fit_one_cycle(1)   # with a scheduler, a kind of callback the first pass did not run with
        learn.fit_one_cycle(1)   # a new scheduler of the same kind, as fine_tune's second phase
        learn.fit(1)
        assert sanity_passes(count.events) == 2
        learn.fit(1, cbs=[SaveModelCallback(fname="unused", every_epoch=False)])
        learn.fit(1)
        assert sanity_passes(count.events) == 3
        learn.loss_func = nn.CrossEntropyLoss()   # each replaced part is checked again
        learn.fit(1)
        learn.metrics = [accuracy, lambda pred, targ: (pred.argmax(1) != targ).float().mean()]
        learn.fit(1)
        learn.model = nn.Sequential(nn.Linear(10, 3))
        learn.fit(1)
        learn.dls = random_label_dls(seed=1)
        learn.fit(1)
        learn.fit(1)
    assert sanity_passes(count.events) == 7


def test_a_failed_sanity_validation_runs_again_on_the_next_fit():
    learn = make_learner(cbs=BrokenMetricForValidation())
    for _ in range(2):
        with pytest.raises(IndexError, match="metric cannot read"), learn.no_bar():
            learn.fit(1)


class BrokenMetricForValidation(Callback):
    """A metric-like failure that only shows on validation batches."""

    def after_pred(self):
        if not self.training:
            raise IndexError("metric cannot read this prediction")


def test_an_error_in_the_validation_path_shows_before_any_training():
    count = Batches()
    learn = make_learner(cbs=[count, BrokenMetricForValidation()])
    with pytest.raises(IndexError, match="metric cannot read") as raised:
        with learn.no_bar():
            learn.fit(1)
    assert count.train == 0
    assert any("sanity validation" in note and "sanity_val_steps=0" in note for note in raised.value.__notes__)


def test_a_nan_validation_loss_before_training_is_a_warning():
    learn = make_learner()
    learn.dls.valid.dataset[0] = (torch.full((10,), float("nan")), torch.tensor(0))
    with pytest.warns(RuntimeWarning, match="validation loss on the first 2 validation batches is nan"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with learn.no_bar(), learn.no_logging():
                learn.fit(1)
