"""Images per second through the training loader: fastlearn's DataBlock vs a hand-written
``torch.utils.data`` loader doing the same work (decode PNG, random square crop, resize,
collate, uint8 → float), in one process, runs alternating A B A B, 0 and 2 workers.

    OMP_WAIT_POLICY=PASSIVE python bench/dataloading.py [--n 3000] [--size 48] [--reps 5] [--workers 0,2]

Prints the median images/s of each and the ratio fastlearn / hand-written (1.0 = as fast).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

import numpy as np
import PIL.Image
import torch
import torchvision.transforms.v2.functional as tvf
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_image

from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock
from fastlearn.data.getters import get_image_files, parent_label
from fastlearn.data.splitters import RandomSplitter
from fastlearn.vision.data import ImageBlock
from fastlearn.vision.transforms import Resize

N_CLASSES = 10


def make_images(root: str, n: int, px: int = 64) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (N_CLASSES, px // 8, px // 8, 3), dtype=np.uint8)
    for i in range(n):
        c = i % N_CLASSES
        folder = os.path.join(root, f"class{c}")
        os.makedirs(folder, exist_ok=True)
        small = PIL.Image.fromarray(base[c]).resize((px + (i % 7) * 4, px), PIL.Image.BILINEAR)
        noise = rng.integers(-30, 30, (px, px + (i % 7) * 4, 3))
        array = np.clip(np.asarray(small).astype(int) + noise, 0, 255).astype(np.uint8)
        PIL.Image.fromarray(array).save(os.path.join(folder, f"{i:05d}.png"))


class HandWritten(Dataset):
    """What a user would write by hand: decode, random square crop, resize, label index."""

    def __init__(self, files, size: int):
        self.files = [str(f) for f in files]
        names = sorted({os.path.basename(os.path.dirname(f)) for f in self.files})
        index = {name: i for i, name in enumerate(names)}
        self.labels = [index[os.path.basename(os.path.dirname(f))] for f in self.files]
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        img = decode_image(self.files[i], mode=ImageReadMode.RGB)
        h, w = img.shape[-2:]
        side = min(h, w)
        top, left = random.randint(0, h - side), random.randint(0, w - side)
        img = tvf.resize(img[:, top:top + side, left:left + side], [self.size, self.size], antialias=True)
        return img, torch.tensor(self.labels[i])


def time_pass(loader, float_in_loop: bool) -> float:
    start = time.perf_counter()
    n = 0
    for xb, yb in loader:
        if float_in_loop:
            xb = xb.float().div_(255)
        n += len(xb)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="number of PNG files")
    parser.add_argument("--size", type=int, default=48, help="output size after resizing")
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5, help="runs of each loader per worker count")
    parser.add_argument("--workers", default="0,2", help="worker counts to measure, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        make_images(root, args.n)
        print(f"wrote {args.n} PNGs (64 px high, 64-88 px wide) in {time.perf_counter() - start:.1f}s")
        files = get_image_files(root)
        for workers in (int(w) for w in args.workers.split(",")):
            dls = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
                            get_y=parent_label, splitter=RandomSplitter(0.0, seed=0),
                            item_tfms=Resize(args.size)).dataloaders(
                root, bs=args.bs, num_workers=workers, device="cpu", seed=0)
            hand = TorchDataLoader(HandWritten(files, args.size), batch_size=args.bs, shuffle=True,
                                   drop_last=True, num_workers=workers)
            ours, theirs = [], []
            time_pass(dls.train, False), time_pass(hand, True)  # warm-up: file cache, imports
            load_before = os.getloadavg()[0]
            for _ in range(args.reps):
                ours.append(time_pass(dls.train, False))
                theirs.append(time_pass(hand, True))
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"num_workers={workers}: fastlearn {a:8.0f} img/s  hand-written {b:8.0f} img/s  "
                  f"ratio {a / b:.3f}  (runs: {[round(x) for x in ours]} vs {[round(x) for x in theirs]}; "
                  f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
