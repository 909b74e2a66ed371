"""Kill a seeded training run with SIGKILL in the middle of epochs 1, 2 and 3, resuming it from
its last checkpoint each time, while an uninterrupted run of the same seed trains beside it.

    kill_and_resume.py KILLED_OUT FULL_OUT

The runs are those of tests/lib/ddp_scripts/resume_train.py, each in a child forked from this
process (which imported torch once and uses one thread), so every kill and every resume is a new
process without paying for the imports again. Prints one JSON line: how each run of the killed
chain ended (killed by a signal, or its exit status) with its output, and how the full run ended.
The caller compares the final weights, OUT/final.pt.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "lib" / "ddp_scripts"))

import torch  # noqa: E402
import torch._dynamo  # noqa: E402,F401  (building an optimizer imports it: once here, not in every child)

from resume_train import run  # noqa: E402

KILLS = (("killable", 1), ("resume", 2), ("resume", 3))  # (mode, epoch killed in)


def fork_run(mode: str, out: Path, wait_at: int | None, log: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        with open(log, "w") as file, contextlib.redirect_stdout(file):
            try:
                run(mode, out, wait_at)
                code = 0
            except BaseException:
                traceback.print_exc(file=file)
    finally:
        os._exit(code)


def ending(status: int) -> dict:
    return {"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status) else {"exit": os.WEXITSTATUS(status)}


def kill_when_marked(pid: int, marker: Path) -> dict:
    deadline = time.monotonic() + 90
    while not marker.exists():
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return ending(status)  # it ended before reaching the marker: the caller sees why
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    marker.unlink(missing_ok=True)
    return ending(status)


def main() -> None:
    killed, full = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    full_pid = fork_run("full", full, None, full.parent / "full.log")
    endings = []
    for i, (mode, epoch) in enumerate(KILLS):
        pid = fork_run(mode, killed, epoch, killed.parent / f"run_{i}.log")
        endings.append(kill_when_marked(pid, killed / "marker"))
    pid = fork_run("resume", killed, None, killed.parent / f"run_{len(KILLS)}.log")
    endings.append(ending(os.waitpid(pid, 0)[1]))
    full_ending = ending(os.waitpid(full_pid, 0)[1])
    logs = [(killed.parent / f"run_{i}.log").read_text() for i in range(len(KILLS) + 1)]
    print(json.dumps({"chain": endings, "logs": logs, "full": full_ending,
                      "full_log": (full.parent / "full.log").read_text()}))


if __name__ == "__main__":
    main()
