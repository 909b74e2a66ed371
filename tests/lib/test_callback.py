"""Callbacks: the closed list of events, ordering, cancelling, forwarding and its guard."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fastlearn.callback import (EVENTS, Callback, CancelBatchException, CancelEpochException, CancelFitException,
                                CancelStepException, TrainEvalCallback, sort_callbacks)
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.optimizer import SGD
from fastlearn.progress import ProgressCallback
from fastlearn.tracker import EarlyStoppingCallback
from fastlearn.recorder import Recorder


def make_learner(cbs=None, n_train=32, bs=8, sanity_val_steps=0, **kwargs):
    """The loop's mechanics without the sanity validation before training (its events are tested
    in test_debugging.py)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + 16, 2, generator=gen)
    y = x.sum(1, keepdim=True)
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:n_train], items[n_train:], bs=bs, val_bs=2 * bs, shuffle=False, device="cpu")
    torch.manual_seed(0)
    return Learner(dls, nn.Linear(2, 1), loss_func=MSELossFlat(), cbs=cbs, device="cpu", lr=0.1,
                   opt_func=SGD, sanity_val_steps=sanity_val_steps, **kwargs)


def quiet_fit(learn, n_epoch=1, **kwargs):
    with learn.no_bar(), learn.no_logging():
        learn.fit(n_epoch, **kwargs)


class EventLog(Callback):
    """Writes down every event it sees, with the training flag for batch events."""

    def __init__(self):
        self.seen = []

    def __getattribute__(self, name):
        if name in EVENTS:
            seen = object.__getattribute__(self, "seen")
            return lambda: seen.append(name)
        return object.__getattribute__(self, name)


class EventList(Callback):
    def __init__(self):
        self.events = []

    def before_fit(self): self.events.append("before_fit")
    def before_epoch(self): self.events.append("before_epoch")
    def before_train(self): self.events.append("before_train")
    def before_batch(self): self.events.append("before_batch")
    def after_pred(self): self.events.append("after_pred")
    def after_loss(self): self.events.append("after_loss")
    def before_backward(self): self.events.append("before_backward")
    def after_backward(self): self.events.append("after_backward")
    def before_step(self): self.events.append("before_step")
    def after_step(self): self.events.append("after_step")
    def after_batch(self): self.events.append("after_batch")
    def after_train(self): self.events.append("after_train")
    def before_validate(self): self.events.append("before_validate")
    def after_validate(self): self.events.append("after_validate")
    def after_epoch(self): self.events.append("after_epoch")
    def after_cancel_fit(self): self.events.append("after_cancel_fit")
    def after_fit(self): self.events.append("after_fit")


def test_events_fire_in_loop_order():
    log = EventList()
    learn = make_learner(cbs=log, n_train=16, bs=8)  # 2 training batches, 1 validation batch
    quiet_fit(learn)
    train_batch = ["before_batch", "after_pred", "after_loss", "before_backward", "after_backward",
                   "before_step", "after_step", "after_batch"]
    valid_batch = ["before_batch", "after_pred", "after_loss", "after_batch"]
    assert log.events == (["before_fit", "before_epoch", "before_train"] + train_batch * 2
                          + ["after_train", "before_validate"] + valid_batch
                          + ["after_validate", "after_epoch", "after_fit"])


def test_misspelt_event_fails_when_added():
    class Typo(Callback):
        def after_bach(self):
            pass

    learn = make_learner()
    with pytest.raises(AttributeError, match="did you mean 'after_batch'"):
        learn.add_cb(Typo())
    with pytest.raises(AttributeError, match="after_bach"):
        make_learner(cbs=Typo)
    assert not any(isinstance(cb, Typo) for cb in learn.cbs)


def test_the_early_begin_event_names_point_to_before():
    class ModelResetter(Callback):      # as the printed book writes it
        def begin_train(self):
            self.model.reset()

    with pytest.raises(AttributeError, match="begin_train.*did you mean 'before_train'"):
        make_learner(cbs=ModelResetter)


def test_helpers_that_are_not_events_are_allowed():
    class Helper(Callback):
        def after_something_custom_helper(self):  # looks like an event, is not
            pass

    with pytest.raises(AttributeError, match="not an event"):
        make_learner(cbs=Helper)

    class Fine(Callback):
        def compute(self):
            return 1

    learn = make_learner(cbs=Fine)
    assert learn.fine.compute() == 1


def test_cbs_accepts_classes_and_instances():
    class CountBatches(Callback):
        def __init__(self):
            self.count = 0

        def after_batch(self):
            if self.training:
                self.count += 1

    instance = CountBatches()
    learn = make_learner(cbs=[CountBatches])
    assert isinstance(learn.count_batches, CountBatches)
    quiet_fit(learn, 2)
    assert learn.count_batches.count == 2 * len(learn.dls.train)
    learn = make_learner(cbs=instance)
    assert learn.count_batches is instance and instance.learn is learn
    with pytest.raises(TypeError, match="Callback"):
        make_learner(cbs=[object()])


def test_run_before_and_order():
    calls = []

    class Late(Callback):
        order = 5
        def before_fit(self): calls.append("late")

    class Early(Callback):
        order = 10
        run_before = Late
        def before_fit(self): calls.append("early")

    class BeforeRecorder(Callback):
        order = 99
        run_before = Recorder
        def after_batch(self): calls.append(("before_recorder", len(self.learn.recorder.losses)))

    learn = make_learner(cbs=[Late(), BeforeRecorder(), Early()])
    names = [type(cb).__name__ for cb in learn.cbs]
    assert names.index("Early") < names.index("Late")
    assert names.index("BeforeRecorder") < names.index("Recorder")
    assert names[0] == "TrainEvalCallback"
    quiet_fit(learn)
    assert calls[:2] == ["early", "late"]
    # it ran before the recorder logged this batch's loss: it saw 0, 1, 2... losses
    seen = [n for tag, n in calls[2:2 + len(learn.dls.train)]]
    assert seen == list(range(len(learn.dls.train)))


def test_run_before_cycle_is_an_error():
    class A(Callback): pass

    class B(Callback):
        run_before = A
        run_after = A

    with pytest.raises(ValueError, match="cycle"):
        sort_callbacks([A(), B()])


def test_cancel_fit_in_after_batch_ends_cleanly():
    class StopAfter3(Callback):
        order = 99  # after the Recorder, which logs the batch first

        def __init__(self):
            self.batches, self.fit_ended, self.cancelled = 0, False, False

        def after_batch(self):
            self.batches += 1
            if self.batches == 3:
                raise CancelFitException()

        def after_cancel_fit(self):
            self.cancelled = True

        def after_fit(self):
            self.fit_ended = True

    stop = StopAfter3()
    learn = make_learner(cbs=stop)
    before = learn.model.weight.detach().clone()
    quiet_fit(learn, 5)
    assert stop.batches == 3 and stop.cancelled and stop.fit_ended
    assert learn.recorder.values == []  # no epoch finished
    assert len(learn.recorder.losses) == 3
    assert not torch.equal(before, learn.model.weight)
    quiet_fit(learn, 1)  # the learner is usable afterwards
    assert stop.batches == 3 + len(learn.dls.train) + len(learn.dls.valid)


def test_cancel_batch_and_step_skip_the_update():
    class SkipBatch(Callback):
        def after_pred(self):
            if self.training:
                raise CancelBatchException()

    learn = make_learner(cbs=SkipBatch)
    before = learn.model.weight.detach().clone()
    quiet_fit(learn)
    assert torch.equal(before, learn.model.weight)

    class SkipStep(Callback):
        def before_step(self):
            raise CancelStepException()

    learn = make_learner(cbs=SkipStep)
    before = learn.model.weight.detach().clone()
    quiet_fit(learn)
    assert torch.equal(before, learn.model.weight)
    assert all(p.grad is None for p in learn.model.parameters()), "gradients are zeroed after a skipped step"


def test_cancel_epoch_in_before_epoch_skips_that_epoch():
    class SkipFirstEpoch(Callback):  # runs before the Recorder, which has not started the epoch
        def before_epoch(self):
            if self.epoch == 0:
                raise CancelEpochException()

    learn = make_learner(cbs=SkipFirstEpoch)
    quiet_fit(learn, 3)
    skipped, *ran = learn.recorder.values
    assert skipped == [None, None]  # the skipped epoch's row is empty, the others are measured
    assert len(ran) == 2 and all(row[1] is not None for row in ran)
    with learn.no_logging():
        learn.fit(2)  # with the progress bar, which starts before the first epoch is cancelled
    assert learn.recorder.values[0] == [None, None] and learn.recorder.values[1][1] is not None


def test_an_epoch_cancelled_before_it_began_does_not_count_against_patience():
    class SkipFirstEpoch(Callback):
        def before_epoch(self):
            if self.epoch == 0:
                raise CancelEpochException()

    stop = EarlyStoppingCallback(monitor="valid_loss", patience=1)
    learn = make_learner(cbs=[SkipFirstEpoch, stop])
    quiet_fit(learn, 3)
    # the first measured epoch (1) is the first best; only epoch 2 can end the fit
    assert stop.stopped_epoch in (None, 2) and len(learn.recorder.values) == 3
    assert learn.recorder.values[0] == [None, None] and learn.recorder.values[1][1] is not None


def test_attribute_reads_are_forwarded():
    class Peek(Callback):
        def __init__(self):
            self.records = []

        def after_loss(self):
            self.records.append((self.epoch, self.training, self.iter, tuple(self.pred.shape),
                                 float(self.loss), self.model is self.learn.model, self.dls is self.learn.dls))

    peek = Peek()
    learn = make_learner(cbs=peek, n_train=16, bs=8)
    quiet_fit(learn, 2)
    epochs = [r[0] for r in peek.records]
    training = [r[1] for r in peek.records]
    assert epochs == [0, 0, 0, 1, 1, 1]
    assert training == [True, True, False, True, True, False]
    assert [r[2] for r in peek.records] == [0, 1, 0, 0, 1, 0]
    assert [r[3] for r in peek.records] == [(8, 1), (8, 1), (16, 1)] * 2  # validation batches are twice as big
    assert all(r[5] and r[6] for r in peek.records)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        Peek().nonexistent


def test_writing_forwarded_state_raises_a_clear_error():
    class Bad(Callback):
        def after_pred(self):
            self.pred = self.pred * 2

    learn = make_learner(cbs=Bad)
    with pytest.raises(AttributeError, match=r"self\.learn\.pred"):
        quiet_fit(learn)

    class Good(Callback):
        def after_pred(self):
            self.learn.pred = self.pred * 0

        def after_loss(self):
            self.learn.loss_grad = self.loss_grad * 0

    learn = make_learner(cbs=Good)
    before = learn.model.weight.detach().clone()
    quiet_fit(learn)
    assert torch.equal(before, learn.model.weight)  # zero loss: no update, the writes took effect


def test_added_and_removed_cbs():
    learn = make_learner()
    log = EventList()
    with learn.added_cbs(log):
        assert learn.event_list is log and log in learn.cbs
        quiet_fit(learn)
    assert log not in learn.cbs and not hasattr(learn, "event_list")
    assert "before_fit" in log.events
    n_events = len(log.events)
    quiet_fit(learn)
    assert len(log.events) == n_events

    with learn.removed_cbs(learn.recorder):
        assert not any(isinstance(cb, Recorder) for cb in learn.cbs)
    assert any(isinstance(cb, Recorder) for cb in learn.cbs)
    cbs_before = list(learn.cbs)
    with learn.no_bar():  # the bar stays in learn.cbs but gets no event
        assert list(learn.cbs) == cbs_before
        assert not any(isinstance(cb, ProgressCallback) for cb in learn.callbacks_for("after_batch"))
    assert any(isinstance(cb, ProgressCallback) for cb in learn.callbacks_for("after_batch"))

    learn.add_cb(EventList)
    learn.add_cb(EventList)  # a second one of the same name replaces the first
    assert sum(isinstance(cb, EventList) for cb in learn.cbs) == 1
    learn.remove_cb(EventList)
    assert not any(isinstance(cb, EventList) for cb in learn.cbs)


def test_callback_name_may_not_replace_a_learner_attribute(capsys):
    class Logger(Callback):  # would become learn.logger, the Learner's table printer
        def after_fit(self):
            pass

    learn = make_learner()
    with pytest.raises(ValueError, match="learn.logger"):
        learn.add_cb(Logger())
    with learn.no_bar():
        learn.fit(1)  # still logs its table
    assert "train_loss" in capsys.readouterr().out

    class Renamed(Logger):
        name = "my_logger"

    learn.add_cb(Renamed())
    assert isinstance(learn.my_logger, Renamed)


def test_fit_cbs_are_only_for_that_fit():
    log = EventList()
    learn = make_learner()
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, cbs=[log])
    assert log not in learn.cbs and log.events[-1] == "after_fit"


def test_show_training_loop_prints_the_tree(capsys):
    learn = make_learner(cbs=EventList)
    learn.show_training_loop()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Start Fit" and lines[-1] == "End Fit"
    batch_line = next(line for line in lines if line.strip().startswith("after_batch"))
    assert "EventList" in batch_line and "Recorder" in batch_line
    fit_line = next(line for line in lines if line.strip().startswith("before_fit"))
    assert fit_line.startswith("   ") and "TrainEvalCallback" in fit_line
    assert batch_line.index("after_batch") > fit_line.index("before_fit")  # nested deeper


def test_train_eval_switches_model_mode():
    modes = []

    class Mode(Callback):
        def before_batch(self):
            modes.append((self.training, self.model.training))

    learn = make_learner(cbs=Mode, n_train=8, bs=8)
    quiet_fit(learn)
    assert modes == [(True, True), (False, False)]
    assert isinstance(learn.cbs[0], TrainEvalCallback)


def test_run_train_and_run_valid_are_read_at_each_event():
    class Counts(Callback):
        run_valid = False

        def __init__(self):
            self.seen = {True: 0, False: 0}

        def after_batch(self):
            self.seen[self.training] += 1

        def after_epoch(self):  # not a batch event: runs whatever the flags say
            self.run_train, self.run_valid = False, True  # from the next epoch on

    counts = Counts()
    learn = make_learner(cbs=counts, n_train=32, bs=8)
    learn.fit(2)
    n_train, n_valid = len(learn.dls.train), len(learn.dls.valid)
    assert counts.seen == {True: n_train, False: n_valid}  # epoch 0 trained only, epoch 1 validated only


def test_a_callback_with_its_own_call_gets_every_event_it_asks_for():
    class Everything(Callback):
        def __init__(self):
            self.events = []

        def __call__(self, event):
            self.events.append(event)

    cb = Everything()
    learn = make_learner(cbs=cb)
    learn.fit(1)
    assert cb.events[0] == "before_fit" and "after_fit" in cb.events[-2:]
    assert cb.events.count("after_batch") == len(learn.dls.train) + len(learn.dls.valid)


def test_x_and_y_are_the_batchs_first_input_and_target_as_the_callbacks_left_them():
    """The book's chapter 16 table: ``learn.x`` / ``learn.y`` are ``xb[0]`` / ``yb[0]``, read after a
    callback changed ``xb`` / ``yb`` in ``before_batch``; assigning ``learn.x`` / ``learn.y`` sets
    the first element of ``xb`` / ``yb``."""
    class ZeroTargets(Callback):
        def before_batch(self):
            self.learn.yb = (self.yb[0] * 0,)          # the book's way: assign the tuple

    class DoubleInputs(Callback):
        def before_batch(self):
            self.learn.x = self.x * 2                  # and the single element

    class Peek(Callback):
        def __init__(self):
            self.seen = []

        def after_pred(self):
            assert self.x is self.xb[0] and self.learn.y is self.learn.yb[0]
            self.seen.append((self.x.clone(), self.y.clone()))

    peek = Peek()
    learn = make_learner(cbs=[ZeroTargets(), DoubleInputs(), peek], n_train=16, bs=8)
    quiet_fit(learn)
    first_x = learn.dls.train.one_batch()[0]
    assert torch.equal(peek.seen[0][0], first_x * 2)
    assert all(not y.any() for _, y in peek.seen)
    assert learn.x is learn.xb[0]

    learn.yb = ()
    with pytest.raises(IndexError, match="no target"):
        learn.y
    fresh = make_learner()
    assert not hasattr(fresh, "x") and not hasattr(fresh, "y")  # no batch yet: inspect and hasattr see none
    with pytest.raises(AttributeError, match="no batch yet"):
        fresh.x


def test_x_and_y_may_not_be_shadowed_by_a_callback():
    class Bad(Callback):
        def before_batch(self):
            self.y = 0

    with pytest.raises(AttributeError, match=r"self\.learn\.y"):
        quiet_fit(make_learner(cbs=Bad))


@pytest.mark.parametrize("write", ["in_place", "assign", "loss_grad"])
def test_a_penalty_added_to_the_loss_in_after_loss_reaches_the_gradients(write):
    """The book's chapter 12 / 16 ``RNNRegularizer`` adds its penalty with
    ``self.learn.loss += ...``; current fastai code writes ``self.learn.loss_grad``: both train on
    the penalised loss, as one plain PyTorch step on the same batch does."""
    class Penalty(Callback):
        def after_loss(self):
            if not self.training: return
            penalty = 10. * self.model.weight.pow(2).sum()
            if write == "in_place": self.learn.loss += penalty
            elif write == "assign": self.learn.loss = self.loss + penalty
            else: self.learn.loss_grad = self.loss_grad + penalty

    learn = make_learner(cbs=Penalty(), n_train=8, bs=8)
    model = nn.Linear(2, 1)
    model.load_state_dict(learn.model.state_dict())
    x, y = learn.dls.train.one_batch()
    loss = nn.functional.mse_loss(model(x), y) + 10. * model.weight.pow(2).sum()
    loss.backward()
    expected = model.weight.detach() - 0.1 * model.weight.grad
    quiet_fit(learn)
    assert torch.allclose(learn.model.weight.detach(), expected, atol=1e-6)
    assert not learn.loss.requires_grad
