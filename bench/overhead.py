"""Learner overhead against a plain PyTorch loop, in the same process.

The same small CNN trains on a fixed synthetic set of 32x32 images (bs 64) three ways:
``Learner.fit_one_cycle`` inside ``no_bar()``, ``Learner.fit_one_cycle`` with the progress bar,
and a hand-written loop with ``torch.optim.AdamW`` and ``torch.optim.lr_scheduler.OneCycleLR``
using the same hyper-parameters. The runs alternate (plain, learner, learner+bar, plain, ...)
so that contention from other processes hits all of them alike; the medians and their ratios
are printed with the load average.

``--diagnose`` then shows where the Learner's time goes: the call sites where it waits for the GPU
(torch's sync debug mode, CUDA only) and the functions that take the most time in one run
(cProfile).

``--clock cpu`` times the CPU seconds of this process instead of the wall clock (with one torch
thread on a shared CPU, the steadier measure); ``--model mlp`` trains a small MLP on 64 features
instead, whose step is short enough that the loop's own per-batch cost shows.

    OMP_WAIT_POLICY=PASSIVE python bench/overhead.py --batches 300 --repeats 3 [--clock cpu] [--model mlp] [--diagnose]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse
import collections
import contextlib
import cProfile
import io
import pstats
import statistics
import time
import warnings

import torch
from torch import nn

from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.optimizer import AdamW
from fastlearn.tracker import TerminateOnNaN

LR_MAX, DIV, DIV_FINAL, PCT_START = 3e-3, 25.0, 1e5, 0.25


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def small_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


MODELS = {"cnn": small_cnn, "mlp": small_mlp}
MODEL = small_cnn
CLOCK = time.perf_counter


def synthetic_images(n_batches: int, bs: int, device: torch.device):
    gen = torch.Generator().manual_seed(0)
    shape = (64,) if MODEL is not small_cnn else (3, 32, 32)
    x = torch.randn(n_batches * bs, *shape, generator=gen)
    y = torch.randint(0, 10, (n_batches * bs,), generator=gen)
    return x, y  # on the CPU, like a dataset read from disk; both loops move batches to the device


class TensorPairs(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def plain_loop(x, y, bs: int, device) -> float:
    torch.manual_seed(0)
    model = MODEL().to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=LR_MAX,
                            betas=(0.95, 0.99), eps=1e-5, weight_decay=0.01,
                            fused=True if device.type == "cuda" else None)
    n_batches = len(x) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR_MAX, total_steps=n_batches, pct_start=PCT_START, anneal_strategy="cos",
        div_factor=DIV, final_div_factor=DIV_FINAL / DIV, base_momentum=0.85, max_momentum=0.95)
    loss_func = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(TensorPairs(x, y), batch_size=bs, shuffle=False,
                                         pin_memory=device.type == "cuda")
    sync(device)
    start = CLOCK()
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        loss = loss_func(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    sync(device)
    return CLOCK() - start


def learner_loop(x, y, bs: int, device, bar: bool, without: tuple = (), nan_check=None) -> float:
    torch.manual_seed(0)
    ds = TensorPairs(x, y)
    dls = DataBunch.from_dsets(ds, TensorPairs(x[:bs], y[:bs]), bs=bs, shuffle=False, device=device)
    dls.valid.dataset = TensorPairs(x[:0], y[:0])  # no validation pass: train time only
    learn = Learner(dls, MODEL(), loss_func=CrossEntropyLossFlat(), opt_func=AdamW, device=device)
    learn.create_opt()
    for cb in without:
        learn.remove_cb(cb)
    if nan_check is not None:
        learn.add_cb(nan_check)  # replaces the default one (the same name)
    sync(device)
    start = CLOCK()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if bar:
            learn.fit_one_cycle(1, LR_MAX, div=DIV, div_final=DIV_FINAL, pct_start=PCT_START)
        else:
            with learn.no_bar():
                learn.fit_one_cycle(1, LR_MAX, div=DIV, div_final=DIV_FINAL, pct_start=PCT_START)
    sync(device)
    return CLOCK() - start


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def sync_sites(x, y, bs: int, device) -> collections.Counter:
    """Each call site where one Learner run waits for the GPU, with how often it does."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            learner_loop(x, y, bs, device, bar=False)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return collections.Counter(f"{w.filename}:{w.lineno} {str(w.message)[:60]}" for w in caught
                               if "synchroniz" in str(w.message))


class UnprotectedNaNCheck(TerminateOnNaN):
    """The deferred check without its protection: the optimizer gets no ``found_inf`` (for timing)."""

    def before_step(self):
        pass


def launch_cost(device, n: int = 3000) -> float:
    """Seconds of host time to queue one tiny kernel (on a CPU: to run it)."""
    x = torch.zeros((), device=device)
    sync(device)
    start = CLOCK()
    for _ in range(n):
        x.add_(1)
    elapsed = CLOCK() - start
    sync(device)
    return elapsed / n


def diagnose(x, y, bs: int, device, top: int = 30, repeats: int = 5) -> None:
    print(f"\nOne tiny kernel costs {launch_cost(device) * 1e6:.1f} us of host time to queue")
    variants = {"plain": lambda: plain_loop(x, y, bs, device),
                "learner": lambda: learner_loop(x, y, bs, device, bar=False),
                "learner, NaN check unprotected": lambda: learner_loop(x, y, bs, device, bar=False,
                                                                       nan_check=UnprotectedNaNCheck()),
                "learner without TerminateOnNaN": lambda: learner_loop(x, y, bs, device, bar=False,
                                                                       without=(TerminateOnNaN,))}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            times[name].append(run())
    plain = statistics.median(times["plain"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>34}: median {median:.3f}s, {median / plain:.3f} of plain, "
              f"{(median - plain) / (len(x) // bs) * 1e6:.0f} us per batch over it")
    if device.type == "cuda":
        sites = sync_sites(x, y, bs, device)
        print(f"\nGPU waits in one Learner run of {len(x) // bs} batches: {sum(sites.values())}")
        for site, count in sites.most_common(15):
            print(f"  {count:>6}  {site}")
    profiler = cProfile.Profile()
    profiler.enable()
    learner_loop(x, y, bs, device, bar=False)
    profiler.disable()
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of one Learner run, the {top} functions with the most own time:")
    print("\n".join(line for line in report.getvalue().splitlines() if line.strip())[:8000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed seconds; cpu: this process's CPU seconds")
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn")
    parser.add_argument("--diagnose", action="store_true",
                        help="then show the Learner's GPU waits (CUDA) and a cProfile of one run")
    args = parser.parse_args()
    global MODEL, CLOCK
    MODEL, CLOCK = MODELS[args.model], (time.process_time if args.clock == "cpu" else time.perf_counter)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    x, y = synthetic_images(args.batches, args.bs, device)
    # warm-up (allocator, kernels, imports)
    plain_loop(x[: 10 * args.bs], y[: 10 * args.bs], args.bs, device)
    learner_loop(x[: 10 * args.bs], y[: 10 * args.bs], args.bs, device, bar=False)
    times: dict[str, list[float]] = {"plain": [], "learner": [], "learner+bar": []}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        times["plain"].append(plain_loop(x, y, args.bs, device))
        times["learner"].append(learner_loop(x, y, args.bs, device, bar=False))
        times["learner+bar"].append(learner_loop(x, y, args.bs, device, bar=True))
    load_after = os.getloadavg()
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"device={device} model={args.model} clock={args.clock} batches={args.batches} bs={args.bs} "
          f"repeats={args.repeats} threads={torch.get_num_threads()}")
    for name, values in times.items():
        print(f"{name:>12}: median {medians[name]:.3f}s  runs {[round(v, 3) for v in values]}")
    print(f"ratio learner/plain     = {medians['learner'] / medians['plain']:.3f}")
    print(f"ratio learner+bar/plain = {medians['learner+bar'] / medians['plain']:.3f}")
    per_batch = (medians["learner"] - medians["plain"]) / args.batches * 1e6
    print(f"Learner overhead per batch: {per_batch:.0f} us (plain step {medians['plain'] / args.batches * 1e6:.0f} us)")
    print(f"load average before {tuple(round(v, 2) for v in load_before)}, "
          f"after {tuple(round(v, 2) for v in load_after)}")
    if args.diagnose:
        diagnose(x, y, args.bs, device)


if __name__ == "__main__":
    main()
