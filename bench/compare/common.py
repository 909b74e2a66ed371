"""What the three implementations of each workload share: settings, models, measurements.

Imported by ``worker.py`` in both environments (the main one for fastlearn and the plain loop,
``.venv-bench`` for fastai). It imports nothing but torch and the standard library at the top;
fastlearn is imported only inside :func:`lite0_model`, which every side calls to get the same
EfficientNet-Lite0 (fastlearn's architecture code and packaged weights, fastlearn's head).
"""
from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

# Normalisation statistics, written out here so that no side needs another library's constants.
IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
LITE_STATS = ([127 / 255] * 3, [128 / 255] * 3)  # what the EfficientNet-Lite weights expect: (pixel - 127) / 128

# fastai's and fastlearn's defaults, spelt out for the plain loop.
ADAM_BETAS, ADAM_EPS, WEIGHT_DECAY = (0.9, 0.99), 1e-5, 0.01
MOMS = (0.95, 0.85, 0.95)
DIV, DIV_FINAL = 25.0, 1e5


@dataclass
class Settings:
    """One run's sizes; the driver passes them to every worker as JSON so all sides match."""

    data: str = ""              # the Fashion-MNIST folder (train/<class>, valid/<class>)
    bs: int = 64
    threads: int = 1            # torch intra-op threads in every worker
    fit_size: int = 32          # resnet18 from scratch
    fit_epochs: int = 3
    fit_lr: float = 2e-3
    loading_passes: int = 3     # timed passes over the training loader (after one warm-up pass)
    loading_workers: tuple = (0, 2)
    lr_find_it: int = 50
    tune_size: int = 64         # efficientnet_lite0 fine_tune
    tune_epochs: int = 1        # after one frozen epoch
    tune_lr: float = 2e-3
    infer_size: int = 32
    infer_n: int = 1000         # images through get_preds
    predict_n: int = 100        # images through predict, one at a time
    predict_passes: int = 3     # passes over those images; the row reads the median pass
    workers: int = 0            # loader workers (the loading workload sets its own)
    tab_rows: int = 120_000     # the synthetic table (tabular_frame): rows, the last fifth for validation
    tab_bs: int = 512           # training and validation batch size on every side
    tab_epochs: int = 1
    tab_lr: float = 1e-2
    text_batches: int = 4       # timed AWD-LSTM classifier batches per run, after two warm-up ones
    text_docs: int = 300        # AWD-LSTM language model: one epoch on this many reviews (mean batch)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def set_threads(n: int) -> None:
    torch.set_num_threads(n)


def image_files(root: str, split: str) -> list[str]:
    """The PNG and JPEG files of ``root/split/<class>/``, sorted (the same order on every side)."""
    folder = os.path.join(root, split)
    return sorted(os.path.join(folder, c, f) for c in sorted(os.listdir(folder))
                  for f in os.listdir(os.path.join(folder, c)) if f.endswith((".png", ".jpg")))


def jpeg_copy(root: str, size: int, quality: int = 90) -> str:
    """``root``'s images as ``size`` px JPEGs in a sibling folder (made once, same layout), where
    decoding rather than collating is the loader's work."""
    import PIL.Image
    target = f"{root.rstrip(os.sep)}_jpg{size}"
    if not os.path.exists(os.path.join(target, "done")):
        for split in ("train", "valid"):
            for f in image_files(root, split):
                out = os.path.join(target, os.path.relpath(f, root))[:-len(".png")] + ".jpg"
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with PIL.Image.open(f) as im:
                    im.convert("RGB").resize((size, size), PIL.Image.BICUBIC).save(out, quality=quality)
        open(os.path.join(target, "done"), "w").close()
    return target


def class_names(root: str) -> list[str]:
    return sorted(os.listdir(os.path.join(root, "train")))


def resnet18_model(n_out: int = 10) -> nn.Module:
    """torchvision's resnet18, random init from seed 0: the same starting weights on every side."""
    from torchvision.models import resnet18
    torch.manual_seed(0)
    return resnet18(num_classes=n_out)


def lite0_model(n_out: int = 10) -> nn.Module:
    """``nn.Sequential(body, head)``: fastlearn's EfficientNet-Lite0 with its packaged ImageNet
    weights and fastlearn's head, seeded as ``vision_learner`` builds it after ``torch.manual_seed(0)``."""
    from fastlearn.vision.learner import vision_model
    torch.manual_seed(0)
    return vision_model("efficientnet_lite0", n_out, pretrained=True)


def lite0_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The parameter groups fastlearn's ``vision_learner`` uses (two body halves, the head)."""
    from fastlearn.vision.models import arch_meta
    return arch_meta("efficientnet_lite0")["split"](model)


def checksum(model: nn.Module) -> float:
    """A number that differs when the starting weights differ (reported to show all sides match)."""
    with torch.no_grad():
        return round(float(sum(p.double().abs().sum() for p in model.state_dict().values()
                               if p.is_floating_point())), 3)


def one_cycle_lr(pct: float, lr_max: float, div: float, div_final: float, pct_start: float) -> float:
    """The learning rate at ``pct`` of a one-cycle schedule (cosine up, then cosine down)."""
    def cos(start, end, p):
        return end + (start - end) / 2 * (1 + math.cos(math.pi * p))
    if pct < pct_start:
        return cos(lr_max / div, lr_max, pct / pct_start)
    return cos(lr_max, lr_max / div_final, (pct - pct_start) / (1 - pct_start))


def rss_mb() -> float:
    """The resident set size now, in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall) and ``t.cpu_seconds`` (this process's CPU
    time); records the 1-minute load average at start and end."""

    def __enter__(self) -> "Timer":
        self.load_start = os.getloadavg()[0]
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start  # this process's CPU time: steadier under load
        self.load_end = os.getloadavg()[0]

    def fields(self, prefix: str = "") -> dict:
        return {f"{prefix}seconds": self.seconds, f"{prefix}cpu_seconds": self.cpu_seconds,
                f"{prefix}load": round((self.load_start + self.load_end) / 2, 2)}


def median_pass_rate(predict_one, items: list, passes: int) -> tuple[float, list]:
    """Items per second of ``predict_one`` called on each item in turn, over the median of
    ``passes`` passes (a pass of ~0.5 s is moved by one collection or one burst of another
    process; the median pass is not), and the last pass's results."""
    import statistics
    seconds = []
    for _ in range(passes):
        with Timer() as t:
            results = [predict_one(item) for item in items]
        seconds.append(t.seconds)
    return len(items) / statistics.median(seconds), results


def fit_workload(s: Settings, learn) -> dict:
    """``fit_one_cycle`` timed the same way for both libraries (their Learners share the course API)."""
    start_sum, setup_rss = checksum(learn.model), rss_mb()
    with learn.no_bar(), learn.no_logging(), Timer() as t:
        learn.fit_one_cycle(s.fit_epochs, s.fit_lr)
    valid_loss, acc = learn.validate()[:2]
    return {**t.fields(), "epoch_s": t.seconds / s.fit_epochs, "accuracy": float(acc),
            "valid_loss": float(valid_loss), "setup_rss_mb": setup_rss, "peak_rss_mb": peak_rss_mb(),
            "checksum": start_sum}


def loading_workload(s: Settings, make_loaders) -> dict:
    """Images per second through ``make_loaders(workers).train``, median of the passes after a warm one."""
    result = {}
    for workers in s.loading_workers:
        dls = make_loaders(workers)
        rates = []
        for i in range(s.loading_passes + 1):  # the first pass warms the file cache
            with Timer() as t:
                n = sum(len(xb) for xb, _ in dls.train)
            if i:
                rates.append(n / t.seconds)
        result[f"images_per_s_w{workers}"] = sorted(rates)[len(rates) // 2]
    return {**result, "images": n}


# The tabular workload's table: categorical columns of these cardinalities (string values, as read
# from a CSV), continuous columns on different scales, and a binary label that depends on both.
TAB_CARDS = (3, 7, 12, 30, 60, 250)
TAB_CATS = tuple(f"cat{i}" for i in range(len(TAB_CARDS)))
TAB_CONTS = tuple(f"cont{i}" for i in range(6))
TAB_LAYERS = (200, 100)


def tabular_frame(n_rows: int, seed: int = 0):
    """A seeded synthetic table (pandas DataFrame) of ``n_rows`` rows: ``TAB_CATS``, ``TAB_CONTS`` and
    ``label`` ("yes"/"no"), the same on every side."""
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    columns, logit = {}, np.zeros(n_rows)
    for name, card in zip(TAB_CATS, TAB_CARDS):
        codes = rng.integers(0, card, n_rows)
        logit += rng.normal(0, 0.7, card)[codes]
        columns[name] = np.array([f"{name}_{k}" for k in range(card)])[codes]
    for i, name in enumerate(TAB_CONTS):
        values = rng.normal(i, 1 + i, n_rows)
        logit += (0.6 if i % 2 else -0.4) * (values - i) / (1 + i)
        columns[name] = values.astype("float32")
    columns["label"] = np.where(logit + rng.logistic(0, 0.5, n_rows) > 0, "yes", "no")
    return pd.DataFrame(columns)


def tabular_splits(n_rows: int) -> tuple[list[int], list[int]]:
    """Training rows first, the last fifth for validation."""
    cut = n_rows - n_rows // 5
    return list(range(cut)), list(range(cut, n_rows))


def text_workload(side: str, workload: str, s: Settings) -> dict:
    """One AWD-LSTM run of ``bench/text_speed.py`` on its prepared token ids, as that script's worker
    runs it: ``workload`` "lm" is one language-model epoch (batches of 32 × 48 tokens) on ``text_docs``
    reviews, its mean batch after two warm-up ones (an epoch, not its first batches: the batches of a
    loop that keeps subnormal floats slow down ~10x within ten steps); "clas" is ``text_batches``
    classifier batches of 32 reviews. ``side`` is "fastlearn", "fastai" or "plain". The driver
    prepares the ids first."""
    import statistics
    import sys
    bench = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import text_speed
    data = torch.load(text_speed.OUT / "data.pt", weights_only=True)
    cfg = {"batches": s.text_batches, "threads": s.threads, "acc_docs": s.text_docs, "acc_valid": 50}
    workload = "lm_acc" if workload == "lm" else workload
    run = text_speed.run_plain if side == "plain" else text_speed.run_library
    result = run(side, workload, data, cfg)
    wall, cpu = text_speed.per_unit(result, workload)
    return {"batch_s": statistics.mean(result["wall"]), "per_unit_s": wall, "per_unit_cpu_s": cpu,
            "batches": len(result["wall"]), "tokens_per_batch": statistics.median(result["tokens"])}

