"""A custom training step through the public API: a small GAN whose critic and generator each have
an optimizer, updated in one step, with schedules, mixed precision and clipping acting on both."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.optimizer import Adam, split_optimizer
from fastlearn.precision import MixedPrecision
from fastlearn.training import GradientClip

REAL_MEAN = torch.tensor([3.0, -2.0])


def gan_dls(n=512, bs=32):
    """Pairs of (noise, real sample): the generator maps noise to points near REAL_MEAN."""
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(n + 128, 2, generator=gen)
    real = REAL_MEAN + 0.3 * torch.randn(n + 128, 2, generator=gen)
    items = list(zip(noise, real))
    return DataBunch.from_dsets(items[:n], items[n:], bs=bs, seed=1, device="cpu")


class GAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = nn.Linear(2, 2)
        self.critic = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def forward(self, noise):  # what validation and predictions run
        return self.generator(noise)


def mean_distance(fake, real):
    """The validation loss: how far the generated points' mean is from the real one."""
    return (fake.mean(0) - real.mean(0)).norm()


def critic_then_generator(model):
    return [list(model.critic.parameters()), list(model.generator.parameters())]


class GANLearner(Learner):
    """The example of docs/custom_training_step.md: one optimizer per part, both updated each batch."""

    forward_dtypes: list

    def create_opt(self):
        super().create_opt()  # one optimizer over the splitter's groups: [critic, generator]
        critic_opt, self.opt = split_optimizer(self.opt)
        self.extra_opts = [critic_opt]

    def training_step(self):
        noise, real = self.xb[0], self.yb[0]
        generator, critic = self.model.generator, self.model.critic
        critic_opt = self.extra_opts[0]
        fake = generator(noise)
        self.backward(F.softplus(critic(fake.detach())).mean() + F.softplus(-critic(real)).mean())
        self.step(critic_opt)
        self.pred = generator(noise)
        self.backward(F.softplus(-critic(self.pred)).mean())
        self.step()  # the generator's optimizer, self.opt
        critic_opt.zero_grad(set_to_none=True)  # the generator loss reached the critic's weights too
        self.forward_dtypes += [fake.dtype, self.pred.dtype]


def gan_learner(device="cpu", **kwargs):
    torch.manual_seed(0)
    learn = GANLearner(gan_dls(), GAN(), loss_func=mean_distance, opt_func=Adam, splitter=critic_then_generator,
                       device=device, **kwargs)
    learn.forward_dtypes = []
    return learn


class StepLog(Callback):
    """Before each optimizer step, after clipping: which optimizer, its learning rate, the gradients' norm."""

    order = 9
    run_after = GradientClip
    run_before = MixedPrecision

    def __init__(self):
        self.steps = []

    def before_step(self):
        params = [p for group in self.opt.param_groups for p in group["params"] if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.stack([p.grad.float().norm() for p in params])))
        self.steps.append((self.opt, self.opt.param_groups[0]["lr"], norm))


def test_the_gan_learns_the_real_mean():
    learn = gan_learner()
    with torch.no_grad():
        assert float(mean_distance(learn.model(torch.randn(1000, 2)), REAL_MEAN[None])) > 3
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(15, lr_max=0.02)
    assert learn.recorder.values[-1][1] < 0.5  # validation: generated mean within 0.5 of the real one
    assert len(learn.recorder.losses) == 15 * 16  # the generator loss recorded per batch


def test_schedules_clipping_and_precision_act_on_both_optimizers():
    log, clip = StepLog(), GradientClip(max_norm=0.05)
    learn = gan_learner(cbs=[log, clip])
    learn.to_bf16()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, lr_max=[0.04, 0.02])  # critic 0.04, generator 0.02 at the peak
    critic_opt, generator_opt = learn.extra_opts[0], learn.opt
    assert [opt for opt, _, _ in log.steps] == [critic_opt, generator_opt] * 32  # 16 batches x 2 epochs
    critic_lrs = [lr for opt, lr, _ in log.steps[0::2]]
    generator_lrs = [lr for opt, lr, _ in log.steps[1::2]]
    assert critic_lrs == pytest.approx([2 * lr for lr in generator_lrs])  # one schedule, per splitter group
    assert critic_lrs[0] == pytest.approx(0.04 / 25) and max(critic_lrs) == pytest.approx(0.04, rel=0.05)
    assert critic_lrs[-1] < 0.01 * max(critic_lrs)  # annealed
    assert all(norm <= 0.05 * (1 + 1e-4) for _, _, norm in log.steps)  # both clipped
    assert learn.forward_dtypes and set(learn.forward_dtypes) == {torch.bfloat16}  # both updates under autocast


def test_a_float16_scaler_steps_both_optimizers():
    learn = gan_learner()
    learn.add_cb(MixedPrecision("fp16", cpu_fallback=False))  # the CPU gradient scaler: the CUDA path's logic
    before = {name: p.detach().clone() for name, p in learn.model.named_parameters()}
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=0.01)
    assert learn.mixed_precision.uses_scaler
    changed = {name for name, p in learn.model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == set(before)  # the critic and the generator were both updated
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_checkpoints_keep_the_extra_optimizer(tmp_path):
    learn = gan_learner(path=tmp_path)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=0.01)
    learn.save("gan")
    other = gan_learner(path=tmp_path)
    other.load("gan")
    saved, loaded = learn.extra_opts[0].state_dict()["state"], other.extra_opts[0].state_dict()["state"]
    assert saved.keys() == loaded.keys() and saved
    for key in saved:
        torch.testing.assert_close(saved[key]["exp_avg"], loaded[key]["exp_avg"])
    without_critic_opt = gan_learner(path=tmp_path)
    without_critic_opt.create_opt()
    without_critic_opt.extra_opts = []
    with pytest.raises(ValueError, match="1 extra optimizer.*nothing was loaded"):
        without_critic_opt.load("gan")


def test_split_optimizer_keeps_the_class_settings_and_groups():
    model = GAN()
    opt = Adam([{"params": list(model.critic.parameters()), "fl_group": 0, "lr": 0.1},
                {"params": list(model.generator.parameters()), "fl_group": 1, "lr": 0.2}], lr=0.3)
    critic_opt, generator_opt = split_optimizer(opt)
    assert type(critic_opt) is type(opt)
    assert critic_opt.param_groups[0]["lr"] == 0.1 and generator_opt.param_groups[0]["lr"] == 0.2
    assert critic_opt.param_groups[0]["betas"] == opt.param_groups[0]["betas"]
    assert [p for g in generator_opt.param_groups for p in g["params"]] == list(model.generator.parameters())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_float16_on_cuda_scales_and_clips_both_updates():
    log, clip = StepLog(), GradientClip(max_norm=0.05)
    learn = gan_learner(device="cuda", cbs=[log, clip]).to_fp16()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, lr_max=[0.04, 0.02])
    assert learn.mixed_precision.uses_scaler and set(learn.forward_dtypes) == {torch.float16}
    assert [opt for opt, _, _ in log.steps] == [learn.extra_opts[0], learn.opt] * 32
    finite = [norm for _, _, norm in log.steps if math.isfinite(norm)]  # the scaler skips overflowing steps
    assert len(finite) >= 48 and all(norm <= 0.05 * (1 + 1e-3) for norm in finite)  # unscaled, then clipped
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
