"""Inference overhead against plain PyTorch, in the same process: ``learn.predict`` one image at a
time, ``learn.predict_batch`` and ``get_preds`` over a test loader, against the same resnet18 run
by hand on the same files (decode, resize, normalise, forward, softmax, argmax, class name).

The sides alternate (plain, fastlearn, plain, ...) and the medians of the rounds are compared, with
the load average, so that contention from other processes hits both alike.

    OMP_WAIT_POLICY=PASSIVE python bench/inference.py --rounds 5 --predict-n 50 --batch-n 500
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "compare"))
from common import IMAGENET_STATS, class_names, image_files, resnet18_model  # noqa: E402
from workloads_plain import load_image, to_input  # noqa: E402

from fastlearn.data.batch_transforms import Normalize  # noqa: E402
from fastlearn.datasets import fashion_mnist  # noqa: E402
from fastlearn.learner import Learner  # noqa: E402
from fastlearn.vision.data import ImageDataLoaders  # noqa: E402
from fastlearn.vision.transforms import Resize  # noqa: E402

SIZE = 32


def plain_predict(model, classes, files) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for f in files:
            probs = model(to_input(load_image(f, SIZE)[None], IMAGENET_STATS)).softmax(1)
            _ = classes[int(probs.argmax(1))]
    return time.perf_counter() - start


def plain_batch(model, files, bs: int) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(files), bs):
            images = torch.stack([load_image(f, SIZE) for f in files[i:i + bs]])
            _ = model(to_input(images, IMAGENET_STATS)).softmax(1)
    return time.perf_counter() - start


def timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--predict-n", type=int, default=50)
    parser.add_argument("--batch-n", type=int, default=500)
    parser.add_argument("--bs", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = str(fashion_mnist(n_per_class=100))
    dls = ImageDataLoaders.from_folder(data, item_tfms=Resize(SIZE), bs=args.bs, val_bs=args.bs,
                                       batch_tfms=[Normalize.from_stats(*IMAGENET_STATS)], num_workers=0,
                                       seed=0, device="cpu")
    learn = Learner(dls, resnet18_model())
    learn.model.eval()
    model, classes = resnet18_model().eval(), class_names(data)
    files = image_files(data, "train")
    one, many = [Path(f) for f in files[:args.predict_n]], [Path(f) for f in files[:args.batch_n]]
    has_batch = hasattr(learn, "predict_batch")
    sides = {
        "plain predict": lambda: plain_predict(model, classes, one),
        "predict": lambda: timed(lambda: [learn.predict(f) for f in one]),
        "plain batch": lambda: plain_batch(model, many, args.bs),
        "get_preds": lambda: timed(lambda: learn.get_preds(dl=learn.dls.test_dl(many))),
    }
    if has_batch:
        sides["predict_batch"] = lambda: timed(lambda: learn.predict_batch(many))
    for f in sides.values():  # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in sides}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for name, f in sides.items():
            times[name].append(f())
    load_after = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"rounds={args.rounds} predict_n={args.predict_n} batch_n={args.batch_n} bs={args.bs} "
          f"threads={torch.get_num_threads()}")
    for name, values in times.items():
        print(f"{name:>14}: median {med[name]:.3f}s  runs {[round(v, 3) for v in values]}")
    print(f"ratio predict/plain       = {med['predict'] / med['plain predict']:.3f} "
          f"({1000 * med['predict'] / len(one):.2f} ms vs {1000 * med['plain predict'] / len(one):.2f} ms per item)")
    print(f"ratio get_preds/plain     = {med['get_preds'] / med['plain batch']:.3f}")
    if has_batch:
        print(f"ratio predict_batch/plain = {med['predict_batch'] / med['plain batch']:.3f}")
    print(f"load average before {tuple(round(v, 2) for v in load_before)}, "
          f"after {tuple(round(v, 2) for v in load_after)}")


if __name__ == "__main__":
    main()
