from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastlearn.losses import (
    BaseLoss, BCEWithLogitsLossFlat, CrossEntropyLossFlat, FocalLoss, FocalLossFlat, L1LossFlat,
    LabelSmoothingCrossEntropy, LabelSmoothingCrossEntropyFlat, MSELossFlat, loss_activation, loss_decodes,
    loss_with_reduction,
)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


def test_cross_entropy_flat_matches_torch_on_classifier_outputs(generator):
    logits = torch.randn(6, 4, generator=generator)
    targ = torch.randint(0, 4, (6,), generator=generator)
    assert torch.allclose(CrossEntropyLossFlat()(logits, targ), F.cross_entropy(logits, targ))


def test_cross_entropy_flat_on_segmentation_outputs(generator):
    logits = torch.randn(2, 3, 4, 5, generator=generator)
    targ = torch.randint(0, 3, (2, 4, 5), generator=generator)
    loss = CrossEntropyLossFlat(axis=1)
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, 3), targ.reshape(-1))
    assert torch.allclose(loss(logits, targ), expected)
    assert torch.allclose(loss(logits, targ), F.cross_entropy(logits, targ))  # torch's own (N, C, H, W) form
    per_pixel = loss.with_reduction("none")(logits, targ)
    assert per_pixel.shape == (2 * 4 * 5,)
    assert torch.allclose(per_pixel, F.cross_entropy(logits, targ, reduction="none").reshape(-1))


def test_cross_entropy_flat_on_sequence_outputs(generator):
    logits = torch.randn(2, 7, 5, generator=generator)  # language model: (batch, seq, vocab)
    targ = torch.randint(0, 5, (2, 7), generator=generator)
    assert torch.allclose(CrossEntropyLossFlat()(logits, targ), F.cross_entropy(logits.reshape(-1, 5), targ.reshape(-1)))


def test_cross_entropy_flat_arguments(generator):
    logits = torch.randn(5, 3, generator=generator)
    targ = torch.tensor([0, 1, 2, -100, 1], dtype=torch.int32)  # int32 targets are accepted
    weight = torch.tensor([1.0, 2.0, 0.5])
    loss = CrossEntropyLossFlat(weight=weight, label_smoothing=0.1)
    expected = F.cross_entropy(logits, targ.long(), weight=weight, label_smoothing=0.1)
    assert torch.allclose(loss(logits, targ), expected)
    assert torch.allclose(CrossEntropyLossFlat(reduction="sum")(logits[:3], targ[:3]),
                          F.cross_entropy(logits[:3], targ[:3].long(), reduction="sum"))


def test_cross_entropy_activation_and_decodes():
    logits = torch.tensor([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    loss = CrossEntropyLossFlat()
    probs = loss.activation(logits)
    assert torch.allclose(probs, torch.softmax(logits, dim=-1))
    assert loss.decodes(probs).tolist() == [1, 2]
    seg = CrossEntropyLossFlat(axis=1)
    seg_logits = torch.zeros(1, 3, 2, 2)
    seg_logits[0, 2, 0, 0] = 1.0
    assert seg.decodes(seg.activation(seg_logits)).tolist() == [[[2, 0], [0, 0]]]
    assert torch.allclose(seg.activation(seg_logits).sum(dim=1), torch.ones(1, 2, 2))


def test_reduction_is_settable_and_with_reduction_copies():
    loss = CrossEntropyLossFlat()
    unreduced = loss.with_reduction("none")
    assert loss.reduction == "mean" and unreduced.reduction == "none"
    loss.reduction = "sum"
    assert loss.func.reduction == "sum"
    with pytest.raises(ValueError, match="reduction='avg'"):
        loss.reduction = "avg"
    with pytest.raises(ValueError, match="reduction='avg'"):
        CrossEntropyLossFlat(reduction="avg")


def test_bce_with_logits_flat_matches_torch_and_decodes(generator):
    logits = torch.randn(4, 3, generator=generator)
    targ = torch.randint(0, 2, (4, 3), generator=generator)  # integer multi-label targets are floatified
    loss = BCEWithLogitsLossFlat()
    assert torch.allclose(loss(logits, targ), F.binary_cross_entropy_with_logits(logits, targ.float()))
    assert loss.with_reduction("none")(logits, targ).shape == (12,)
    probs = loss.activation(torch.tensor([[2.0, -2.0, 0.1]]))
    assert torch.allclose(probs, torch.sigmoid(torch.tensor([[2.0, -2.0, 0.1]])))
    assert loss.decodes(probs).tolist() == [[True, False, True]]
    assert BCEWithLogitsLossFlat(thresh=0.6).decodes(probs).tolist() == [[True, False, False]]


def test_bce_with_logits_flat_single_output_and_pos_weight(generator):
    logits = torch.randn(5, 1, generator=generator)
    targ = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    expected = F.binary_cross_entropy_with_logits(logits.reshape(-1), targ)
    assert torch.allclose(BCEWithLogitsLossFlat()(logits, targ), expected)
    logits, targ = torch.randn(4, 3, generator=generator), torch.randint(0, 2, (4, 3), generator=generator).float()
    pos_weight = torch.tensor([1.0, 3.0, 0.5])
    loss = BCEWithLogitsLossFlat(pos_weight=pos_weight)
    assert torch.allclose(loss(logits, targ), F.binary_cross_entropy_with_logits(logits, targ, pos_weight=pos_weight))
    assert loss.with_reduction("none")(logits, targ).shape == (4, 3)


def test_mse_and_l1_flat(generator):
    pred = torch.randn(6, 1, generator=generator)
    targ = torch.arange(6)  # integer targets are floatified
    assert torch.allclose(MSELossFlat()(pred, targ), F.mse_loss(pred.reshape(-1), targ.float()))
    assert torch.allclose(L1LossFlat()(pred, targ), F.l1_loss(pred.reshape(-1), targ.float()))
    assert MSELossFlat(reduction="none")(pred, targ).shape == (6,)
    double_targ = targ.double()
    assert MSELossFlat()(pred, double_targ).dtype == torch.float32
    loss = MSELossFlat()
    assert torch.equal(loss.decodes(loss.activation(pred)), pred)


def test_label_smoothing_equals_the_formula(generator):
    logits = torch.randn(5, 4, generator=generator)
    targ = torch.randint(0, 4, (5,), generator=generator)
    eps = 0.2
    log_probs = torch.log_softmax(logits, dim=1)
    per_item = (1 - eps) * -log_probs[torch.arange(5), targ] + eps * -log_probs.mean(dim=1)
    loss = LabelSmoothingCrossEntropy(eps=eps)
    assert torch.allclose(loss(logits, targ), per_item.mean())
    assert torch.allclose(LabelSmoothingCrossEntropy(eps=eps, reduction="sum")(logits, targ), per_item.sum())
    assert torch.allclose(LabelSmoothingCrossEntropy(eps=eps, reduction="none")(logits, targ), per_item)
    assert torch.allclose(loss(logits, targ), F.cross_entropy(logits, targ, label_smoothing=eps))
    assert torch.allclose(LabelSmoothingCrossEntropy(eps=0.0)(logits, targ), F.cross_entropy(logits, targ))
    assert loss.decodes(loss.activation(logits)).tolist() == logits.argmax(dim=1).tolist()
    with pytest.raises(ValueError, match="eps=1.5"):
        LabelSmoothingCrossEntropy(eps=1.5)


def test_label_smoothing_flat_on_segmentation(generator):
    logits = torch.randn(2, 3, 2, 2, generator=generator)
    targ = torch.randint(0, 3, (2, 2, 2), generator=generator)
    loss = LabelSmoothingCrossEntropyFlat(axis=1, eps=0.1)
    assert torch.allclose(loss(logits, targ), F.cross_entropy(logits, targ, label_smoothing=0.1))
    assert loss.with_reduction("none")(logits, targ).shape == (8,)
    assert loss.decodes(loss.activation(logits)).shape == (2, 2, 2)


def test_focal_loss(generator):
    logits = torch.randn(6, 3, generator=generator)
    targ = torch.randint(0, 3, (6,), generator=generator)
    assert torch.allclose(FocalLossFlat(gamma=0.0)(logits, targ), F.cross_entropy(logits, targ))
    p_t = torch.softmax(logits, dim=1)[torch.arange(6), targ]
    expected = (-(1 - p_t) ** 2 * torch.log(p_t))
    assert torch.allclose(FocalLoss(reduction="none")(logits, targ), expected)
    assert torch.allclose(FocalLossFlat()(logits, targ), expected.mean())
    weight = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(FocalLoss(weight=weight, reduction="sum")(logits, targ), (expected * weight[targ]).sum())


def test_base_loss_flatten_and_floatify():
    pred, targ = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), torch.ones(2, 3, dtype=torch.long)
    kept = BaseLoss(nn.MSELoss, flatten=False, floatify=True, reduction="none")(pred, targ)
    assert torch.equal(kept, torch.tensor([[0.0, 1.0, 4.0], [1.0, 1.0, 1.0]]))
    flat = BaseLoss(nn.MSELoss, is_2d=False, floatify=True, reduction="none")(pred, targ)
    assert torch.equal(flat, torch.tensor([0.0, 1.0, 4.0, 1.0, 1.0, 1.0]))
    soft_targets = torch.softmax(torch.randn(2, 3, 4), dim=1)  # probabilities along axis 1, same rank as logits
    logits = torch.randn(2, 3, 4)
    expected = F.cross_entropy(logits, soft_targets)
    assert torch.allclose(BaseLoss(nn.CrossEntropyLoss, axis=1)(logits, soft_targets), expected)


def test_plain_torch_losses_fall_back_sensibly():
    logits = torch.tensor([[1.0, 3.0], [2.0, 0.0]])
    softmax = torch.softmax(logits, dim=1)
    for loss in (nn.CrossEntropyLoss(), F.cross_entropy, partial(F.cross_entropy, label_smoothing=0.1)):
        assert torch.allclose(loss_activation(loss, logits), softmax)
        assert loss_decodes(loss, softmax).tolist() == [1, 0]
    for loss in (nn.BCEWithLogitsLoss(), F.binary_cross_entropy_with_logits):
        assert torch.allclose(loss_activation(loss, logits), torch.sigmoid(logits))
        assert loss_decodes(loss, torch.tensor([0.7, 0.2])).tolist() == [True, False]
    assert torch.allclose(loss_activation(nn.NLLLoss(), torch.log(softmax)), softmax)
    for loss in (nn.MSELoss(), F.mse_loss, lambda p, t: (p - t).abs().mean()):
        assert torch.equal(loss_activation(loss, logits), logits)
        assert torch.equal(loss_decodes(loss, logits), logits)
    flat = CrossEntropyLossFlat()
    assert torch.allclose(loss_activation(flat, logits), softmax)
    assert loss_decodes(flat, softmax).tolist() == [1, 0]


def test_loss_with_reduction_for_every_kind_of_loss():
    logits, targ = torch.randn(3, 2), torch.tensor([0, 1, 1])
    per_item = F.cross_entropy(logits, targ, reduction="none")
    for loss in (CrossEntropyLossFlat(), nn.CrossEntropyLoss(), F.cross_entropy):
        assert torch.allclose(loss_with_reduction(loss, "none")(logits, targ), per_item)
    module = nn.CrossEntropyLoss()
    loss_with_reduction(module, "none")
    assert module.reduction == "mean"  # the original is unchanged
    with pytest.raises(TypeError, match="cannot change the reduction"):
        loss_with_reduction(lambda p, t: (p - t).mean(), "none")
