"""Optimizers and param groups: defaults, discriminative learning rates, weight decay, freezing."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.optimizer import SGD, AdamW, get_hyper, set_hyper, spread_lr


def body_head_model():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    head = nn.Sequential(nn.Linear(8, 3))
    return nn.Sequential(body, head)


def three_groups(model):
    body, head = model[0], model[1]
    return [list(body[0].parameters()) + list(body[1].parameters()), list(body[3].parameters()),
            list(head.parameters())]


def make_learner(**kwargs):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:32], items[32:], bs=8, seed=0, device="cpu")
    kwargs.setdefault("splitter", three_groups)
    return Learner(dls, body_head_model(), loss_func=CrossEntropyLossFlat(), device="cpu", **kwargs)


def quiet(learn, method, *args, **kwargs):
    with learn.no_bar(), learn.no_logging():
        getattr(learn, method)(*args, **kwargs)


def lrs_by_param(learn):
    return {id(p): g["lr"] for g in learn.opt.param_groups for p in g["params"]}


def test_slice_spreads_learning_rates_geometrically():
    learn = make_learner()
    quiet(learn, "fit", 1, slice(1e-5, 1e-3))
    by_param = lrs_by_param(learn)
    groups = three_groups(learn.model)
    assert [by_param[id(g[0])] for g in groups] == pytest.approx([1e-5, 1e-4, 1e-3])
    for group in groups:  # every parameter of a splitter group has the group's rate
        assert len({by_param[id(p)] for p in group}) == 1


def test_slice_hi_gives_a_tenth_to_all_but_the_last_group():
    learn = make_learner()
    quiet(learn, "fit", 1, slice(1e-2))
    assert get_hyper(learn.opt, "lr") == pytest.approx([1e-3, 1e-3, 1e-2])
    assert spread_lr(slice(1e-2), 1).tolist() == [1e-2]
    assert spread_lr(0.1, 3).tolist() == [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="2 learning rates given for 3"):
        spread_lr([0.1, 0.2], 3)
    with pytest.raises(ValueError, match="no upper value"):
        spread_lr(slice(1e-3, None), 3)


def test_discriminative_rates_drive_the_updates():
    """With plain SGD each group moves by exactly its own lr times its gradient."""
    learn = make_learner(opt_func=SGD, train_bn=False)
    items = list(zip(torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])))
    learn.dls = DataBunch.from_dsets(items, items, bs=8, shuffle=False, device="cpu")  # one step
    before = [p.detach().clone() for p in learn.model.parameters()]
    grads = {}

    class KeepGrads(Callback):
        def before_step(self):
            for p in self.learn.model.parameters():
                grads[id(p)] = p.grad.detach().clone()

    quiet(learn, "fit", 1, slice(1e-3, 1e-1), cbs=KeepGrads())
    lr_of = dict(zip([id(p) for g in three_groups(learn.model) for p in g],
                     [lr for g, lr in zip(three_groups(learn.model), [1e-3, 1e-2, 1e-1]) for _ in g]))
    for p, old in zip(learn.model.parameters(), before):
        torch.testing.assert_close(p.detach(), old - lr_of[id(p)] * grads[id(p)], atol=1e-7, rtol=0)


def test_no_weight_decay_on_bias_and_norm_unless_asked():
    def zero_loss(pred, targ):
        return (pred * 0).sum()

    for wd_bn_bias in (False, True):
        learn = make_learner(opt_func=SGD, wd=0.1, wd_bn_bias=wd_bn_bias)
        learn.loss_func = zero_loss
        before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
        quiet(learn, "fit", 1, 0.1)
        n_steps = len(learn.dls.train)
        shrink = (1 - 0.1 * 0.1) ** n_steps
        for name, p in learn.model.named_parameters():
            is_norm_or_bias = name.endswith("bias") or name.startswith("0.1.")
            if is_norm_or_bias and not wd_bn_bias:
                assert torch.equal(p.detach(), before[name]), name
            else:
                torch.testing.assert_close(p.detach(), before[name] * shrink, rtol=1e-5, atol=1e-7)


def test_wd_argument_sets_the_decay_of_decayed_groups_only():
    learn = make_learner()
    quiet(learn, "fit", 1, 1e-3, wd=0.3)
    decays = {g["weight_decay"] for g in learn.opt.param_groups if g.get("fl_decay", True)}
    no_decays = {g["weight_decay"] for g in learn.opt.param_groups if not g.get("fl_decay", True)}
    assert decays == {0.3} and no_decays == {0.0}


def test_freeze_trains_only_the_head_and_norm_layers_with_train_bn():
    learn = make_learner()
    learn.freeze()
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    quiet(learn, "fit", 1, 1e-2)
    changed = {n for n, p in learn.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"0.1.weight", "0.1.bias", "1.0.weight", "1.0.bias"}

    learn = make_learner(train_bn=False)
    learn.freeze()
    quiet(learn, "fit", 1, 1e-2)
    trainable = {n for n, p in learn.model.named_parameters() if p.requires_grad}
    assert trainable == {"1.0.weight", "1.0.bias"}

    learn.freeze_to(1)
    trainable = {n for n, p in learn.model.named_parameters() if p.requires_grad}
    assert trainable == {"0.3.weight", "0.3.bias", "1.0.weight", "1.0.bias"}
    learn.unfreeze()
    assert all(p.requires_grad for p in learn.model.parameters())
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    quiet(learn, "fit", 1, 1e-2)
    assert all(not torch.equal(p, before[n]) for n, p in learn.model.named_parameters())


def test_sgd_by_hand_like_the_course():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = SGD(model.parameters(), 0.1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    w0 = model.weight.detach().clone()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    grad = model.weight.grad.clone()
    opt.step()
    opt.zero_grad()
    torch.testing.assert_close(model.weight.detach(), w0 - 0.1 * grad)
    assert model.weight.grad is None or not model.weight.grad.any()
    assert SGD(model.parameters(), 0.1, mom=0.9).defaults["momentum"] == 0.9


def test_adamw_has_the_course_defaults():
    opt = AdamW(nn.Linear(2, 2).parameters())
    assert opt.defaults["betas"] == (0.9, 0.99)
    assert opt.defaults["eps"] == 1e-5
    assert opt.defaults["weight_decay"] == 0.01
    assert opt.defaults["lr"] == 1e-3
    learn = make_learner()
    learn.create_opt()
    assert isinstance(learn.opt, torch.optim.AdamW)
    assert {g["weight_decay"] for g in learn.opt.param_groups if g["fl_decay"]} == {0.01}


def test_set_and_get_hyper_follow_mom_names():
    learn = make_learner(opt_func=SGD)
    learn.create_opt()
    set_hyper(learn.opt, "mom", [0.1, 0.2, 0.3])
    assert get_hyper(learn.opt, "mom") == [0.1, 0.2, 0.3]
    learn = make_learner()
    learn.create_opt()
    set_hyper(learn.opt, "mom", 0.8)
    assert all(g["betas"] == (0.8, 0.99) for g in learn.opt.param_groups)
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        set_hyper(learn.opt, "beta", 0.1)


def test_torch_optimizer_classes_and_bad_opt_funcs():
    learn = make_learner(opt_func=torch.optim.Adam)
    quiet(learn, "fit", 1, 1e-3)
    assert isinstance(learn.opt, torch.optim.Adam)
    learn = make_learner(opt_func=lambda params: None)
    with pytest.raises(TypeError, match="opt_func"):
        learn.create_opt()
    learn = make_learner(opt_func=lambda params, lr: "nope")
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        learn.create_opt()
