"""A seeded 5-epoch one-cycle run that saves a full checkpoint after every epoch.

    resume_train.py full OUT            train 5 epochs, write OUT/final.pt
    resume_train.py killable OUT        the same, but in the middle of the third epoch write
                                        OUT/marker and wait to be killed
    resume_train.py resume OUT          load the newest checkpoint, finish the 5 epochs, write OUT/final.pt
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.core import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.tracker import SaveModelCallback, latest_checkpoint

EPOCHS, LR = 5, 1e-2


class WaitToBeKilled(Callback):
    def after_batch(self):
        if self.training and self.epoch == 2 and self.iter == self.n_iter // 2:
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


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    learn = make_learner(out)
    cbs = [SaveModelCallback(every_epoch=True)]
    start_epoch = 0
    if mode == "killable":
        cbs.append(WaitToBeKilled())
    elif mode == "resume":
        name = latest_checkpoint(learn)
        learn.load(name)
        start_epoch = learn.epoch + 1
        print(f"resuming from {name} at epoch {start_epoch}")
    with learn.no_bar():
        learn.fit_one_cycle(EPOCHS, LR, cbs=cbs, start_epoch=start_epoch)
    torch.save(learn.model.state_dict(), out / "final.pt")


if __name__ == "__main__":
    main()
