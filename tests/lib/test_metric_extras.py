"""ROC AUC, multi-label F-scores and the segmentation metrics against scikit-learn and by hand;
torchmetrics metrics accumulated over the whole validation set through metrics=."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.metrics import (Dice, DiceMulti, F1ScoreMulti, FBetaMulti, JaccardCoeff, JaccardCoeffMulti,
                               PrecisionMulti, RecallMulti, RocAuc, RocAucBinary, RocAucMulti, TorchMetric,
                               wrap_metric)

skm = pytest.importorskip("sklearn.metrics")


def run(metric, pred, targ, batch_size=7):
    """Feed a whole set to a metric in batches, as the Learner does, and return its value."""
    metric = wrap_metric(metric)
    metric.reset()
    for p, t in zip(pred.split(batch_size), targ.split(batch_size)):
        metric.accumulate(SimpleNamespace(pred=p, yb=(t,), loss=None))
    return metric.value


def scores_with_ties(n, c, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, generator=gen) * 2).round() / 2  # many equal scores


@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_roc_auc_equals_scikit_learn(average):
    pred = scores_with_ties(60, 4, seed=1)
    targ = torch.randint(0, 4, (60,), generator=torch.Generator().manual_seed(2))
    probs = torch.softmax(pred, -1)
    expected = skm.roc_auc_score(targ.numpy(), probs.numpy(), multi_class="ovr", average=average)
    assert run(RocAuc(average=average), pred, targ) == pytest.approx(expected, abs=1e-10)


def test_roc_auc_binary_from_two_scores_or_one_logit():
    pred = scores_with_ties(50, 2, seed=3)
    targ = torch.randint(0, 2, (50,), generator=torch.Generator().manual_seed(4))
    expected = skm.roc_auc_score(targ.numpy(), torch.softmax(pred, -1)[:, 1].numpy())
    assert run(RocAucBinary(), pred, targ) == pytest.approx(expected, abs=1e-10)
    logit = pred[:, :1]
    assert run(RocAucBinary(), logit, targ) == pytest.approx(skm.roc_auc_score(targ.numpy(), logit[:, 0].numpy()))
    assert run(RocAucBinary(), pred, torch.ones(50, dtype=torch.long)) is None  # one class: not defined


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_roc_auc_multi_label_equals_scikit_learn(average):
    pred = scores_with_ties(40, 3, seed=5)
    targ = torch.randint(0, 2, (40, 3), generator=torch.Generator().manual_seed(6))
    expected = skm.roc_auc_score(targ.numpy(), pred.numpy(), average=average)
    assert run(RocAucMulti(average=average), pred, targ) == pytest.approx(expected, abs=1e-10)


def test_roc_auc_leaves_out_a_class_absent_from_the_targets():
    pred = scores_with_ties(30, 3, seed=7)
    targ = torch.randint(0, 2, (30,), generator=torch.Generator().manual_seed(8))  # class 2 never appears
    probs = torch.softmax(pred, -1).numpy()
    per_class = [skm.roc_auc_score(targ.numpy() == c, probs[:, c]) for c in (0, 1)]
    assert run(RocAuc(), pred, targ) == pytest.approx(sum(per_class) / 2)
    with pytest.raises(ValueError, match="average='samples' is not one of"):
        RocAuc(average="samples")


@pytest.mark.parametrize("average", ["macro", "micro", "weighted", "samples"])
def test_multi_label_f_scores_equal_scikit_learn(average):
    pred = scores_with_ties(45, 5, seed=9)
    targ = torch.randint(0, 2, (45, 5), generator=torch.Generator().manual_seed(10))
    y_pred, y_true = (torch.sigmoid(pred) > 0.5).numpy(), targ.numpy()
    kwargs = dict(average=average, zero_division=0)
    assert run(F1ScoreMulti(average=average), pred, targ) == pytest.approx(skm.f1_score(y_true, y_pred, **kwargs))
    assert run(PrecisionMulti(average=average), pred, targ) == pytest.approx(
        skm.precision_score(y_true, y_pred, **kwargs))
    assert run(RecallMulti(average=average), pred, targ) == pytest.approx(skm.recall_score(y_true, y_pred, **kwargs))
    assert run(FBetaMulti(2.0, average=average), pred, targ) == pytest.approx(
        skm.fbeta_score(y_true, y_pred, beta=2.0, **kwargs))


def test_multi_label_threshold_without_sigmoid():
    probs = torch.tensor([[0.9, 0.2], [0.4, 0.7]])
    targ = torch.tensor([[1, 0], [1, 1]])
    assert run(F1ScoreMulti(sigmoid=False), probs, targ) == pytest.approx((2 / 3 + 1.0) / 2)
    assert run(F1ScoreMulti(thresh=0.3, sigmoid=False), probs, targ) == pytest.approx(1.0)


def masks_to_logits(mask, n_classes):
    return nn.functional.one_hot(mask, n_classes).permute(0, 3, 1, 2).float()


def test_binary_dice_refuses_masks_of_more_classes():
    gen = torch.Generator().manual_seed(0)
    mask = torch.randint(0, 11, (2, 8, 8), generator=gen)
    logits = masks_to_logits(mask, 11)
    with pytest.raises(ValueError, match="11 class scores per pixel.*use DiceMulti"):
        run(Dice(), logits, mask)
    with pytest.raises(ValueError, match="use JaccardCoeffMulti"):
        run(JaccardCoeff(), logits, mask)
    two_class = masks_to_logits((mask > 5).long(), 2)
    with pytest.raises(ValueError, match="target masks hold class 10.*DiceMulti"):
        run(Dice(), two_class, mask)
    assert run(DiceMulti(), logits, mask) == pytest.approx(1.0)  # the multi-class score of a perfect mask


def test_binary_dice_reads_one_logit_per_pixel():
    mask = torch.tensor([[[1, 1, 0, 0]]])
    logit = torch.tensor([[[[2.0, -1.0, -3.0, 1.0]]]])  # predicts [1, 0, 0, 1]
    assert run(Dice(), logit, mask) == pytest.approx(2 * 1 / (2 + 2))
    assert run(Dice(), masks_to_logits(torch.tensor([[[1, 0, 0, 1]]]), 2), mask) == pytest.approx(0.5)


def test_jaccard_multi_per_class():
    pred_mask = torch.tensor([[[0, 1, 1, 2]]])
    targ_mask = torch.tensor([[[0, 1, 2, 2]]])
    # class 0: 1/1, class 1: 1/2, class 2: 1/2
    assert run(JaccardCoeffMulti(), masks_to_logits(pred_mask, 3), targ_mask) == pytest.approx(2 / 3)


# --- torchmetrics ------------------------------------------------------------------------------------

def classification_learner(metrics):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(160, 5, generator=gen)
    y = (x[:, :3] + 0.8 * torch.randn(160, 3, generator=gen)).argmax(-1)
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:96], items[96:], bs=8, seed=0, device="cpu")  # 4 validation batches of 16
    torch.manual_seed(0)
    return Learner(dls, nn.Linear(5, 3), loss_func=CrossEntropyLossFlat(), lr=0.05, metrics=metrics, device="cpu")


def test_torchmetrics_auroc_covers_the_whole_validation_set():
    torchmetrics = pytest.importorskip("torchmetrics")
    auroc = torchmetrics.classification.MulticlassAUROC(num_classes=3, average="macro")
    learn = classification_learner([auroc, RocAuc()])
    with learn.no_bar(), learn.no_logging():
        learn.fit(2)
    tm_value, own_value = learn.recorder.values[-1][2:]
    preds, targs = learn.get_preds()
    expected = skm.roc_auc_score(targs.numpy(), preds.numpy(), multi_class="ovr", average="macro")
    assert tm_value == pytest.approx(expected, abs=1e-5) and own_value == pytest.approx(expected, abs=1e-10)
    per_batch = [skm.roc_auc_score(t.numpy(), p.numpy(), multi_class="ovr", labels=[0, 1, 2])
                 for p, t in zip(preds.split(16), targs.split(16)) if len(set(t.tolist())) == 3]
    assert abs(sum(per_batch) / len(per_batch) - expected) > 1e-4  # an average of batches would differ
    assert learn.metrics[0].name == "multiclass_auroc" and isinstance(learn.metrics[0], TorchMetric)


def test_torchmetrics_value_is_a_float_and_the_metric_is_reset_each_validation():
    torchmetrics = pytest.importorskip("torchmetrics")
    f1 = torchmetrics.classification.MulticlassF1Score(num_classes=3, average="micro")
    learn = classification_learner(f1)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
    _, value = learn.validate()
    preds, targs = learn.get_preds()
    assert isinstance(value, float)
    assert value == pytest.approx(float((preds.argmax(-1) == targs).float().mean()), abs=1e-6)
    with pytest.raises(TypeError, match="update, compute and reset"):
        TorchMetric(object())
