"""Training knobs: gradient accumulation, gradient clipping (also under a gradient scaler),
channels_last, torch.compile in place, BnFreeze."""
from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat, MSELossFlat
from fastlearn.optimizer import SGD
from fastlearn.precision import MixedPrecision
from fastlearn.training import BnFreeze, CleanEpochs, GradientAccumulation, GradientClip, compile_model


def regression_dls(bs, n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 32, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(n + 32, 1, generator=g)
    items = list(zip(x, y))
    return DataBunch.from_dsets(items[:n], items[n:], bs=bs, seed=5, device="cpu")


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))


def learner(dls, model=None, **kwargs):
    return Learner(dls, model if model is not None else mlp(), loss_func=MSELossFlat(), opt_func=SGD, lr=0.05,
                   **kwargs)


def fit(learn, epochs=2, cbs=None):
    with learn.no_bar(), learn.no_logging():
        learn.fit(epochs, cbs=cbs)
    return [p.detach().clone() for p in learn.model.parameters()]


def test_accumulating_four_batches_of_16_equals_batches_of_64():
    big = fit(learner(regression_dls(bs=64)))
    accumulated = fit(learner(regression_dls(bs=16)), cbs=GradientAccumulation(n_acc=64))
    plain_small = fit(learner(regression_dls(bs=16)))
    for a, b in zip(accumulated, big):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(plain_small, big))


class NoSyncRecorder(nn.Module):
    """Stands for a DistributedDataParallel model: records whether each forward ran under no_sync."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.syncing, self.calls = inner, True, []

    @contextlib.contextmanager
    def no_sync(self):
        self.syncing = False
        try:
            yield
        finally:
            self.syncing = True

    def forward(self, x):
        if self.training:
            self.calls.append(self.syncing)
        return self.inner(x)


def test_accumulation_skips_gradient_sync_on_batches_that_do_not_step():
    model = NoSyncRecorder(mlp())
    fit(learner(regression_dls(bs=16), model=model), epochs=1, cbs=GradientAccumulation(n_acc=64))
    # 16 batches of 16: every 4th batch steps and syncs, the other 3 run under no_sync
    assert model.calls == [False, False, False, True] * 4


class GradNorm(Callback):
    """The gradients' total norm right after each optimizer step (before zero_grad)."""

    def before_fit(self):
        self.norms = []

    def after_step(self):
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def test_gradient_clip_limits_the_norm():
    learn = learner(regression_dls(bs=32))
    norms, clip = GradNorm(), GradientClip(max_norm=0.01)
    fit(learn, epochs=1, cbs=[clip, norms])
    assert len(norms.norms) == 8
    assert all(abs(n - 0.01) < 1e-5 for n in norms.norms)
    assert clip.last_norm > 0.01  # there was something to clip


def test_gradient_clip_unscales_before_clipping_under_a_gradient_scaler():
    learn = Learner(regression_dls(bs=32), mlp(), loss_func=MSELossFlat(), opt_func=SGD, lr=0.05)
    learn.add_cb(MixedPrecision("fp16", cpu_fallback=False, init_scale=2.0 ** 12))
    norms, clip = GradNorm(), GradientClip(max_norm=0.01)
    fit(learn, epochs=1, cbs=[clip, norms])
    # clipped in real units: the norm after the step is max_norm, not max_norm / scale
    assert len(norms.norms) == 8 and all(abs(n - 0.01) < 1e-4 for n in norms.norms)
    assert 0.01 < clip.last_norm < 1e3  # the unscaled norm, not norm * 4096


def test_clip_and_accumulation_validate_their_arguments():
    with pytest.raises(ValueError, match="n_acc"):
        GradientAccumulation(n_acc=0)
    with pytest.raises(ValueError, match="max_norm"):
        GradientClip(max_norm=0)


def image_dls(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 12, 12, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    items = list(zip(x, y))
    return DataBunch.from_dsets(items[:48], items[48:], bs=16, seed=1, device="cpu")


def convnet():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 2))


def test_channels_last_model_and_batches_train_like_the_default_layout():
    reference = Learner(image_dls(), convnet(), loss_func=CrossEntropyLossFlat(), opt_func=SGD, lr=0.1)
    expected = fit(reference, epochs=1)
    learn = Learner(image_dls(), convnet(), loss_func=CrossEntropyLossFlat(), opt_func=SGD, lr=0.1)
    learn.to_channels_last()
    layouts = []
    learn.model[0].register_forward_pre_hook(
        lambda m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    got = fit(learn, epochs=1)
    assert learn.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert layouts and all(layouts)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_learn_compile_takes_the_backend(tmp_path):
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    learn = learner(regression_dls(bs=32), path=tmp_path)
    assert learn.compile(backend=counting_backend) is learn
    fit(learn, epochs=1)
    assert graphs, "learn.compile(backend=...) did not reach torch.compile"


def test_compile_in_place_keeps_the_model_freezing_and_checkpoints(tmp_path):
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    def two_groups(m):
        return [list(m[0].parameters()), list(m[2].parameters())]

    model = mlp()
    learn = learner(regression_dls(bs=32), model=model, path=tmp_path, splitter=two_groups)
    keys = list(model.state_dict())
    compile_model(learn, backend=counting_backend)
    assert learn.model is model and list(model.state_dict()) == keys
    learn.freeze()
    assert not model[0].weight.requires_grad and model[2].weight.requires_grad
    learn.unfreeze()
    compiled = fit(learn, epochs=1)
    assert graphs, "the compiled forward was not used"
    expected = fit(learner(regression_dls(bs=32)), epochs=1)
    for a, b in zip(compiled, expected):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    learn.save("compiled")
    fresh = learner(regression_dls(bs=32), path=tmp_path, splitter=two_groups).load("compiled")
    for a, b in zip(fresh.model.parameters(), model.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="inductor"):
        compile_model(learn, mode="max-autotune", backend="eager")


def bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU()), nn.Linear(16, 1))


def test_bnfreeze_keeps_frozen_batchnorm_statistics():
    def run(cbs):
        model = bn_model()
        learn = learner(regression_dls(bs=32), model=model, train_bn=False,
                        splitter=lambda m: [list(m[0].parameters()), list(m[1].parameters())])
        learn.freeze()
        before = model[0][1].running_mean.clone()
        fit(learn, epochs=1, cbs=cbs)
        return before, model[0][1].running_mean
    before, after = run([BnFreeze()])
    assert torch.equal(before, after)
    before, after = run([])
    assert not torch.equal(before, after)


class InputScale(Callback):
    """Records, for every training epoch, the largest input the model saw."""

    def __init__(self):
        self.seen = []

    def before_train(self):
        self.seen.append(0.0)

    def before_batch(self):
        if self.training:
            self.seen[-1] = max(self.seen[-1], float(self.learn.xb[0].abs().max()))


def augmented_dls():
    """Regression loaders whose training-only batch transform adds 10 to every tensor."""
    from fastlearn.data.dataloader import as_pipeline
    from fastlearn.data.transforms import Transform
    dls = regression_dls(bs=64)
    dls.train.after_batch = as_pipeline([Transform(lambda t: t + 10, split_idx=0)])
    return dls


def test_clean_epochs_trains_the_last_epochs_without_training_only_transforms():
    learn = learner(augmented_dls())
    scale = InputScale()
    fit(learn, epochs=3, cbs=[scale, CleanEpochs(1)])
    augmented, clean = scale.seen[:2], scale.seen[2]
    assert all(s > 8 for s in augmented) and clean < 6
    assert learn.dls.train.split_idx == 0  # the loader is put back


def test_clean_epochs_puts_the_loader_back_when_the_fit_fails():
    class Fail(Callback):
        def after_batch(self):
            if self.training and self.epoch == 1:
                raise RuntimeError("stop here")

    learn = learner(augmented_dls())
    with pytest.raises(RuntimeError, match="stop here"):
        fit(learn, epochs=2, cbs=[CleanEpochs(1), Fail()])
    assert learn.dls.train.split_idx == 0
    with pytest.raises(ValueError, match="non-negative int"):
        CleanEpochs(-1)


@pytest.mark.parametrize("epochs, clean_epochs, clean_seen", [(2, None, [False, False, True]),
                                                              (3, None, [False, False, True, True]),
                                                              (4, None, [False, False, False, True, True]),
                                                              (1, None, [False, False]),
                                                              (3, 1, [False, False, False, True]),
                                                              (2, 0, [False, False, False])])
def test_fine_tune_ends_on_clean_images_by_default(epochs, clean_epochs, clean_seen):
    model = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 1))
    learn = learner(augmented_dls(), model=model,
                    splitter=lambda m: [list(m[0].parameters()), list(m[1].parameters())])
    scale = InputScale()
    learn.add_cb(scale)
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs, clean_epochs=clean_epochs, cbs=Callback())
    assert [s < 6 for s in scale.seen] == clean_seen  # the frozen epoch, then the unfrozen ones
    assert learn.dls.train.split_idx == 0


def test_clean_epochs_reaches_item_transforms_in_kept_worker_processes():
    g = torch.Generator().manual_seed(0)
    items = list(zip(torch.randn(288, 8, generator=g), torch.randn(288, 1, generator=g)))
    dls = DataBunch.from_dsets(items[:256], items[256:], bs=64, device="cpu", num_workers=1)
    from fastlearn.data.dataloader import as_pipeline
    from fastlearn.data.transforms import Transform
    dls.train.after_item = as_pipeline([Transform(lambda t: t + 10, split_idx=0)])
    assert dls.train.keeps_workers
    learn = learner(dls)
    scale = InputScale()
    fit(learn, epochs=3, cbs=[scale, CleanEpochs(1)])
    assert [s < 6 for s in scale.seen] == [False, False, True]
    assert learn.dls.train.split_idx == 0


def test_body_lr_mult_falls_from_fastais_100_to_3_with_the_images_seen():
    from fastlearn.training import FEW_IMAGES, MANY_IMAGES, body_lr_mult
    assert body_lr_mult(None) == body_lr_mult(1) == body_lr_mult(FEW_IMAGES) == 100
    assert body_lr_mult(MANY_IMAGES) == body_lr_mult(10 * MANY_IMAGES) == 3
    between = [body_lr_mult(n) for n in range(FEW_IMAGES, MANY_IMAGES + 1, 250)]
    assert all(a > b for a, b in zip(between, between[1:]))
    assert body_lr_mult((FEW_IMAGES * MANY_IMAGES) ** 0.5) == pytest.approx((100 * 3) ** 0.5)


class UnfrozenRates(Callback):
    def __init__(self):
        self.fits, self.rates = 0, []

    def before_fit(self):
        self.fits += 1

    def before_step(self):
        if self.fits == 2:
            self.rates.append([group["lr"] for group in self.opt.param_groups])


@pytest.mark.parametrize("n, bs, epochs, lr_mult, expected", [(256, 32, 2, None, 100),     # 512 images seen
                                                              (256, 32, 40, None, 3),      # 10,240
                                                              (256, 32, 40, 100, 100),     # asked for
                                                              (256, 32, 12, None, 6.793)])  # 3,072: in between
def test_fine_tune_body_rates_follow_the_images_the_unfrozen_phase_sees(n, bs, epochs, lr_mult, expected):
    model = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 1))
    learn = learner(regression_dls(bs, n=n), model=model,
                    splitter=lambda m: [list(m[0].parameters()), list(m[1].parameters())])
    rates = UnfrozenRates()
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs, freeze_epochs=1, lr_mult=lr_mult, cbs=rates)
    assert rates.rates
    for lrs in rates.rates:
        assert max(lrs) / min(lrs) == pytest.approx(expected, rel=0.01)
