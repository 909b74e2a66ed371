"""Distributed data parallel throughput: samples per second with 1 and with N processes.

    python bench/ddp.py                          # CPU, Gloo: 1 vs 2 processes, 1 thread each
    python bench/ddp.py --device cuda --procs 1 2 4
    python bench/ddp.py --device cuda --procs 1 --force-ddp   # one GPU: DDP on NCCL with 1 process

Each process keeps its batch size (weak scaling): the global batch grows with the processes.
The parent launches each configuration with torchrun, reads the throughput rank 0 reports, and
prints it with the scaling efficiency, throughput(N) / (N * throughput(1)), and the machine's load
average (timings on a shared machine move with it). Each worker also checks that every process
ends with the same weights and that a validation pass over an uneven set counts every item once.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _model(device: str, size: int):
    from torch import nn
    if device == "cpu":
        return nn.Sequential(nn.Linear(size, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    layers, channels = [], 3
    for width in (32, 64, 128, 256):
        layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1, bias=False),
                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10))


def worker(args: argparse.Namespace) -> None:
    import torch
    from torch.utils.data import TensorDataset

    from fastlearn.callback import Callback, CancelFitException
    from fastlearn.data.databunch import DataBunch
    from fastlearn.distributed import num_distrib, rank_distrib
    from fastlearn.learner import Learner
    from fastlearn.losses import CrossEntropyLossFlat
    from fastlearn.metrics import Metric

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    steps, warmup = args.steps, args.warmup
    n_train = (steps + warmup + 2) * args.bs * int(os.environ.get("WORLD_SIZE", "1"))
    g = torch.Generator().manual_seed(0)
    shape = (args.size,) if args.device == "cpu" else (3, args.size, args.size)
    x = torch.randn(n_train + 101, *shape, generator=g)
    y = torch.randint(0, 10, (n_train + 101,), generator=g)
    train, valid = TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])
    dls = DataBunch.from_dsets(train, valid, bs=args.bs, seed=1, device=args.device, num_workers=0)

    class Timer(Callback):
        order = 100

        def before_fit(self):
            self.count, self.start, self.elapsed = 0, None, None

        def after_batch(self):
            if not self.training:
                return
            self.count += 1
            if self.count == warmup:
                if args.device == "cuda":
                    torch.cuda.synchronize()
                self.start = time.perf_counter()
            elif self.count == warmup + steps:
                if args.device == "cuda":
                    torch.cuda.synchronize()
                self.elapsed = time.perf_counter() - self.start

    class CountItems(Metric):
        def reset(self):
            self.n = 0

        def accumulate(self, learn):
            self.n += len(learn.yb[0])

        @property
        def value(self):
            return self.n

    torch.manual_seed(0)
    learn = Learner(dls, _model(args.device, args.size), loss_func=CrossEntropyLossFlat(), metrics=CountItems(),
                    device=args.device, precision=args.precision, lr=1e-3)
    timer = Timer()
    context = learn.distrib_ctx() if args.force_ddp else contextlib.nullcontext()
    with context, learn.no_bar():
        learn.fit(1, cbs=timer)
        counted = learn.validate()[-1]
        checksum = torch.stack([p.detach().double().sum() for p in learn.model.parameters()]).sum()
        sums = [checksum.clone() for _ in range(num_distrib())]
        if torch.distributed.is_initialized():
            torch.distributed.all_gather(sums, checksum)
        model_type = type(learn.model).__name__
        if rank_distrib() == 0:
            world = num_distrib()
            print("RESULT " + json.dumps({
                "world": world, "samples_per_s": world * args.bs * steps / timer.elapsed,
                "weights_agree": bool(all(torch.equal(s, sums[0]) for s in sums)),
                "valid_items_counted": int(counted), "valid_items": len(valid),
                "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else "none",
                "model_after_fit": model_type}), flush=True)


def launch(args: argparse.Namespace, procs: int) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_WAIT_POLICY="PASSIVE")
    if args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(args.threads)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
               str(Path(__file__).resolve()), "--worker", "--device", args.device, "--bs", str(args.bs),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--size", str(args.size),
               "--threads", str(args.threads), "--precision", args.precision] + (["--force-ddp"] if args.force_ddp else [])
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{procs} process(es) failed (exit {result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--bs", type=int, default=None, help="batch size per process")
    parser.add_argument("--steps", type=int, default=None, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--size", type=int, default=None, help="features (cpu) or image size (cuda)")
    parser.add_argument("--threads", type=int, default=1, help="threads per process on a CPU")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--force-ddp", action="store_true", help="use DDP even with one process")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    cpu = args.device == "cpu"
    args.bs = args.bs or (64 if cpu else 128)
    args.steps = args.steps or (60 if cpu else 100)
    args.size = args.size or (512 if cpu else 64)
    if args.worker:
        worker(args)
        return
    print(f"device={args.device} bs/process={args.bs} steps={args.steps} precision={args.precision}"
          + (f" threads/process={args.threads}" if cpu else ""))
    print(f"{'procs':>5} {'backend':>7} {'samples/s':>10} {'efficiency':>10} {'weights agree':>13} "
          f"{'valid counted':>13} {'load avg before/after':>22}")
    base = None
    for procs in args.procs:
        before = os.getloadavg()[0]
        result = launch(args, procs)
        after = os.getloadavg()[0]
        rate = result["samples_per_s"]
        if procs == 1:
            base = rate
        efficiency = f"{rate / (procs * base):.2f}" if base else "-"
        counted = f"{result['valid_items_counted']}/{result['valid_items']}"
        print(f"{procs:>5} {result['backend']:>7} {rate:>10.1f} {efficiency:>10} {str(result['weights_agree']):>13} "
              f"{counted:>13} {before:>10.2f} / {after:<9.2f}", flush=True)


if __name__ == "__main__":
    main()
