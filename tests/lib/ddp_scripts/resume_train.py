"""A seeded 5-epoch one-cycle run that saves a full checkpoint after every epoch.

    resume_train.py full OUT            train 5 epochs, write OUT/final.pt
    resume_train.py killable OUT [E]    the same, but in the middle of epoch E (default 2, the third)
                                        write OUT/marker and wait to be killed
    resume_train.py resume OUT [E]      load the newest checkpoint, finish the 5 epochs, write
                                        OUT/final.pt; with E, wait to be killed in the middle of epoch E
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.tracker import SaveModelCallback, latest_checkpoint

EPOCHS, LR = 5, 1e-2


class WaitToBeKilled(Callback):
    def __init__(self, epoch: int):
        self.at_epoch = epoch

    def after_batch(self):
        if self.training and self.epoch == self.at_epoch and self.iter == self.n_iter // 2:
            (Path(self.learn.path) / "marker").write_text(f"epoch {self.epoch} iter {self.iter}")
            time.sleep(120)


def make_learner(out: Path) -> Learner:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).long()
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:160], items[160:], bs=16, seed=7, device="cpu", num_workers=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat(), path=out)


def run(mode: str, out: Path, wait_at: int | None = None) -> None:
    """One run: "full", "killable" (waits to be killed in epoch ``wait_at``) or "resume" (from the
    newest checkpoint; with ``wait_at``, waits to be killed again)."""
    torch.set_num_threads(1)
    learn = make_learner(out)
    cbs = [SaveModelCallback(every_epoch=True)]
    start_epoch = 0
    if wait_at is not None:
        cbs.append(WaitToBeKilled(wait_at))
    if mode == "resume":
        name = latest_checkpoint(learn)
        learn.load(name)
        start_epoch = learn.epoch + 1
        print(f"resuming from {name} at epoch {start_epoch}", flush=True)
    with learn.no_bar():
        learn.fit_one_cycle(EPOCHS, LR, cbs=cbs, start_epoch=start_epoch)
    torch.save(learn.model.state_dict(), out / "final.pt")


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    wait_at = int(sys.argv[3]) if len(sys.argv) > 3 else (2 if mode == "killable" else None)
    run(mode, out, wait_at)


if __name__ == "__main__":
    main()
