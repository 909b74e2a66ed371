"""Hooks and ActivationStats: what a layer computed, read back; hooks gone after a fit or an error."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.callback.hook import (ActivationStats, Hook, HookCallback, Hooks, dummy_eval, hook_output,
                                     hook_outputs, model_sizes, num_features_model)
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.optimizer import SGD

matplotlib.use("Agg")


def classification_learner(n_train=64, bs=16, cbs=None):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + 32, 6, generator=gen)
    y = (x[:, 0] > 0).long()
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:n_train], items[n_train:], bs=bs, shuffle=False, device="cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat(), opt_func=SGD, lr=0.1, cbs=cbs, device="cpu",
                   sanity_val_steps=0)


def quiet_fit(learn, n_epoch=1, cbs=None):
    with learn.no_bar(), learn.no_logging():
        learn.fit(n_epoch, cbs=cbs)


def n_hooks(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


def test_hook_output_stores_the_layers_output_and_is_removed_on_exit():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = torch.randn(5, 3)
    with hook_output(model[0]) as hook:
        out = model(x)
        torch.testing.assert_close(hook.stored, model[0](x))
        assert not hook.stored.requires_grad  # detached by default
    assert n_hooks(model) == 0
    model(torch.randn(2, 3))
    assert hook.stored.shape == (5, 4)  # nothing stored after removal
    assert out.shape == (5, 4)


def test_hook_output_with_grad_stores_the_gradient_of_the_output():
    layer = nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    with hook_output(layer, grad=True) as hook:
        (layer(x) * 3).sum().backward()
    torch.testing.assert_close(hook.stored, torch.full((4, 2), 3.0))


def test_hook_with_own_function_and_cpu():
    layer = nn.Linear(3, 2)
    with Hook(layer, lambda module, inp, out: (inp[0].shape, out.device.type), cpu=True) as hook:
        layer(torch.zeros(7, 3))
    assert hook.stored == (torch.Size([7, 3]), "cpu")


def test_hooks_on_a_model_hook_its_children():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 4, 3))
    with hook_outputs(model) as hooks:
        model(torch.zeros(2, 3, 16, 16))
        assert len(hooks) == 3
        assert [tuple(s.shape) for s in hooks.stored] == [(2, 8, 7, 7), (2, 8, 7, 7), (2, 4, 5, 5)]
    assert n_hooks(model) == 0
    with Hooks([model[0]], lambda m, i, o: o.mean()) as hooks:
        model(torch.zeros(1, 3, 16, 16))
        assert hooks[0].stored.ndim == 0


def test_model_sizes_and_dummy_eval_keep_the_mode():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1))
    model.train()
    assert model_sizes(model, size=(20, 20)) == [torch.Size([1, 4, 9, 9])] * 2 + [torch.Size([1, 4, 1, 1])]
    assert dummy_eval(model, size=(8, 8)).shape == (1, 4, 1, 1)
    assert model.training and n_hooks(model) == 0
    assert num_features_model(model) == 4


def test_hook_refuses_what_is_not_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        Hook(lambda x: x, lambda m, i, o: o)


class OutputNorms(HookCallback):
    def hook(self, module, inp, out):
        return float(out.norm())

    def before_fit(self):
        super().before_fit()
        self.seen = []

    def after_batch(self):
        self.seen.append(list(self.hooks.stored))


def test_hook_callback_hooks_layers_with_parameters_during_fit_only():
    cb = OutputNorms()
    learn = classification_learner(cbs=cb)
    quiet_fit(learn)
    # the two Linear layers (the ReLU has no parameters), on 4 training + 2 validation batches
    assert len(learn.dls.train) == 4 and len(learn.dls.valid) == 2
    assert len(cb.seen) == 6 and all(len(row) == 2 for row in cb.seen)
    assert n_hooks(learn.model) == 0


class Boom(Callback):
    def after_pred(self):
        if self.training and self.iter == 1:
            raise RuntimeError("boom")


def test_hook_callback_removes_its_hooks_after_an_exception():
    learn = classification_learner(cbs=[OutputNorms(), Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        quiet_fit(learn)
    assert n_hooks(learn.model) == 0


def test_activation_stats_records_each_layer_on_each_training_batch():
    learn = classification_learner(cbs=ActivationStats(with_hist=True))
    first_layer = learn.model[0]
    first_batch = next(iter(learn.dls.train))[0]
    expected = first_layer(first_batch).detach()  # the weights before the first step
    quiet_fit(learn, n_epoch=2)
    stats = learn.activation_stats
    assert len(stats.stats) == 8 and stats.n_layers == 2  # 4 training batches x 2 epochs, 2 Linear layers
    record = stats.stats[0][0]
    assert record["mean"] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert record["std"] == pytest.approx(float(expected.std()), rel=1e-5)
    assert record["near_zero"] == pytest.approx(float((expected <= 0.05).float().mean()))
    means, stds, near_zero = stats.layer_stats(-1)
    assert len(means) == len(stds) == len(near_zero) == 8
    assert stats.hist(0).shape == (8, 40)
    assert int(stats.hist(0)[0].sum()) == int(((expected >= 0) & (expected <= 10)).sum())
    assert stats.plot_layer_stats(-1) is None  # a notebook shows the figure once
    assert [len(ax.lines[0].get_xdata()) for ax in plt.gcf().axes] == [8, 8, 8]
    stats.color_dim(0)
    assert plt.gca().images[0].get_array().shape == (40, 8)
    with pytest.raises(IndexError, match="2 layers"):
        stats.layer_stats(5)
    assert n_hooks(learn.model) == 0


def test_activation_stats_every_and_without_hist():
    learn = classification_learner(cbs=ActivationStats(every=2))
    quiet_fit(learn)
    assert len(learn.activation_stats.stats) == 2  # training batches 0 and 2 of 4
    with pytest.raises(ValueError, match="with_hist=True"):
        learn.activation_stats.color_dim(0)


def test_activation_stats_before_training_says_what_to_do():
    with pytest.raises(ValueError, match="train with it first"):
        ActivationStats().layer_stats(0)


def test_course_imports():
    namespace: dict = {}
    exec("from fastlearn.callback.hook import *\nfrom fastlearn.callback.all import *\n"
         "from fastlearn.callback.fp16 import *", namespace)
    for name in ("Hook", "Hooks", "hook_output", "hook_outputs", "HookCallback", "ActivationStats", "model_sizes",
                 "dummy_eval", "MixedPrecision", "to_fp16", "GradientAccumulation", "SaveModelCallback"):
        assert name in namespace, name
    vision: dict = {}
    exec("from fastlearn.vision.all import *", vision)
    for name in ("ActivationStats", "hook_outputs", "GradientClip", "GradientAccumulation", "TerminateOnNaN",
                 "EarlyStoppingCallback", "SaveModelCallback", "MixedPrecision", "BnFreeze", "MixUp", "CutMix",
                 "ShowGraphCallback", "CSVLogger", "ReduceLROnPlateau", "Profiler", "RocAuc", "RocAucBinary",
                 "F1ScoreMulti", "DiceMulti", "JaccardCoeff", "LabelSmoothingCrossEntropy"):
        assert name in vision, name
