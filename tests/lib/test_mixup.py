"""MixUp and CutMix: training inputs mixed with a shuffled copy, the loss (class targets) or the
targets (float targets) mixed with the same weights, validation untouched."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastlearn.callback import Callback
from fastlearn.callback.mixup import CutMix, MixUp
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat


class RawBatch(Callback):
    """Keeps the batch as it arrives, before the mixing callback (order 0) changes it."""

    order = -1

    def __init__(self, spy):
        self.spy = spy

    def before_batch(self):
        self.spy.raw = (self.xb[0].clone(), self.yb[0].clone())


class Spy(Callback):
    """Keeps the batch as it arrives and as the model sees it, and the loss the loop trains on."""

    order = 50

    def __init__(self):
        self.seen = []

    def after_loss(self):
        self.seen.append((self.training, *self.raw, self.xb[0].clone(), self.yb[0].clone(), self.pred.detach(),
                          None if self.loss is None else float(self.loss)))


class MixSpy(Callback):
    """Reads the mixing callback's draw right after it mixed (before after_batch forgets it)."""

    order = 60

    def __init__(self, mix):
        self.mix, self.draws = mix, []

    def after_loss(self):
        if self.training:
            self.draws.append((self.mix.lam.clone(), self.mix.perm.clone()))


def image_learner(targets="class", cbs=None):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(48, 3, 8, 8, generator=gen)
    if targets == "class":
        y = torch.randint(0, 4, (48,), generator=gen)
        loss = CrossEntropyLossFlat()
        n_out = 4
    else:
        y = torch.randint(0, 2, (48, 3), generator=gen).float()
        loss = BCEWithLogitsLossFlat()
        n_out = 3
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:32], items[32:], bs=8, seed=1, device="cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, n_out))
    spies = [RawBatch(cb) for cb in cbs if isinstance(cb, Spy)]
    return Learner(dls, model, loss_func=loss, cbs=cbs + spies, device="cpu", sanity_val_steps=0)


def fit_once(learn):
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=1e-3)


def test_mixup_mixes_inputs_and_the_loss_of_class_targets():
    spy, mix = Spy(), MixUp(0.4)
    probe = MixSpy(mix)
    learn = image_learner(cbs=[spy, mix, probe])
    fit_once(learn)
    training = [s for s in spy.seen if s[0]]
    assert len(training) == 4 and len(probe.draws) == 4
    for (_, x, y, mixed_x, seen_y, pred, loss), (lam, perm) in zip(training, probe.draws):
        assert bool((lam >= 0.5).all() and (lam <= 1).all())
        expected_x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
        torch.testing.assert_close(mixed_x, expected_x)
        assert torch.equal(seen_y, y)  # class targets stay; the loss is mixed instead
        expected_loss = (lam * F.cross_entropy(pred, y, reduction="none")
                         + (1 - lam) * F.cross_entropy(pred, y[perm], reduction="none")).mean()
        assert loss == pytest.approx(float(expected_loss), rel=1e-5)
    validation = [s for s in spy.seen if not s[0]]
    assert validation and all(torch.equal(x, mixed) for _, x, _, mixed, *_ in validation)


def test_mixup_mixes_float_targets_themselves():
    spy, mix = Spy(), MixUp(0.4)
    probe = MixSpy(mix)
    learn = image_learner(targets="multi", cbs=[spy, mix, probe])
    fit_once(learn)
    for (_, x, y, _, seen_y, pred, loss), (lam, perm) in zip([s for s in spy.seen if s[0]], probe.draws):
        torch.testing.assert_close(seen_y, lam[:, None] * y + (1 - lam[:, None]) * y[perm])
        assert loss == pytest.approx(float(F.binary_cross_entropy_with_logits(pred, seen_y)), rel=1e-5)


def test_cutmix_pastes_a_box_of_another_image():
    spy, mix = Spy(), CutMix(1.0)
    boxes = []

    class BoxSpy(MixSpy):
        def after_loss(self):
            super().after_loss()
            if self.training:
                boxes.append(self.mix.box)

    probe = BoxSpy(mix)
    learn = image_learner(cbs=[spy, mix, probe])
    fit_once(learn)
    for (_, x, _, mixed_x, *_), (lam, perm), (y0, y1, x0, x1) in zip([s for s in spy.seen if s[0]], probe.draws,
                                                                      boxes):
        inside = torch.zeros(8, 8, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert torch.equal(mixed_x[..., inside], x[perm][..., inside])
        assert torch.equal(mixed_x[..., ~inside], x[..., ~inside])
        assert float(lam[0]) == pytest.approx(1 - inside.float().mean().item())
        assert bool((lam == lam[0]).all())


def test_mix_arguments_and_inputs_are_checked():
    with pytest.raises(ValueError, match="alpha=0"):
        MixUp(0)
    learn = Learner(DataBunch.from_dsets([(torch.zeros(4), torch.tensor(0))] * 8, [(torch.zeros(4), torch.tensor(0))] * 4,
                                         bs=4, device="cpu"),
                    nn.Linear(4, 2), loss_func=CrossEntropyLossFlat(), cbs=CutMix(), device="cpu", sanity_val_steps=0)
    with pytest.raises(ValueError, match="CutMix cuts boxes out of images"):
        fit_once(learn)
