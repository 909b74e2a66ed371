"""Mixed precision: bf16 on CPU against fp32, the CPU fallback of to_fp16, the gradient scaler's
skips and checkpointed state (on CPU with float16 autocast), and the CUDA float16 path."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from fastlearn import precision as precision_module
from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.metrics import Metric, accuracy
from fastlearn.precision import MixedPrecision

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def make_dls(device="cpu", n=320, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    items = list(zip(x, y))
    return DataBunch.from_dsets(items[:256], items[256:], bs=32, seed=1, device=device)


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))


class Dtypes(Metric):
    """Records the dtypes of the predictions and losses the metrics receive."""

    def reset(self):
        self.seen = set()

    def accumulate(self, learn):
        self.seen.add((learn.pred.dtype, learn.loss.dtype))

    @property
    def value(self):
        return 0.0


def make_learner(device="cpu", **kwargs):
    return Learner(make_dls(device), make_model(), loss_func=CrossEntropyLossFlat(), metrics=[accuracy, Dtypes()],
                   device=device, **kwargs)


def fit(learn, epochs=4, lr=1e-2):
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr)
    return learn.recorder.values[-1]


def test_bf16_on_cpu_trains_close_to_fp32():
    fp32 = fit(make_learner())
    learn = make_learner(precision="bf16")
    assert learn.mixed_precision.dtype == torch.bfloat16 and not learn.mixed_precision.uses_scaler
    bf16 = fit(learn)
    assert fp32[1] < 0.8  # it did learn: valid loss well under log(3)
    assert abs(bf16[1] - fp32[1]) < 0.05, (bf16, fp32)
    assert abs(bf16[2] - fp32[2]) < 0.07
    # metrics see float32 predictions and losses
    assert learn.metrics[1].seen == {(torch.float32, torch.float32)}
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())


def test_to_fp16_on_cpu_uses_bfloat16_and_says_so_once(monkeypatch):
    monkeypatch.setattr(precision_module, "_cpu_fp16_said", False)
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = make_learner().to_fp16()
        second = make_learner(precision="fp16")
    said = [w for w in caught if "bfloat16" in str(w.message)]
    assert len(said) == 1
    first.model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    preds, _ = first.get_preds()
    assert seen and set(seen) == {torch.bfloat16}
    assert preds.dtype == torch.float32
    assert second.mixed_precision.dtype == torch.bfloat16


def test_precision_argument_config_default_and_to_fp32(tmp_path, monkeypatch):
    assert not any(isinstance(cb, MixedPrecision) for cb in make_learner().cbs)
    config = tmp_path / "config.ini"
    config.write_text("[defaults]\nprecision = bf16\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(config))
    learn = make_learner()
    assert learn.mixed_precision.precision == "bf16"
    learn.to_fp32()
    assert not any(isinstance(cb, MixedPrecision) for cb in learn.cbs)
    learn.to_bf16().to_bf16()
    assert sum(isinstance(cb, MixedPrecision) for cb in learn.cbs) == 1
    with pytest.raises(ValueError, match="expected one of"):
        make_learner(precision="fp8")
    with pytest.raises(ValueError, match="fp16"):
        MixedPrecision("half")


class PoisonGrad(Callback):
    """Puts an inf in one gradient at the given training iterations."""

    def __init__(self, iters):
        self.iters, self.weights_before = set(iters), {}

    def after_backward(self):
        if self.train_iter in self.iters:
            self.weights_before[self.train_iter] = [p.detach().clone() for p in self.model.parameters()]
            next(self.model.parameters()).grad.view(-1)[0] = float("inf")


def scaled_fp16_learner(**kwargs):
    """float16 autocast with a real gradient scaler, on the CPU (the CUDA path's logic)."""
    learn = make_learner(**kwargs)
    learn.add_cb(MixedPrecision("fp16", cpu_fallback=False, init_scale=2.0 ** 10))
    return learn


def test_scaler_skips_inf_steps_counts_them_and_lowers_the_scale():
    learn = scaled_fp16_learner()
    poison = PoisonGrad(iters=[3, 5])
    learn.add_cb(poison)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=1e-2)
    mixed = learn.mixed_precision
    assert mixed.uses_scaler and mixed.skipped_steps == 2
    assert mixed.scaler.get_scale() == 2.0 ** 10 / 4
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    assert learn.metrics[1].seen == {(torch.float32, torch.float32)}


def test_scaler_state_is_saved_and_loaded_with_the_learner(tmp_path):
    learn = scaled_fp16_learner(path=tmp_path)
    learn.add_cb(PoisonGrad(iters=[1]))
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=1e-2)
    learn.save("amp")
    fresh = scaled_fp16_learner(path=tmp_path)
    assert fresh.mixed_precision.skipped_steps == 0
    fresh.load("amp")
    with fresh.no_bar(), fresh.no_logging():
        fresh.fit(1, lr=0.0)  # the scaler is created at fit and takes the loaded state
    assert fresh.mixed_precision.skipped_steps == 1
    assert fresh.mixed_precision.scaler.get_scale() == learn.mixed_precision.scaler.get_scale()


@pytest.mark.cuda
@cuda
def test_fp16_on_cuda_uses_float16_and_a_gradient_scaler(tmp_path):
    learn = make_learner(device="cuda", path=tmp_path).to_fp16()
    seen = []
    learn.model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    fp16 = fit(learn)
    assert torch.float16 in seen
    assert learn.mixed_precision.uses_scaler
    fp32 = fit(make_learner(device="cuda"))
    assert abs(fp16[1] - fp32[1]) < 0.05
    assert learn.metrics[1].seen == {(torch.float32, torch.float32)}
    learn.save("amp")
    fresh = make_learner(device="cuda", path=tmp_path).to_fp16()
    fresh.load("amp")
    with fresh.no_bar(), fresh.no_logging():
        fresh.fit(1, lr=0.0)
    assert fresh.mixed_precision.scaler.get_scale() >= learn.mixed_precision.scaler.get_scale()


@pytest.mark.cuda
@cuda
def test_fp16_on_cuda_skips_inf_steps():
    learn = make_learner(device="cuda").to_fp16()
    learn.add_cb(PoisonGrad(iters=[2]))
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=1e-2)
    assert learn.mixed_precision.skipped_steps == 1
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


@pytest.mark.cuda
@cuda
def test_bf16_on_cuda_trains_close_to_fp32():
    fp32 = fit(make_learner(device="cuda"))
    bf16 = fit(make_learner(device="cuda").to_bf16())
    assert abs(bf16[1] - fp32[1]) < 0.05


class FlushSeen(Callback):
    """Records, at every batch, whether this thread computes subnormal floats as zero."""

    def before_fit(self):
        self.seen = []

    def before_batch(self):
        self.seen.append((self.training, precision_module.denormals_flushed_now()))


def test_training_and_predicting_on_cpu_flush_denormals_then_put_the_mode_back():
    tiny = torch.tensor(1e-40)  # subnormal in float32
    assert not precision_module.denormals_flushed_now() and tiny.mul(1.0).item() > 0
    learn = make_learner()
    seen = FlushSeen()
    learn.fit(1, 1e-2, cbs=seen)
    assert {training for training, _ in seen.seen} == {True, False}  # training and validation batches
    assert all(flushed for _, flushed in seen.seen)
    assert not precision_module.denormals_flushed_now()  # put back after the fit
    learn.add_cb(seen)
    seen.seen = []
    learn.get_preds()
    assert seen.seen and all(flushed for _, flushed in seen.seen)
    assert tiny.mul(1.0).item() > 0


def test_flush_denormal_keeps_a_users_own_setting_and_obeys_the_config(tmp_path, monkeypatch):
    torch.set_flush_denormal(True)
    try:
        make_learner().fit(1, 1e-2)
        assert precision_module.denormals_flushed_now()  # not switched off behind the user's back
    finally:
        torch.set_flush_denormal(False)
    config = tmp_path / "config.ini"
    config.write_text("[defaults]\nflush_denormal = false\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(config))
    seen = FlushSeen()
    make_learner().fit(1, 1e-2, cbs=seen)
    assert seen.seen and not any(flushed for _, flushed in seen.seen)
    config.write_text("[defaults]\nflush_denormal = sometimes\n")
    with pytest.raises(ValueError, match="flush_denormal = 'sometimes'; expected true or false"):
        make_learner().fit(1, 1e-2)


def test_a_learner_reads_flush_denormal_when_built_and_obeys_its_own_setting(tmp_path, monkeypatch):
    config = tmp_path / "config.ini"
    config.write_text("[defaults]\nflush_denormal = false\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(config))
    learn = make_learner()
    assert learn.flush_denormal is False
    monkeypatch.delenv("FASTLEARN_CONFIG")  # later changes to the config leave a built learner as it is
    seen = FlushSeen()
    learn.fit(1, 1e-2, cbs=seen)
    assert seen.seen and not any(flushed for _, flushed in seen.seen)
    learn.flush_denormal = True  # settable: the next fit and predictions flush
    learn.fit(1, 1e-2, cbs=seen)
    assert seen.seen and all(flushed for _, flushed in seen.seen)
    assert make_learner().flush_denormal is True  # the default
    assert not precision_module.denormals_flushed_now()


def test_the_flush_probe_agrees_with_torchs_arithmetic_in_both_modes():
    tiny = torch.tensor(1e-40)  # subnormal in float32
    try:
        for flush in (True, False):
            if not torch.set_flush_denormal(flush):
                pytest.skip("this CPU cannot flush subnormal floats")
            assert precision_module.denormals_flushed_now() is flush
            assert (tiny.mul(1.0).item() == 0.0) is flush
    finally:
        torch.set_flush_denormal(False)
