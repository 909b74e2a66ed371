"""Speed and loss of precision / memory-format / compile settings on one GPU.

    python bench/gpu_check.py [--steps 100] [--size 128] [--bs 128]

A resnet-ish CNN on synthetic images (a bright square whose grid position is the class, on
noise), trained from the same initial weights on the same batches in each configuration:
fp32, fp16, bf16, bf16 + channels_last, bf16 + channels_last + torch.compile, through the
Learner, and fp32 / fp16 / bf16 through a plain PyTorch loop over the same loader, in the same
process, for the ratio. Prints images per second, the speed-up over fp32 and the last loss.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import Dataset

from fastlearn.callback import Callback, CancelFitException
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.optimizer import AdamW

N_CLASSES = 9


class SquaresDataset(Dataset):
    """uint8 images of noise with a bright square in one of 9 grid cells; the cell is the label."""

    def __init__(self, n: int, size: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 90, (n, 3, size, size), generator=g, dtype=torch.uint8)
        self.y = torch.randint(0, N_CLASSES, (n,), generator=g)
        cell = size // 3
        for k in range(N_CLASSES):
            rows = self.y == k
            r, c = divmod(k, 3)
            self.x[rows, :, r * cell + cell // 4:r * cell + 3 * cell // 4, c * cell + cell // 4:c * cell + 3 * cell // 4] += 120

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def to_float(batch):
    """Batch transform on the GPU: uint8 images to floats in [0, 1]."""
    x, y = batch
    return x.float().div_(255), y


def block(c_in: int, c_out: int, stride: int) -> nn.Module:
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                                      nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(c_out))
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(self.body(x) + self.skip(x))
    return Residual()


def resnetish() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                         block(32, 64, 2), block(64, 128, 2), block(128, 256, 2), block(256, 256, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, N_CLASSES))


class Timer(Callback):
    order = 100

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps = warmup, steps

    def before_fit(self):
        self.count, self.start, self.elapsed, self.losses = 0, None, None, []

    def after_batch(self):
        if not self.training:
            return
        self.count += 1
        self.losses.append(self.loss)
        if self.count == self.warmup:
            torch.cuda.synchronize()
            self.start = time.perf_counter()
        elif self.count == self.warmup + self.steps:
            torch.cuda.synchronize()
            self.elapsed = time.perf_counter() - self.start
            raise CancelFitException()


def run_learner(dls, precision: str, channels_last: bool, compiled: bool, warmup: int, steps: int):
    learn = Learner(dls, resnetish(), loss_func=CrossEntropyLossFlat(), opt_func=AdamW, lr=2e-3,
                    precision=precision, device="cuda")
    if channels_last:
        learn.to_channels_last()
    if compiled:
        learn.compile()
    timer = Timer(warmup, steps)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, cbs=timer)
    last = torch.stack([loss.float() for loss in timer.losses[-10:]]).mean().item()
    skipped = getattr(getattr(learn, "mixed_precision", None), "skipped_steps", 0)
    return timer.elapsed, last, skipped


def run_plain(loader, precision: str, warmup: int, steps: int):
    """The same training written as a plain PyTorch loop (the reference for the ratio)."""
    model = resnetish().cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01,
                            fused=True)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    loss_fn, losses, count, start = nn.CrossEntropyLoss(), [], 0, None
    model.train()
    while True:
        for x, y in loader:
            x, y = to_float((x.cuda(non_blocking=True), y.cuda(non_blocking=True)))
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = loss_fn(model(x).float(), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            count += 1
            if count == warmup:
                torch.cuda.synchronize()
                start = time.perf_counter()
            elif count == warmup + steps:
                torch.cuda.synchronize()
                return time.perf_counter() - start, torch.stack(losses[-10:]).float().mean().item(), 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--bs", type=int, default=128)
    parser.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)))
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check.py needs a CUDA GPU; this torch sees none")
    torch.backends.cudnn.benchmark = True
    n = (args.steps + args.warmup + 5) * args.bs
    train, valid = SquaresDataset(n, args.size, 0), SquaresDataset(args.bs, args.size, 1)
    dls = DataBunch.from_dsets(train, valid, bs=args.bs, seed=2, device="cuda", num_workers=args.workers)
    for dl in dls.loaders:
        dl.after_batch = to_float
    plain_loader = TorchDataLoader(train, batch_size=args.bs, shuffle=True, drop_last=True,
                                   num_workers=args.workers, pin_memory=True,
                                   generator=torch.Generator().manual_seed(2))
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | {args.size}px, bs {args.bs}, "
          f"{args.steps} timed steps after {args.warmup} warm-up", flush=True)
    configs = [("fp32", False, False), ("fp16", False, False), ("bf16", False, False), ("bf16", True, False)]
    if not args.no_compile:
        configs.append(("bf16", True, True))
    rows = []
    for precision in ("fp32", "fp16", "bf16"):
        elapsed, loss, _ = run_plain(plain_loader, precision, args.warmup, args.steps)
        rows.append((f"plain torch {precision}", elapsed, loss, 0))
        print(f"  done: {rows[-1][0]}", flush=True)
    for precision, channels_last, compiled in configs:
        name = "fastlearn " + precision + (" +channels_last" if channels_last else "") + (" +compile" if compiled else "")
        start = time.perf_counter()
        elapsed, loss, skipped = run_learner(dls, precision, channels_last, compiled, args.warmup, args.steps)
        rows.append((name, elapsed, loss, skipped))
        print(f"  done: {name} ({time.perf_counter() - start:.0f}s with warm-up)", flush=True)
    base = {name.split()[-1]: elapsed for name, elapsed, _, _ in rows if name.startswith("plain")}
    fp32_learner = next(elapsed for name, elapsed, _, _ in rows if name == "fastlearn fp32")
    print(f"\n{'configuration':<38} {'img/s':>9} {'vs fastlearn fp32':>18} {'vs plain same prec.':>20} "
          f"{'last loss':>10} {'skipped':>8}")
    for name, elapsed, loss, skipped in rows:
        rate = args.bs * args.steps / elapsed
        precision = name.split()[1]
        ratio = f"{base[precision] / elapsed:.2f}" if name.startswith("fastlearn") else "-"
        print(f"{name:<38} {rate:>9.0f} {fp32_learner / elapsed:>18.2f} {ratio:>20} {loss:>10.4f} {skipped:>8}")
    print("(vs plain: plain-loop time / fastlearn time; 1.00 means no loop overhead)")


if __name__ == "__main__":
    main()
