"""Shared pieces of the distributed tests: a small seeded dataset, model and learner."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.metrics import AccumMetric, Metric, accuracy
from fastlearn.optimizer import SGD

N_TRAIN, N_VALID, N_FEATURES, N_CLASSES = 96, 37, 6, 3


class CountItems(Metric):
    """How many validation items the metrics saw (duplicated padding would show here)."""

    def reset(self):
        self.n = 0

    def accumulate(self, learn):
        self.n += len(learn.yb[0])

    @property
    def value(self):
        return self.n


def torchmetrics_count():
    """A torchmetrics metric counting the validation items (its own distributed sum would count
    each item twice on two processes); None without torchmetrics."""
    try:
        import torchmetrics
    except ImportError:
        return None

    class ItemCount(torchmetrics.Metric):
        def __init__(self):
            super().__init__()
            self.add_state("n", default=torch.tensor(0), dist_reduce_fx="sum")

        def update(self, preds, target):
            self.n += len(target)

        def compute(self):
            return self.n

    return ItemCount()


def mean_true_prob(preds, targs):
    probs = torch.softmax(preds.reshape(-1, N_CLASSES), dim=-1)
    return probs[torch.arange(len(targs)), targs.long()].mean()


def make_dsets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + N_VALID, N_FEATURES, generator=g)
    w = torch.randn(N_FEATURES, N_CLASSES, generator=g)
    y = (x @ w + 0.5 * torch.randn(N_TRAIN + N_VALID, N_CLASSES, generator=g)).argmax(-1)
    items = list(zip(x, y))
    return items[:N_TRAIN], items[N_TRAIN:]


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(N_FEATURES, 16), nn.ReLU(), nn.Linear(16, N_CLASSES))


def make_learner(bs: int, path=".", seed: int = 3, cbs=None) -> Learner:
    train, valid = make_dsets()
    dls = DataBunch.from_dsets(train, valid, bs=bs, seed=seed, device="cpu", num_workers=0)
    count = torchmetrics_count()
    metrics = [accuracy, AccumMetric(mean_true_prob, flatten=False), CountItems()] + ([count] if count else [])
    return Learner(dls, make_model(), loss_func=CrossEntropyLossFlat(), opt_func=SGD, lr=0.1,
                   metrics=metrics, path=path, cbs=cbs)


def weights(learn) -> list:
    from fastlearn.checkpoint import unwrapped_model
    return [p.detach().double().flatten().tolist() for p in unwrapped_model(learn).parameters()]


def write_json(path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data))


def train_with_accumulation(out: str) -> None:
    """Run by notebook_launcher: bs 4 per process, steps every 16 samples per process."""
    from fastlearn.distributed import rank_distrib
    from fastlearn.training import GradientAccumulation
    torch.set_num_threads(1)
    learn = make_learner(bs=4, path=out)
    learn.fit(2, cbs=GradientAccumulation(n_acc=16))
    write_json(Path(out) / f"acc_rank{rank_distrib()}.json",
               {"weights": weights(learn), "world": int(os.environ.get("WORLD_SIZE", 1))})
