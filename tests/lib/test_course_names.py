"""fastlearn.course: the names the book's code uses (Module, store_attr, GetAttr, Self, delegates,
the shortcuts, the chapter 16 Optimizer and OptimWrapper)."""
from __future__ import annotations

import copy
import inspect
import pickle
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from fastlearn.basics import *  # noqa: F401,F403  (the course reaches these names this way)
from fastlearn.course import (Defaults, GetAttr, Inf, Lambda, Module, Optimizer, OptimWrapper, ProcessPoolExecutor,
                              Self, adam_step, average_grad, average_sqr_grad, defaults, delegates, l2_reg,
                              load_pickle, momentum_step, noop, one_hot, parallel, params, range_of, rms_prop_step,
                              save_pickle, sequential, sgd_step, step_stat, store_attr, subplots, to_np, weight_decay)


def square(x, offset=0):
    return x * x + offset


class Affine(Module):
    def __init__(self, n):
        self.lin = nn.Linear(n, n)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.lin(x) * self.scale


def test_module_subclasses_register_layers_without_calling_super_init():
    model = Affine(3)
    assert [name for name, _ in model.named_parameters()] == ["scale", "lin.weight", "lin.bias"]
    assert model(torch.zeros(2, 3)).shape == (2, 3)
    state = model.state_dict()
    other = Affine(3)
    other.load_state_dict(state)
    assert torch.equal(other.lin.weight, model.lin.weight)


def test_module_survives_deepcopy_pickle_and_a_super_init_call():
    class Explicit(Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)
    for model in (Affine(2), Explicit()):
        twin = copy.deepcopy(model)
        assert not twin.lin.weight is model.lin.weight and torch.equal(twin.lin.weight, model.lin.weight)
    restored = pickle.loads(pickle.dumps(Affine(2)))
    assert len(list(restored.parameters())) == 3


def test_sequential_wraps_functions_and_rejects_other_things():
    m = sequential(nn.Linear(2, 2), torch.relu, lambda x: x * 2)
    assert isinstance(m, nn.Sequential) and isinstance(m[1], Lambda)
    x = torch.tensor([[1.0, -1.0]])
    assert torch.equal(m(x), torch.relu(m[0](x)) * 2)
    with pytest.raises(TypeError, match="layer 1 is 3"):
        sequential(nn.Linear(2, 2), 3)


def test_params_one_hot_to_np_range_of_noop():
    assert len(params(nn.Linear(3, 2))) == 2
    assert one_hot(torch.tensor([0, 3]), 4).tolist() == [1, 0, 0, 1]
    with pytest.raises(IndexError, match="0..3"):
        one_hot(4, 4)
    arrays = to_np((torch.ones(2, requires_grad=True), {"a": torch.zeros(1, dtype=torch.bfloat16)}))
    assert isinstance(arrays[0], np.ndarray) and arrays[1]["a"].dtype == np.float32
    assert range_of([5, 6, 7]) == [0, 1, 2]
    assert noop(4, 5) == 4 and noop() is None
    assert list(zip("ab", Inf.count)) == [("a", 0), ("b", 1)] and next(Inf.zeros) == 0 and next(Inf.nones) is None


def test_store_attr_stores_arguments_by_name_and_says_what_is_wrong():
    class Opt:
        def __init__(self, params, lr, wd=0.0, *, eps=1e-5):
            store_attr(but="params")

    opt = Opt([1], 0.1, eps=1e-3)
    assert (opt.lr, opt.wd, opt.eps) == (0.1, 0.0, 1e-3) and not hasattr(opt, "params")

    class Some:
        def __init__(self, a, b):
            store_attr("a", extra=3)

    some = Some(1, 2)
    assert (some.a, some.extra, hasattr(some, "b")) == (1, 3, False)

    class Wrong:
        def __init__(self, a):
            store_attr("a,z")
    with pytest.raises(ValueError, match="'z'.*arguments are"):
        Wrong(1)


class ForwardingCallback(GetAttr):
    _default = "learner"


class FakeLearner:
    model, lr = "the model", 0.1


def test_getattr_forwards_public_names_to_the_default():
    cb = ForwardingCallback()
    with pytest.raises(AttributeError, match="no 'learner' to look it up on"):
        cb.model
    cb.learner = FakeLearner()
    assert (cb.model, cb.lr) == ("the model", 0.1)
    with pytest.raises(AttributeError):
        cb._private
    assert "model" in dir(cb)
    assert pickle.loads(pickle.dumps(cb)).lr == 0.1


def test_self_builds_attribute_and_method_chains():
    from pathlib import Path
    files = [Path("train/cat/1.png"), Path("valid/dog/2.png")]
    assert list(map(Self.parent.name(), files)) == ["cat", "dog"]
    assert Self.replace("a", "b")("banana") == "bbnbnb"
    assert Self.sum()(torch.tensor([1, 2])) == 3
    assert repr(Self.parent.name()) == "Self.parent.name()"
    with pytest.raises(TypeError, match="applied to one object"):
        Self.upper()("a", "b")


def test_delegates_shows_the_target_keyword_arguments_in_the_signature():
    class Base:
        def __init__(self, a, b=1, c=2):
            self.a, self.b, self.c = a, b, c

    @delegates()
    class Child(Base):
        def __init__(self, a, **kwargs):
            super().__init__(a, **kwargs)

    assert str(inspect.signature(Child)) == "(a, *, b=1, c=2)"
    assert Child(0, c=5).c == 5

    @delegates(Base, keep=True, but=("c",))
    def build(a, **kwargs):
        return Base(a, **kwargs)
    assert str(inspect.signature(build)) == "(a, *, b=1, **kwargs)"


def test_process_pool_runs_in_processes_or_here_and_passes_extra_arguments():
    with ProcessPoolExecutor(2) as pool:
        assert list(pool.map(square, [1, 2, 3], offset=1)) == [2, 5, 10]
    with ProcessPoolExecutor(0) as pool:
        assert pool.in_process and list(pool.map(square, [1, 2], offset=1)) == [2, 5]
    assert parallel(square, range(4), n_workers=2) == [0, 1, 4, 9]
    with pytest.raises(ValueError, match="max_workers=-1"):
        ProcessPoolExecutor(-1)


def test_defaults_cpus_callbacks_and_own_settings():
    from fastlearn.learner import DEFAULT_CALLBACKS
    assert 1 <= defaults.cpus <= 16
    assert defaults.callbacks == tuple(DEFAULT_CALLBACKS)
    with pytest.raises(AttributeError, match="remove_cb"):
        defaults.callbacks = []
    assert Defaults(lr=0.1).lr == 0.1


def test_save_and_load_pickle(tmp_path):
    save_pickle(tmp_path / "x.pkl", {"a": [1, 2]})
    assert load_pickle(tmp_path / "x.pkl") == {"a": [1, 2]}


def test_subplots_always_gives_an_array_of_axes():
    fig, axs = subplots(1, 3)
    assert axs.shape == (3,) and list(fig.get_size_inches()) == [9.0, 3.0]
    _, ax = subplots()
    assert ax.shape == (1,)


def test_the_star_import_brings_the_course_names():
    import fastlearn.basics as basics
    for name in ("Module", "sequential", "Tensor", "random", "string", "matplotlib", "subplots", "SimpleNamespace",
                 "ProcessPoolExecutor", "Inf", "noop", "params", "one_hot", "range_of", "to_np", "save_pickle",
                 "load_pickle", "store_attr", "GetAttr", "delegates", "Self", "progress_bar", "defaults",
                 "BCELossFlat", "GradientAccumulation", "GradientClip", "notebook_launcher", "Optimizer",
                 "OptimWrapper", "sgd_step", "weight_decay", "momentum_step", "average_grad", "average_sqr_grad",
                 "SaveModelCallback", "EarlyStoppingCallback", "TerminateOnNaNCallback", "shutil"):
        assert name in basics.__all__, name


# --- the chapter 16 optimizer -------------------------------------------------------------------

def _grads(*tensors):
    for step_grad, p in tensors:
        p.grad = step_grad.clone()


@pytest.mark.parametrize("steppers, hypers, torch_opt", [
    ([sgd_step], dict(lr=0.1), partial(torch.optim.SGD, lr=0.1)),
    ([weight_decay, sgd_step], dict(lr=0.1, wd=0.1), None),   # checked against the formula
    ([l2_reg, sgd_step], dict(lr=0.1, wd=0.1), partial(torch.optim.SGD, lr=0.1, weight_decay=0.1)),
    ([average_grad, momentum_step], dict(lr=0.1, mom=0.9), partial(torch.optim.SGD, lr=0.1, momentum=0.9)),
    ([average_sqr_grad, rms_prop_step], dict(lr=0.01, sqr_mom=0.99, eps=1e-8),
     partial(torch.optim.RMSprop, lr=0.01, alpha=0.99, eps=1e-8)),
    ([weight_decay, partial(average_grad, dampening=True), average_sqr_grad, step_stat, adam_step],
     dict(lr=0.1, mom=0.9, sqr_mom=0.99, eps=1e-5, wd=0.01),
     partial(torch.optim.AdamW, lr=0.1, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)),
])
def test_optimizer_from_steppers_matches_torch(steppers, hypers, torch_opt):
    ours_p, theirs_p = nn.Parameter(torch.tensor([1.0, -2.0, 3.0])), nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    ours = Optimizer([ours_p], cbs=steppers, **hypers)
    if torch_opt is None:  # decoupled weight decay then SGD: p * (1 - lr * wd) - lr * g
        expected = ours_p.detach().clone()
        for step in range(3):
            expected = expected * (1 - 0.1 * 0.1) - 0.1 * torch.tensor([0.5, -1.0, 2.0]) * (step + 1)
    theirs = torch_opt([theirs_p]) if torch_opt is not None else None
    for step in range(3):
        grad = torch.tensor([0.5, -1.0, 2.0]) * (step + 1)
        _grads((grad, ours_p))
        ours.step()
        if theirs is not None:
            _grads((grad, theirs_p))
            theirs.step()
    assert torch.allclose(ours_p, theirs_p if theirs is not None else expected, atol=1e-6)


def test_optimizer_is_a_torch_optimizer_a_learner_trains_and_checkpoints(tmp_path):
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    dls = DataLoaders.from_dsets(list(zip(x[:48], y[:48])), list(zip(x[48:], y[48:])), bs=16, device="cpu")
    opt_func = partial(Optimizer, cbs=[average_grad, momentum_step], mom=0.9)
    learn = Learner(dls, nn.Linear(3, 1), loss_func=MSELossFlat(), opt_func=opt_func, path=tmp_path,
                    device="cpu")
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, 0.05)
    assert isinstance(learn.opt, torch.optim.Optimizer)
    assert learn.opt.hypers[0]["mom"] == pytest.approx(0.95, abs=0.01)   # cycled by fit_one_cycle
    assert learn.recorder.values[-1][1] < learn.recorder.values[0][0]
    learn.save("momentum")
    state = learn.opt.state[learn.model.weight]["grad_avg"].clone()
    learn.opt.state[learn.model.weight]["grad_avg"].zero_()
    learn.load("momentum")
    assert torch.equal(learn.opt.state[learn.model.weight]["grad_avg"], state)


def test_optimizer_learner_weight_decay_reaches_the_steppers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    dls = DataLoaders.from_dsets([(torch.randn(2), torch.randn(2)) for _ in range(8)],
                                 [(torch.randn(2), torch.randn(2))] * 2, bs=4, device="cpu")
    learn = Learner(dls, model, loss_func=MSELossFlat(), opt_func=partial(Optimizer, cbs=[weight_decay, sgd_step]),
                    wd=0.1, device="cpu")
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 0.01)
    decays = sorted({round(h["wd"], 6) for h in learn.opt.hypers})
    assert decays == [0.0, 0.1]                                 # no weight decay on biases and norm layers


def test_optimizer_errors_name_the_fix():
    p = [nn.Parameter(torch.ones(1))]
    with pytest.raises(ValueError, match="sgd_step"):
        Optimizer(p, cbs=[], lr=0.1)
    with pytest.raises(TypeError, match="not a function"):
        Optimizer(p, cbs=[3], lr=0.1)


def test_optim_wrapper_maps_course_names_to_torch_names():
    ps = nn.Linear(2, 1).parameters
    sgd = OptimWrapper(ps(), opt=torch.optim.SGD, lr=0.1, mom=0.9, wd=0.01)
    assert (sgd.defaults["momentum"], sgd.defaults["weight_decay"]) == (0.9, 0.01)
    adam = OptimWrapper(ps(), opt=torch.optim.Adam, lr=0.1, mom=0.8, sqr_mom=0.95, eps=1e-6)
    assert adam.defaults["betas"] == (0.8, 0.95) and adam.defaults["eps"] == 1e-6
    rms = OptimWrapper(ps(), opt=torch.optim.RMSprop, lr=0.1, sqr_mom=0.9)
    assert rms.defaults["alpha"] == 0.9
    assert OptimWrapper(ps(), opt=torch.optim.SGD, hp_map={"decay": "weight_decay"}, lr=0.1,
                        decay=0.5).defaults["weight_decay"] == 0.5
    with pytest.raises(TypeError, match="has no momentum"):
        OptimWrapper(ps(), opt=torch.optim.Adagrad, lr=0.1, mom=0.9)
    with pytest.raises(TypeError, match="torch.optim.Optimizer class"):
        OptimWrapper(ps(), opt="sgd", lr=0.1)
