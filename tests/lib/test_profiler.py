"""The profiler: each part of a step gets the time spent in it, the parts add up to the step, the
Chrome trace is written, and learn.profile leaves the model as it was."""
from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fastlearn.callback import Callback
from fastlearn.callback.profiler import PHASES, Profiler
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.optimizer import SGD

FORWARD_S, DATA_S, CALLBACK_S = 0.03, 0.02, 0.015


class SlowItems(Dataset):
    """Each batch of 4 items takes DATA_S to load."""

    def __init__(self, n):
        self.x = torch.randn(n, 4)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        time.sleep(DATA_S / 4)
        return self.x[i], self.x[i].sum(0, keepdim=True)


class SlowModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x):
        time.sleep(FORWARD_S)
        return self.linear(x)


class SlowCallback(Callback):
    def after_batch(self):
        if self.training:
            time.sleep(CALLBACK_S)


class PhaseClock(Callback):
    """An independent clock on each training phase, outside the profiler's probes."""

    order = -20_000

    def __init__(self):
        self.seconds = 0.0

    def before_train(self):
        self.start = time.perf_counter()

    def after_train(self):
        self.seconds += time.perf_counter() - self.start


def slow_learner(tmp_path, cbs=None):
    dls = DataBunch.from_dls(DataLoader(SlowItems(24), batch_size=4, shuffle=True),
                             DataLoader(SlowItems(8), batch_size=8), device="cpu")
    torch.manual_seed(0)
    return Learner(dls, SlowModel(), loss_func=MSELossFlat(), opt_func=SGD, lr=0.01, path=tmp_path, cbs=cbs,
                   device="cpu", sanity_val_steps=0)


def test_each_part_gets_its_time_and_the_parts_add_up_to_the_step(tmp_path):
    clock, profiler = PhaseClock(), Profiler(n_batches=12, skip=0)
    learn = slow_learner(tmp_path, cbs=[SlowCallback(), clock, profiler])
    with learn.no_bar(), learn.no_logging():
        learn.fit(2)
    table = profiler.table
    assert list(table.index) == list(PHASES) + ["step"] and len(profiler.steps) == 12
    ms = table["ms per step"]
    assert ms["forward"] >= 1000 * FORWARD_S
    assert ms["data"] >= 1000 * DATA_S
    assert ms["callbacks"] >= 1000 * CALLBACK_S
    assert ms["forward"] < ms["step"] and ms["backward"] < 1000 * FORWARD_S  # nothing slept there
    for step in profiler.steps:
        assert sum(step[phase] for phase in PHASES) == pytest.approx(step["step"], rel=1e-6)
    # the steps cover the training phases as a clock outside the profiler measured them
    assert sum(step["step"] for step in profiler.steps) == pytest.approx(clock.seconds, rel=0.05)
    assert table["% of step"]["step"] == pytest.approx(100)
    assert not any(type(cb).__name__.endswith("Probe") for cb in learn.cbs)


def test_learn_profile_writes_a_chrome_trace_and_puts_the_model_back(tmp_path, capsys):
    learn = slow_learner(tmp_path)
    weights = learn.model.linear.weight.detach().clone()
    table = learn.profile(n_batches=3, skip=1)
    assert torch.equal(weights, learn.model.linear.weight)
    assert table["ms per step"]["forward"] >= 1000 * FORWARD_S
    printed = capsys.readouterr().out
    assert "forward" in printed and f"Chrome trace: {tmp_path / 'profile_trace.json'}" in printed
    trace = json.loads((tmp_path / "profile_trace.json").read_text())
    names = {event.get("name") for event in trace["traceEvents"]}
    assert {"data", "forward", "loss", "backward", "optimizer", "callbacks"} <= names
    assert "aten::addmm" in names  # torch's own operators inside the ranges


def test_profile_asks_for_fewer_batches_than_the_loader_gives(tmp_path):
    with pytest.raises(ValueError, match="n_batches=0"):
        Profiler(n_batches=0)
    learn = slow_learner(tmp_path)
    table = learn.profile(n_batches=7, skip=1, trace_path=None, show=False)  # 2 epochs of 6 batches
    assert table.index.name == "part (mean of 7 steps)" and not (tmp_path / "profile_trace.json").exists()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_each_part_holds_its_kernels(tmp_path):
    class Heavy(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 1)
            self.big = nn.Parameter(torch.randn(2048, 2048) / 50)

        def forward(self, x):
            y = self.big
            for _ in range(20):  # queued kernels: the forward part must wait for them
                y = torch.tanh(y @ self.big)
            return self.linear(x) + y.mean() * 0

    dls = DataBunch.from_dls(DataLoader(SlowItems(24), batch_size=4), DataLoader(SlowItems(8), batch_size=8),
                             device="cuda")
    learn = Learner(dls, Heavy(), loss_func=MSELossFlat(), opt_func=SGD, lr=0.01, path=tmp_path, device="cuda",
                    sanity_val_steps=0)
    table = learn.profile(n_batches=4, skip=1, trace_path="cuda_trace.json", show=False)
    assert table["ms per step"]["forward"] > table["ms per step"]["loss"]
    trace = json.loads((tmp_path / "cuda_trace.json").read_text())
    assert any(event.get("cat") == "kernel" for event in trace["traceEvents"])
