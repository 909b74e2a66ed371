"""The benchmark workloads written with fastlearn, as its README and course notebooks use it.

Every function takes the run's ``Settings`` and returns a dict of measurements; ``worker.py``
calls one per process. Progress bars and the epoch table are off (``no_bar``/``no_logging``) on
this side and on fastai's.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import torch

from fastlearn.data.batch_transforms import Normalize
from fastlearn.learner import Learner
from fastlearn.metrics import accuracy, error_rate
from fastlearn.vision.data import ImageDataLoaders
from fastlearn.vision.learner import vision_learner
from fastlearn.vision.transforms import Resize

from common import (IMAGENET_STATS, TAB_CATS, TAB_CONTS, TAB_LAYERS, Settings, Timer, checksum, fit_workload,
                    image_files, loading_workload, median_pass_rate, peak_rss_mb, resnet18_model, rss_mb, tabular_frame,
                    tabular_splits)


def _loaders(s: Settings, size: int, normalize: bool = True, workers: int | None = None):
    batch_tfms = [Normalize.from_stats(*IMAGENET_STATS)] if normalize else None
    return ImageDataLoaders.from_folder(s.data, item_tfms=Resize(size), batch_tfms=batch_tfms, bs=s.bs,
                                        val_bs=s.bs,  # fastlearn's default is 2 * bs
                                        num_workers=s.workers if workers is None else workers, seed=0,
                                        device="cpu")


def _resnet_learner(s: Settings, size: int) -> Learner:
    return Learner(_loaders(s, size), resnet18_model(), metrics=accuracy)


def fit(s: Settings) -> dict:
    return fit_workload(s, _resnet_learner(s, s.fit_size))


def loading(s: Settings) -> dict:
    """Images per second through the training loader with 0, then 2 worker processes."""
    return loading_workload(s, lambda workers: _loaders(s, s.fit_size, workers=workers))


def lr_find(s: Settings) -> dict:
    learn = _resnet_learner(s, s.fit_size)
    with learn.no_bar(), Timer() as t:
        suggestion = learn.lr_find(num_it=s.lr_find_it, stop_div=False, show_plot=False)
    return {**t.fields(), "batches": len(learn.lr_finder_result[0]), "valley": float(suggestion[0])}


def fine_tune(s: Settings) -> dict:
    dls = _loaders(s, s.tune_size, normalize=False)  # vision_learner adds the weights' normalisation
    torch.manual_seed(0)
    learn = vision_learner(dls, "efficientnet_lite0", metrics=error_rate)
    start_sum, setup_rss = checksum(learn.model), rss_mb()
    with learn.no_bar(), learn.no_logging(), Timer() as t:
        learn.fine_tune(s.tune_epochs, base_lr=s.tune_lr, freeze_epochs=1)
    valid_loss, err = learn.validate()[:2]
    return {**t.fields(), "epoch_s": t.seconds / (s.tune_epochs + 1), "error_rate": float(err),
            "valid_loss": float(valid_loss), "setup_rss_mb": setup_rss, "peak_rss_mb": peak_rss_mb(),
            "checksum": start_sum}


def inference(s: Settings) -> dict:
    learn = _resnet_learner(s, s.infer_size)
    learn.model.eval()
    files = [Path(f) for f in image_files(s.data, "train")][:s.infer_n]
    with Timer() as t:
        preds = learn.get_preds(dl=learn.dls.test_dl(files))[0]
    predict_per_s, labels = median_pass_rate(lambda f: learn.predict(f)[0], files[:s.predict_n], s.predict_passes)
    return {**t.fields(), "get_preds_per_s": len(preds) / t.seconds, "predict_per_s": predict_per_s,
            "predict_same_process_ratio": _predict_against_plain(learn, files[:s.predict_n], s),
            "n": len(preds), "top_class_share": float(torch.bincount(preds.argmax(1)).max()) / len(preds)}


def _predict_against_plain(learn: Learner, files: list[Path], s: Settings, rounds: int = 5) -> float:
    """``learn.predict``'s pass over ``files`` ÷ the plain loop's (the same model object, by hand),
    medians of ``rounds`` alternating passes in this one process: the per-call cost of the library
    without the differences between processes (a process's memory layout moves a pass by up to 10%)."""
    from workloads_plain import predict_one
    model, classes = learn.model.eval(), list(learn.dls.vocab)
    library, plain = [], []
    for _ in range(rounds):
        with Timer() as t:
            [learn.predict(f) for f in files]
        library.append(t.seconds)
        with Timer() as t, torch.no_grad():
            [predict_one(model, classes, f, s.infer_size) for f in files]
        plain.append(t.seconds)
    return statistics.median(library) / statistics.median(plain)


def tabular(s: Settings) -> dict:
    """TabularPandas + tabular_learner, as the course writes them; the epoch timed apart from the set-up."""
    from fastlearn.data.blocks import CategoryBlock
    from fastlearn.tabular import Categorify, FillMissing, NormalizeTab, TabularPandas, tabular_learner
    df = tabular_frame(s.tab_rows)
    with Timer() as setup:
        to = TabularPandas(df, procs=[Categorify, FillMissing, NormalizeTab], cat_names=list(TAB_CATS),
                           cont_names=list(TAB_CONTS), y_names="label", y_block=CategoryBlock(),
                           splits=tabular_splits(len(df)))
        dls = to.dataloaders(bs=s.tab_bs, val_bs=s.tab_bs, device="cpu")
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=list(TAB_LAYERS), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(), Timer() as t:
        learn.fit_one_cycle(s.tab_epochs, s.tab_lr)
    valid_loss, acc = learn.validate()[:2]
    return {**t.fields(), "epoch_s": t.seconds / s.tab_epochs, "setup_s": setup.seconds, "accuracy": float(acc),
            "valid_loss": float(valid_loss), "rows": len(df), "params": sum(p.numel() for p in learn.model.parameters())}


def text_lm(s: Settings) -> dict:
    """AWD-LSTM language-model training batches (``bench/text_speed.py``'s workload)."""
    from common import text_workload
    return text_workload("fastlearn", "lm", s)


def text_clas(s: Settings) -> dict:
    """AWD-LSTM classifier training batches (``bench/text_speed.py``'s workload)."""
    from common import text_workload
    return text_workload("fastlearn", "clas", s)

