import math
from functools import partial
from types import SimpleNamespace

import pytest
import torch

from fastlearn.metrics import (
    AccumMetric, AvgLoss, AvgMetric, AvgSmoothLoss, Dice, DiceMulti, F1Score, FBeta, JaccardCoeff,
    MatthewsCorrCoef, Metric, Perplexity, Precision, R2Score, Recall, accuracy, accuracy_multi, error_rate,
    exp_rmspe, foreground_acc, mae, mse, msle, rmse, top_k_accuracy, wrap_metric,
)

try:
    import sklearn.metrics as skm
except ImportError:  # pragma: no cover
    skm = None


def run(metric, batches):
    """Feed (pred, targ[, loss]) batches to a metric the way the Learner does and return its value."""
    metric = wrap_metric(metric)
    metric.reset()
    for batch in batches:
        pred, targ = batch[:2]
        loss = batch[2] if len(batch) > 2 else None
        metric.accumulate(SimpleNamespace(pred=pred, yb=(targ,), loss=loss))
    return metric.value


def split(pred, targ, sizes):
    """Cut a whole set into batches of the given sizes."""
    return list(zip(pred.split(sizes), targ.split(sizes)))


# --- functions ----------------------------------------------------------------------------------

def test_accuracy_and_error_rate():
    pred = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    targ = torch.tensor([1, 1, 1, 0])
    assert accuracy(pred, targ).item() == pytest.approx(0.75)
    assert error_rate(pred, targ).item() == pytest.approx(0.25)


def test_accuracy_on_segmentation_axis():
    pred = torch.zeros(1, 2, 2, 2)
    pred[0, 1, 0, :] = 1.0  # row 0 predicts class 1, row 1 class 0
    targ = torch.tensor([[[1, 1], [1, 0]]])
    assert accuracy(pred, targ, axis=1).item() == pytest.approx(0.75)


def test_accuracy_mismatched_sizes_is_a_clear_error():
    with pytest.raises(ValueError, match="predictions hold 2 values and targets 3"):
        accuracy(torch.zeros(2, 4), torch.zeros(3, dtype=torch.long))


def test_top_k_accuracy():
    pred = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    targ = torch.tensor([1, 0, 2])  # top-2 sets: {0, 1}, {2, 1}, {1, 2}
    assert top_k_accuracy(pred, targ, k=1).item() == pytest.approx(0.0)
    assert top_k_accuracy(pred, targ, k=2).item() == pytest.approx(2 / 3)
    assert top_k_accuracy(pred, targ, k=3).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k=4"):
        top_k_accuracy(pred, targ, k=4)


def test_accuracy_multi_thresh_and_sigmoid():
    logits = torch.tensor([[2.0, -2.0, 0.1], [-1.0, 1.0, -0.1]])
    targ = torch.tensor([[1, 0, 0], [0, 1, 1]])
    # sigmoid: [[.88, .12, .52], [.27, .73, .48]] > .5 -> [[1,0,1],[0,1,0]]: 4 of 6 right
    assert accuracy_multi(logits, targ).item() == pytest.approx(4 / 6)
    # thresh 0.2: [[1,0,1],[1,1,1]] -> 4 of 6 right
    assert accuracy_multi(logits, targ, thresh=0.2).item() == pytest.approx(4 / 6)
    probs = torch.tensor([[0.9, 0.1, 0.05], [0.3, 0.8, 0.6]])
    assert accuracy_multi(probs, targ, sigmoid=False).item() == pytest.approx(1.0)


def test_foreground_acc_ignores_background():
    pred = torch.zeros(1, 3, 1, 4)
    pred[0, [0, 1, 2, 1], 0, [0, 1, 2, 3]] = 1.0  # argmax [0, 1, 2, 1]
    targ = torch.tensor([[[0, 1, 1, 0]]])
    assert foreground_acc(pred, targ).item() == pytest.approx(0.5)


def test_regression_functions():
    pred, targ = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([1.0, 3.0, 2.0])
    assert mse(pred, targ).item() == pytest.approx(5 / 3)
    assert mae(pred, targ).item() == pytest.approx(1.0)
    expected_msle = ((math.log(2) - math.log(2)) ** 2 + (math.log(3) - math.log(4)) ** 2
                     + (math.log(5) - math.log(3)) ** 2) / 3
    assert msle(pred, targ).item() == pytest.approx(expected_msle, rel=1e-5)


# --- AvgMetric and wrap_metric -------------------------------------------------------------------

def test_avg_metric_is_weighted_by_batch_size():
    pred = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    targ = torch.tensor([1, 1, 0, 0, 0])
    # batches of 1 and 4: per-batch accuracies 1.0 and 0.5; whole set 3/5 (the plain mean would be 0.75)
    assert run(accuracy, split(pred, targ, [1, 4])) == pytest.approx(0.6)


def test_avg_metric_batch_size_is_the_target_first_dimension():
    # segmentation: 2 images then 1 image, 4 pixels each; predictions have more dims than targets
    pred = torch.zeros(3, 2, 2, 2)
    pred[:, 1] = 1.0  # everything predicted class 1
    targ = torch.tensor([[[1, 1], [1, 1]], [[1, 1], [0, 0]], [[0, 0], [0, 0]]])
    value = run(partial(accuracy, axis=1), split(pred, targ, [2, 1]))
    assert value == pytest.approx(6 / 12)


def test_avg_metric_value_is_a_float_and_none_before_data():
    metric = AvgMetric(accuracy)
    assert metric.value is None
    assert isinstance(run(metric, [(torch.eye(2), torch.tensor([0, 1]))]), float)


def test_wrap_metric_names_and_kinds():
    assert wrap_metric(accuracy).name == "accuracy"
    assert wrap_metric(error_rate).name == "error_rate"
    wrapped = wrap_metric(partial(accuracy_multi, thresh=0.1))
    assert isinstance(wrapped, AvgMetric) and wrapped.name == "accuracy_multi"
    assert wrap_metric(rmse) is rmse and rmse.name == "rmse"
    assert isinstance(wrap_metric(F1Score), F1Score) and wrap_metric(F1Score).name == "f1_score"
    assert wrap_metric(R2Score).name == "r2_score"
    assert Perplexity().name == "perplexity"
    assert JaccardCoeff().name == "jaccard_coeff"
    assert AvgSmoothLoss().name == "avg_smooth_loss"
    named = AvgMetric(accuracy, name="acc")
    assert named.name == "acc"
    with pytest.raises(TypeError, match="is not a Metric"):
        wrap_metric(42)


def test_partial_metric_uses_its_arguments():
    logits = torch.tensor([[0.1, -0.1]])  # sigmoid ~ [0.52, 0.48]
    targ = torch.tensor([[1, 1]])
    assert run(accuracy_multi, [(logits, targ)]) == pytest.approx(0.5)
    assert run(partial(accuracy_multi, thresh=0.1), [(logits, targ)]) == pytest.approx(1.0)


def test_reset_forgets_previous_batches():
    metric = wrap_metric(accuracy)
    run(metric, [(torch.eye(2), torch.tensor([1, 0]))])
    assert run(metric, [(torch.eye(2), torch.tensor([0, 1]))]) == pytest.approx(1.0)


# --- AccumMetric ----------------------------------------------------------------------------------

def test_rmse_is_computed_over_the_whole_set():
    pred = torch.tensor([1.0, 2.0, 3.0, 10.0])
    targ = torch.tensor([1.0, 2.0, 5.0, 4.0])
    value = run(rmse, split(pred, targ, [2, 2]))
    assert value == pytest.approx(math.sqrt((4 + 36) / 4))
    per_batch_mean = (0.0 + math.sqrt((4 + 36) / 2)) / 2  # what averaging per-batch rmse would give
    assert value != pytest.approx(per_batch_mean)


def test_rmse_flattens_predictions_of_shape_n_by_1():
    assert run(rmse, [(torch.tensor([[0.0], [2.0]]), torch.tensor([0.0, 0.0]))]) == pytest.approx(math.sqrt(2))


def test_exp_rmspe():
    pred, targ = torch.log(torch.tensor([90.0, 110.0])), torch.log(torch.tensor([100.0, 100.0]))
    assert run(exp_rmspe, [(pred, targ)]) == pytest.approx(0.1, rel=1e-6)


def test_accum_metric_argmax_activation_thresh_and_invert_arg():
    calls = []

    def record(a, b):
        calls.append((a.clone(), b.clone()))
        return 0.0

    pred = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    targ = torch.tensor([1, 1])
    run(AccumMetric(record, dim_argmax=-1), [(pred, targ)])
    assert calls[-1][0].tolist() == [1, 0]
    run(AccumMetric(record, activation="softmax", dim_argmax=-1, flatten=False), [(pred, targ)])
    assert torch.allclose(calls[-1][0], torch.softmax(pred, -1))
    run(AccumMetric(record, activation="binary_softmax", dim_argmax=-1), [(pred, targ)])
    assert torch.allclose(calls[-1][0], torch.softmax(pred, -1)[:, 1])
    run(AccumMetric(record, activation="sigmoid", thresh=0.6), [(pred, torch.ones(2, 2))])
    assert calls[-1][0].tolist() == [False, True, True, False]
    run(AccumMetric(record, dim_argmax=-1, invert_arg=True), [(pred, targ)])
    assert calls[-1][0].tolist() == [1, 1] and calls[-1][1].tolist() == [1, 0]


def test_accum_metric_keeps_data_on_cpu_and_passes_numpy_and_kwargs():
    seen = {}

    def func(preds, targs, scale):
        seen["types"] = (type(preds).__name__, type(targs).__name__)
        return float((preds == targs).mean()) * scale

    metric = AccumMetric(func, dim_argmax=-1, to_np=True, scale=10)
    value = run(metric, [(torch.eye(3), torch.tensor([0, 1, 0]))])
    assert value == pytest.approx(20 / 3)
    assert seen["types"] == ("ndarray", "ndarray")
    assert all(p.device.type == "cpu" for p in metric.preds)


def test_accum_metric_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation='relu'"):
        AccumMetric(mse, activation="relu")


def test_r2_score():
    pred = torch.tensor([2.5, 0.0, 2.0, 8.0])
    targ = torch.tensor([3.0, -0.5, 2.0, 7.0])
    ss_res = 0.25 + 0.25 + 0.0 + 1.0
    ss_tot = ((targ - targ.mean()) ** 2).sum().item()
    assert run(R2Score(), split(pred, targ, [1, 3])) == pytest.approx(1 - ss_res / ss_tot)


# --- precision / recall / F-scores ----------------------------------------------------------------

PRED_LABELS = torch.tensor([0, 1, 2, 2, 1, 0, 1, 2, 2, 0, 1, 1])
TARG_LABELS = torch.tensor([0, 1, 1, 2, 1, 2, 0, 2, 0, 0, 1, 2])


def as_scores(labels, n_classes=3):
    return torch.eye(n_classes)[labels] + 0.01 * torch.arange(len(labels)).unsqueeze(1) / len(labels)


def test_binary_f1_precision_recall_by_hand():
    pred, targ = torch.tensor([1, 1, 0, 1, 0]), torch.tensor([1, 0, 0, 1, 1])
    batches = split(as_scores(pred, 2), targ, [2, 3])
    # tp=2, fp=1, fn=1
    assert run(Precision(), batches) == pytest.approx(2 / 3)
    assert run(Recall(), batches) == pytest.approx(2 / 3)
    assert run(F1Score(), batches) == pytest.approx(2 / 3)
    assert run(F1Score(pos_label=0), batches) == pytest.approx(0.5)  # tp=1, fp=1, fn=1
    assert run(FBeta(beta=2), batches) == pytest.approx(5 * 2 / (5 * 2 + 4 * 1 + 1))


def test_multiclass_averages_by_hand():
    batches = split(as_scores(PRED_LABELS), TARG_LABELS, [5, 7])
    # per class (tp, predicted, actual): 0: (2, 3, 4), 1: (3, 5, 4), 2: (2, 4, 4)
    precision = [2 / 3, 3 / 5, 2 / 4]
    recall = [2 / 4, 3 / 4, 2 / 4]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert run(Precision(average="macro"), batches) == pytest.approx(sum(precision) / 3)
    assert run(Recall(average="macro"), batches) == pytest.approx(sum(recall) / 3)
    assert run(F1Score(average="macro"), batches) == pytest.approx(sum(f1) / 3)
    assert run(F1Score(average="micro"), batches) == pytest.approx(7 / 12)
    assert run(F1Score(average="weighted"), batches) == pytest.approx(sum(f1) / 3)  # equal supports
    per_class = run(F1Score(average=None), batches)
    assert torch.allclose(per_class, torch.tensor(f1, dtype=torch.float64))


@pytest.mark.skipif(skm is None, reason="scikit-learn not installed")
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_multiclass_scores_match_sklearn(average):
    generator = torch.Generator().manual_seed(0)
    targ = torch.randint(0, 4, (57,), generator=generator)
    pred = torch.where(torch.rand(57, generator=generator) < 0.6, targ, torch.randint(0, 4, (57,), generator=generator))
    batches = split(as_scores(pred, 4), targ, [20, 20, 17])
    y_true, y_pred = targ.numpy(), pred.numpy()
    assert run(F1Score(average=average), batches) == pytest.approx(skm.f1_score(y_true, y_pred, average=average))
    assert run(Precision(average=average), batches) == pytest.approx(
        skm.precision_score(y_true, y_pred, average=average, zero_division=0))
    assert run(Recall(average=average), batches) == pytest.approx(skm.recall_score(y_true, y_pred, average=average))
    assert run(FBeta(0.5, average=average), batches) == pytest.approx(
        skm.fbeta_score(y_true, y_pred, beta=0.5, average=average))
    assert run(MatthewsCorrCoef(), batches) == pytest.approx(skm.matthews_corrcoef(y_true, y_pred))


def test_binary_average_rejects_multiclass_data():
    with pytest.raises(ValueError, match="average='binary' needs two classes"):
        run(F1Score(), [(as_scores(PRED_LABELS), TARG_LABELS)])
    with pytest.raises(ValueError, match="average='median'"):
        F1Score(average="median")


def test_precision_with_no_positive_prediction_is_zero():
    assert run(Precision(), [(as_scores(torch.tensor([0, 0]), 2), torch.tensor([1, 0]))]) == 0.0


def test_matthews_binary_by_hand():
    pred, targ = torch.tensor([1, 1, 0, 1, 0]), torch.tensor([1, 0, 0, 1, 1])
    tp, tn, fp, fn = 2, 1, 1, 1
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert run(MatthewsCorrCoef(), [(as_scores(pred, 2), targ)]) == pytest.approx(expected)


# --- losses as metrics ----------------------------------------------------------------------------

def test_avg_loss_and_perplexity_are_batch_weighted():
    batches = [(torch.zeros(3, 2), torch.zeros(3), torch.tensor(1.0)), (torch.zeros(1, 2), torch.zeros(1), torch.tensor(5.0))]
    assert run(AvgLoss(), batches) == pytest.approx(2.0)
    assert run(Perplexity(), batches) == pytest.approx(math.exp(2.0))


def test_avg_smooth_loss_is_a_debiased_moving_average():
    losses = [4.0, 2.0, 3.0]
    beta = 0.9
    average = 0.0
    for loss in losses:
        average = beta * average + (1 - beta) * loss
    expected = average / (1 - beta ** len(losses))
    batches = [(torch.zeros(1), torch.zeros(1), torch.tensor(loss)) for loss in losses]
    assert run(AvgSmoothLoss(beta=beta), batches) == pytest.approx(expected)
    assert run(AvgSmoothLoss(), batches[:1]) == pytest.approx(4.0)  # one batch: the loss itself


# --- segmentation --------------------------------------------------------------------------------

def masks_to_logits(mask, n_classes=2):
    return torch.nn.functional.one_hot(mask, n_classes).permute(0, 3, 1, 2).float()


def test_dice_and_jaccard_accumulate_over_the_whole_set():
    pred_mask = torch.tensor([[[1, 1], [0, 0]], [[1, 0], [0, 0]]])
    targ_mask = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [1, 1]]])
    batches = split(masks_to_logits(pred_mask), targ_mask, [1, 1])
    intersection, pred_sum, targ_sum = 2, 3, 5
    assert run(Dice(), batches) == pytest.approx(2 * intersection / (pred_sum + targ_sum))
    assert run(JaccardCoeff(), batches) == pytest.approx(intersection / (pred_sum + targ_sum - intersection))


def test_dice_multi_averages_classes_present():
    pred_mask = torch.tensor([[[0, 1, 1, 2]]])
    targ_mask = torch.tensor([[[0, 1, 2, 2]]])
    # class 0: 2*1/2, class 1: 2*1/3, class 2: 2*1/3
    expected = (1.0 + 2 / 3 + 2 / 3) / 3
    assert run(DiceMulti(), [(masks_to_logits(pred_mask, 4), targ_mask)]) == pytest.approx(expected)


def test_custom_metric_subclass():
    class CountItems(Metric):
        def reset(self):
            self.count = 0

        def accumulate(self, learn):
            self.count += len(learn.yb[0])

        @property
        def value(self):
            return self.count

    assert run(CountItems, [(torch.zeros(2), torch.zeros(2)), (torch.zeros(3), torch.zeros(3))]) == 5
