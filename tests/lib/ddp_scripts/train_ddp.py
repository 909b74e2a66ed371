"""Trains the shared small model; launched by the tests with torchrun (1 or 2 processes).

Every process writes ``<out>/rank<R>.json`` with its final weights, its metrics and what it saw.
The script has no distributed code: the Learner finds torchrun's environment by itself.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from common import make_learner, weights, write_json
from fastlearn.callback import Callback
from fastlearn.distributed import num_distrib, rank_distrib
from fastlearn.tracker import SaveModelCallback


class CrashAt(Callback):
    """Raise on one rank at one training batch (the failure test)."""

    def __init__(self, rank: int, batch: int):
        self.rank, self.batch = rank, batch

    def before_batch(self):
        if self.training and rank_distrib() == self.rank and self.train_iter == self.batch:
            raise RuntimeError(f"planned failure on rank {self.rank} at batch {self.batch}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--bs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--crash-rank", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    rank = int(os.environ.get("RANK", 0))
    cbs = [SaveModelCallback(every_epoch=True)]
    if args.crash_rank is not None:
        cbs.append(CrashAt(args.crash_rank, batch=3))
    learn = make_learner(bs=args.bs, path=out / f"rank{rank}", cbs=cbs)
    learn.fit(args.epochs)
    trained = weights(learn)
    table = [list(row) for row in learn.recorder.values]
    valid = learn.validate()
    preds, targs = learn.get_preds()
    inputs = learn.get_preds(with_input=True)[0]  # gathered like the predictions, in dataset order
    learn.save("final")
    learn.load(out / "rank0" / "models" / "final.pth")
    write_json(out / f"rank{rank}.json", {
        "rank": rank_distrib(), "world": num_distrib(), "weights": trained, "values": table,
        "validate": valid, "preds": preds.tolist(), "targs": targs.tolist(),
        "inputs": inputs.tolist(),
        "loaded_equal": weights(learn) == trained, "is_main": learn.is_main_process,
        "model_type": type(learn.model).__name__})


if __name__ == "__main__":
    main()
