"""The loop always cleans up: after any exception, the ``cleanup`` event restores what each callback
changed (autocast, progress bars and logger, the distributed wrapper, ``no_sync``, the model's
mode, a recurrent model's state, callbacks added for one fit, lr_find's temporary state), and
the exception reaches the caller unchanged."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.distributed as dist
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.distributed import DistributedTrainer
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.progress import print_table_row
from fastlearn.schedule import LRFinder
from fastlearn.training import GradientAccumulation

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class Boom(Exception):
    """The error a batch raises in these tests."""


class FailingModel(nn.Module):
    """A small regression model whose ``fail_at``-th forward call (counting from 1) raises ``error``."""

    def __init__(self, error: BaseException, fail_at: int = 2, when: str = "train"):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.error, self.fail_at, self.when, self.calls = error, fail_at, when, 0

    def forward(self, x):
        if self.when == "any" or (self.when == "train") == self.training:
            self.calls += 1
            if self.calls == self.fail_at:
                raise self.error
        return self.linear(x)


def make_learner(model: nn.Module, cbs=None, device="cpu") -> Learner:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=gen)
    items = list(zip(x, x.sum(1, keepdim=True)))
    dls = DataBunch.from_dsets(items[:32], items[32:], bs=8, device=device)
    return Learner(dls, model, loss_func=MSELossFlat(), cbs=cbs, device=device)


class Events(Callback):
    order = 100

    def __init__(self):
        self.seen = []

    def before_fit(self): self.seen.append("before_fit")
    def after_fit(self): self.seen.append("after_fit")
    def after_cancel_fit(self): self.seen.append("after_cancel_fit")
    def cleanup(self): self.seen.append("cleanup")


def _matmul_dtype(device="cpu") -> torch.dtype:
    a = torch.randn(4, 4, device=device)
    return (a @ a).dtype


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("error", [Boom("batch 2 failed"), KeyboardInterrupt()])
def test_autocast_is_switched_off_after_a_batch_raises(precision, error):
    learn = make_learner(FailingModel(error))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # to_fp16 on a CPU says it uses bfloat16
        learn.to_bf16() if precision == "bf16" else learn.to_fp16()
        with pytest.raises(type(error)) as raised:
            learn.fit(1)
    assert raised.value is error  # the original exception, unchanged
    assert not torch.is_autocast_enabled("cpu")
    assert _matmul_dtype() == torch.float32


def test_autocast_is_switched_off_after_a_prediction_raises():
    learn = make_learner(FailingModel(Boom("validation failed"), fail_at=1, when="eval")).to_bf16()
    with pytest.raises(Boom):
        learn.get_preds()
    assert not torch.is_autocast_enabled("cpu") and _matmul_dtype() == torch.float32


@pytest.mark.cuda
@cuda
def test_autocast_and_scaler_on_cuda_are_reset_after_a_batch_raises():
    learn = make_learner(FailingModel(Boom("cuda batch")), device="cuda").to_fp16()
    with pytest.raises(Boom):
        learn.fit(1)
    assert not torch.is_autocast_enabled("cuda") and _matmul_dtype("cuda") == torch.float32


def test_cleanup_runs_last_after_an_exception_and_after_a_normal_fit():
    events = Events()
    learn = make_learner(FailingModel(Boom("x")), cbs=events)
    with pytest.raises(Boom):
        learn.fit(1)
    assert events.seen == ["before_fit", "cleanup"]  # after_fit is for fits that finish
    events.seen.clear()
    learn.model.fail_at = -1
    learn.fit(1)
    assert events.seen == ["before_fit", "after_fit", "cleanup"]


def test_show_training_loop_lists_cleanup_and_its_callbacks(capsys):
    learn = make_learner(nn.Linear(4, 1), cbs=Events()).to_bf16()
    learn.show_training_loop()
    lines = capsys.readouterr().out.splitlines()
    cleanup = next(line for line in lines if line.strip().startswith("cleanup"))
    for name in ("TrainEvalCallback", "MixedPrecision", "ProgressCallback", "Events"):
        assert name in cleanup
    assert lines.index(cleanup) > next(i for i, line in enumerate(lines) if line.strip().startswith("after_fit"))


def test_a_misspelt_cleanup_method_is_an_error():
    class Cleaner(Callback):
        def cleanup_fit(self):
            pass

    with pytest.raises(AttributeError, match="did you mean 'cleanup'"):
        make_learner(nn.Linear(4, 1), cbs=Cleaner())


def test_a_failing_cleanup_neither_hides_the_error_nor_stops_the_others():
    class BrokenCleanup(Callback):
        def cleanup(self):
            raise RuntimeError("cleanup broke")

    error = Boom("the real problem")
    learn = make_learner(FailingModel(error), cbs=BrokenCleanup()).to_bf16()
    with pytest.warns(RuntimeWarning, match="BrokenCleanup.cleanup failed after Boom"):
        with pytest.raises(Boom) as raised:
            learn.fit(1)
    assert raised.value is error
    assert not torch.is_autocast_enabled("cpu")  # MixedPrecision still cleaned up
    learn.model.fail_at = -1
    with pytest.raises(RuntimeError, match="cleanup broke"):  # with nothing else wrong, it is the error
        learn.fit(1)


def test_progress_bars_are_closed_and_the_logger_restored(capsys):
    learn = make_learner(FailingModel(Boom("x"), fail_at=3))
    with pytest.raises(Boom):
        learn.fit(2)
    assert learn.logger is print_table_row
    assert learn.progress.master is None and learn.progress.bar is None
    learn.model.fail_at = -1
    capsys.readouterr()
    learn.fit(1)  # the next fit shows its table as usual
    assert "train_loss" in capsys.readouterr().out


@pytest.mark.parametrize("mode_before,when", [(False, "train"), (True, "eval")])
def test_the_model_gets_back_its_mode(mode_before, when):
    learn = make_learner(FailingModel(Boom("x"), fail_at=1, when=when))
    learn.model.train(mode_before)
    with pytest.raises(Boom):
        learn.fit(1)
    assert learn.model.training is mode_before and learn.training is False
    learn.model.fail_at = -1
    learn.fit(1)  # a fit that finishes leaves the model in eval mode, as before
    assert learn.model.training is False


def test_callbacks_added_for_one_fit_are_removed_after_an_exception():
    events = Events()
    learn = make_learner(FailingModel(Boom("x")))
    n_cbs = len(learn.cbs)
    with pytest.raises(Boom):
        learn.fit(1, cbs=[events])
    assert events not in learn.cbs and len(learn.cbs) == n_cbs
    assert events.seen[-1] == "cleanup"


def test_lr_find_puts_everything_back_after_an_exception():
    learn = make_learner(FailingModel(Boom("lr_find batch"), fail_at=3))
    learn.create_opt()
    learn.freeze_to(0)
    weights = copy.deepcopy(learn.model.state_dict())
    opt_state = copy.deepcopy(learn.opt.state_dict())
    torch.manual_seed(5)
    expected_draw = torch.rand(3)
    torch.manual_seed(5)
    with pytest.raises(Boom):
        learn.lr_find(show_plot=False)
    torch.testing.assert_close(torch.rand(3), expected_draw)  # the RNG is where it was
    for key, value in weights.items():
        assert torch.equal(learn.model.state_dict()[key], value), key
    assert learn.opt.state_dict()["param_groups"] == opt_state["param_groups"]
    assert not any(isinstance(cb, LRFinder) for cb in learn.cbs)
    assert learn.recorder.silent is False and learn.logger is print_table_row


def test_summary_removes_its_hooks_when_the_model_raises():
    learn = make_learner(FailingModel(Boom("summary"), fail_at=1, when="any"))
    with pytest.raises(Boom):
        learn.summary()
    assert all(not module._forward_hooks for module in learn.model.modules())


def test_a_recurrent_model_is_reset_after_an_exception():
    from fastlearn.text.callbacks import ModelResetter

    class Recurrent(FailingModel):
        resets = 0

        def reset(self):
            self.resets += 1

    learn = make_learner(Recurrent(Boom("x")), cbs=ModelResetter())
    with pytest.raises(Boom):
        learn.fit(1)
    # before the sanity validation of the fit's first batches, before training, and once the loop ended
    assert learn.model.resets == 3


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_distributed_state_is_undone_after_an_exception(one_process_group):
    wrapped = []

    class Spy(Callback):
        order = 100

        def before_batch(self):
            wrapped.append(self.learn.model)

    model = FailingModel(Boom("rank 0 failed"))
    learn = make_learner(model, cbs=[DistributedTrainer(), GradientAccumulation(n_acc=1000), Spy()])
    dls = learn.dls
    with pytest.raises(Boom):
        learn.fit(1)
    ddp = wrapped[-1]
    assert isinstance(ddp, nn.parallel.DistributedDataParallel)
    assert learn.model is model and learn.dls is dls  # the plain model and loaders are back
    assert ddp.require_backward_grad_sync  # and no no_sync() context was left open
