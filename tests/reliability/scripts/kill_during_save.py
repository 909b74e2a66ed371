"""SIGKILL a process in the middle of ``learn.save``, N times, and report what was left.

    kill_during_save.py OUT N SEED

Each round forks a child that saves the same checkpoint over and over, kills it with SIGKILL
(every other round as soon as its temporary file appears, the others at a random moment), reaps
it, and checks that OUT/models/model.pth loads into a fresh learner with the expected weights.
After the last round it saves once more. Prints one JSON line: per round whether the kill left a
temporary file and whether the checkpoint loaded whole, then the files left after the final save.
Run in a fresh process so that the forked children start without CUDA or thread pools.
"""
from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn

from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat


def make_learner(path: Path) -> Learner:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=gen)
    items = list(zip(x, x.sum(1, keepdim=True)))
    dls = DataBunch.from_dsets(items[:48], items[48:], bs=16, device="cpu")
    torch.manual_seed(0)
    # about 4 MB of weights (12 MB with Adam's state): a save lasts long enough to be killed inside
    model = nn.Sequential(nn.Linear(8, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1))
    return Learner(dls, model, loss_func=MSELossFlat(), path=path, device="cpu")


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def main() -> None:
    out, rounds, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    learn = make_learner(out)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
    folder = out / "models"
    learn.save("model")
    expected = {k: v.clone() for k, v in learn.model.state_dict().items()}
    rng = random.Random(seed)
    report = []
    for attempt in range(rounds):
        pid = os.fork()
        if pid == 0:
            try:
                while True:
                    learn.save("model")
            finally:
                os._exit(0)
        if attempt % 2:
            deadline = time.monotonic() + 10
            while not temp_files(folder) and time.monotonic() < deadline:
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.003))
        else:
            time.sleep(rng.uniform(0.01, 0.15))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        left = temp_files(folder)
        fresh = make_learner(out)
        fresh.load("model")
        whole = all(torch.equal(fresh.model.state_dict()[k], v) for k, v in expected.items())
        report.append({"killed": os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL,
                       "left_temp": bool(left), "loaded_whole": whole,
                       "names": sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))})
    learn.save("model")
    print(json.dumps({"rounds": report, "after_next_save": sorted(p.name for p in folder.iterdir())}))


if __name__ == "__main__":
    main()
