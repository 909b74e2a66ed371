"""predict, predict_batch and get_preds on new items: the same values every way, the model's
train / eval state put back, and the learner's callbacks left alone."""
from __future__ import annotations

from operator import itemgetter

import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.categorical import Categorize
from fastlearn.data.datasets import Datasets
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat


def _tensor(values):
    return torch.tensor(values, dtype=torch.float32)


def make_learner():
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(80, 4, generator=gen)
    items = [(x.tolist(), "pos" if x[0] > 0 else "neg") for x in xs]
    dsets = Datasets(items, tfms=[[_tensor], [Categorize()]], getters=[itemgetter(0), itemgetter(1)],
                     splits=(list(range(60)), list(range(60, 80))))
    dls = dsets.dataloaders(bs=16, num_workers=0, device="cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), device="cpu")
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 0.05)
    return learn, [x for x, _ in items[60:]]


def test_predict_gives_what_get_preds_gives_on_the_same_items():
    learn, items = make_learner()
    preds, targets, decoded = learn.get_preds(dl=learn.dls.test_dl(items), with_decoded=True)
    assert preds.shape == (20, 2) and targets is None
    for i, item in enumerate(items):
        label, index, probs = learn.predict(item)
        assert torch.allclose(probs, preds[i], atol=1e-6)
        assert int(index) == int(decoded[i]) and label == learn.dls.vocab[int(decoded[i])]
    assert {learn.predict(item)[0] for item in items} == {"pos", "neg"}  # trained: both classes come out
    x, *_ = learn.predict(items[0], with_input=True)
    assert torch.equal(x, torch.tensor(items[0]))


def test_predict_batch_matches_predict_item_by_item():
    learn, items = make_learner()
    for bs in (None, 3):
        batch = learn.predict_batch(items, bs=bs)
        assert len(batch) == len(items)
        for (label, index, probs), item in zip(batch, items):
            one_label, one_index, one_probs = learn.predict(item)
            assert label == one_label and int(index) == int(one_index)
            assert torch.allclose(probs, one_probs, atol=1e-6)
    with pytest.raises(ValueError, match="predict_batch got no items"):
        learn.predict_batch([])


def test_predict_puts_a_training_model_back_module_by_module():
    learn, items = make_learner()
    learn.model.train()
    learn.model[1].eval()  # a frozen BatchNorm, as BnFreeze leaves it
    stats = learn.model[1].running_mean.clone()
    label, _, probs = learn.predict(items[0])
    assert learn.model.training and learn.model[0].training and not learn.model[1].training
    assert torch.equal(learn.model[1].running_mean, stats)  # predicted in eval mode: statistics unchanged
    learn.model.eval()
    assert torch.allclose(learn.predict(items[0])[2], probs)
    learn.get_preds()
    learn.validate()
    assert learn.model.training is False


def test_a_model_already_in_eval_mode_is_not_walked_again():
    learn, items = make_learner()
    learn.model.eval()
    calls = []
    for module in learn.model.modules():
        module.train = lambda mode=True, module=module: calls.append(mode) or nn.Module.train(module, mode)
    learn.predict(items[0])
    learn.predict_batch(items[:4])
    assert calls == [] and not learn.model.training
    learn.model.train()  # a training model is switched to eval for the pass, and back after it
    calls.clear()
    learn.predict(items[0])
    assert calls[0] is False and learn.model.training


def test_predict_adds_and_removes_no_callback():
    learn, items = make_learner()
    cbs = learn.cbs
    before = list(cbs)
    learn.predict(items[0])
    learn.predict_batch(items)
    learn.get_preds(dl=learn.dls.test_dl(items))
    assert learn.cbs is cbs and list(learn.cbs) == before  # the same list object: never rebuilt
    assert learn.gather_preds is None and learn.muted == ()


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 2), nn.Linear(2, 2)

    def forward(self, x, z):
        return self.a(x) + self.b(z)


class Listens(Callback):
    """Acts during validation: predict runs the full pass for it."""

    def __init__(self):
        self.batches = 0

    def after_batch(self):
        self.batches += 1


def test_two_inputs_predict_the_same_straight_to_the_model_and_through_the_pass(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    xs, zs = torch.randn(40, 4, generator=gen), torch.randn(40, 2, generator=gen)
    items = [(x.tolist(), z.tolist(), "pos" if x[0] + z[0] > 0 else "neg") for x, z in zip(xs, zs)]
    # each input picks its part of the item, so predict takes (x, z) as it is
    dsets = Datasets(items, tfms=[[itemgetter(0), _tensor], [itemgetter(1), _tensor], [Categorize()]], n_inp=2,
                     getters=[None, None, itemgetter(2)], splits=(list(range(30)), list(range(30, 40))))
    torch.manual_seed(0)
    learn = Learner(dsets.dataloaders(bs=8, num_workers=0, device="cpu"), TwoInputs(),
                    loss_func=CrossEntropyLossFlat(), device="cpu")
    item = (items[35][0], items[35][1])
    test_dl = type(learn.dls).test_dl
    with monkeypatch.context() as patch:
        patch.setattr(type(learn.dls), "test_dl", lambda *args, **kwargs: pytest.fail("a test loader was built"))
        direct = learn.predict(item, with_input=True)
    assert type(learn.dls).test_dl is test_dl
    listens = Listens()
    learn.add_cb(listens)
    full = learn.predict(item, with_input=True)
    assert listens.batches == 1
    (x, z), label, index, probs = direct
    assert torch.equal(x, torch.tensor(items[35][0])) and torch.equal(z, torch.tensor(items[35][1]))
    assert label == full[1] and torch.equal(index, full[2]) and torch.equal(probs, full[3])
    assert all(torch.equal(a, b) for a, b in zip(direct[0], full[0]))
    with torch.no_grad():
        expected = learn.model(torch.tensor([items[35][0]]), torch.tensor([items[35][1]])).softmax(1)[0]
    torch.testing.assert_close(probs, expected)
