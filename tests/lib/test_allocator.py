"""fastlearn.allocator: freed memory kept for reuse while training on a CPU (glibc's malloc)."""
import os
import subprocess
import sys

import pytest

# 160 MB in 16 MB tensors (each under glibc's largest mmap threshold, so on the heap once its
# threshold has risen), made, filled and freed five times in a fresh process: the page faults it costs
FAULTS = """
import resource, sys, torch
from fastlearn import allocator
if sys.argv[1] == "fit":  # a fit on the CPU sets it (unless the config says false)
    from fastlearn.data.databunch import DataBunch
    from fastlearn.learner import Learner
    items = list(zip(torch.randn(32, 4), torch.randn(32, 1)))
    learn = Learner(DataBunch.from_dsets(items[:24], items[24:], bs=8, device="cpu"), torch.nn.Linear(4, 1),
                    loss_func=torch.nn.MSELoss())
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
def churn():
    blocks = [torch.empty(4 * 2**20).fill_(1.0) for _ in range(10)]
    del blocks
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, allocator._kept)
"""


def faults(mode: str, config: str | None = None, tmp_path=None) -> tuple[int, str]:
    env = None
    if config is not None:
        path = tmp_path / "config.ini"
        path.write_text(f"[defaults]\nkeep_freed_memory = {config}\n")
        env = dict(os.environ, FASTLEARN_CONFIG=str(path))
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    return int(out[0]), out[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
def test_a_fit_on_the_cpu_keeps_freed_memory_for_the_next_batch(tmp_path):
    untouched, state = faults("none")
    assert state == "None" and untouched > 5 * 5000  # memory given back and faulted in anew each round
    kept, state = faults("fit")
    if state == "False":
        pytest.skip("malloc here is not glibc's (musl, or jemalloc / tcmalloc preloaded)")
    assert state == "True" and kept < untouched / 10  # the same blocks reused
    off, state = faults("fit", config="false", tmp_path=tmp_path)
    assert state == "None" and off > 5 * 5000  # the config turns it off
