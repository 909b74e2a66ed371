"""The benchmark workloads written with fastai (run by ``.venv-bench/bin/python``, see
``tools/bench_env.sh``), the way fastai's documentation writes them, with the same settings as
``workloads_fastlearn.py``.

The EfficientNet-Lite0 of ``fine_tune`` is the model object fastlearn builds (``common.lite0_model``:
fastlearn's architecture code, packaged weights and head, same seed) with fastlearn's three
parameter groups as the splitter; fastai trains it with its own ``Learner``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from fastai.vision.all import (CrossEntropyLossFlat, ImageDataLoaders, Learner, Normalize, Resize, accuracy,
                               error_rate)

from common import (IMAGENET_STATS, LITE_STATS, Settings, Timer, checksum, fit_workload, image_files, lite0_groups,
                    lite0_model, loading_workload, peak_rss_mb, resnet18_model, rss_mb)


def _loaders(s: Settings, size: int, stats=IMAGENET_STATS, workers: int | None = None):
    return ImageDataLoaders.from_folder(s.data, item_tfms=Resize(size), batch_tfms=[Normalize.from_stats(*stats)],
                                        bs=s.bs, val_bs=s.bs, num_workers=s.workers if workers is None else workers,
                                        seed=0, device=torch.device("cpu"))


def _resnet_learner(s: Settings, size: int) -> Learner:
    return Learner(_loaders(s, size), resnet18_model(), loss_func=CrossEntropyLossFlat(), metrics=accuracy)


def fit(s: Settings) -> dict:
    return fit_workload(s, _resnet_learner(s, s.fit_size))


def loading(s: Settings) -> dict:
    """Images per second through the training loader with 0, then 2 worker processes."""
    return loading_workload(s, lambda workers: _loaders(s, s.fit_size, workers=workers))


def lr_find(s: Settings) -> dict:
    learn = _resnet_learner(s, s.fit_size)
    with learn.no_bar(), Timer() as t:
        suggestion = learn.lr_find(num_it=s.lr_find_it, stop_div=False, show_plot=False)
    return {**t.fields(), "batches": len(learn.recorder.lrs), "valley": float(suggestion[0])}


def _splitter(model):
    return lite0_groups(model)


def fine_tune(s: Settings) -> dict:
    dls = _loaders(s, s.tune_size, stats=LITE_STATS)
    learn = Learner(dls, lite0_model(), loss_func=CrossEntropyLossFlat(), metrics=error_rate, splitter=_splitter)
    learn.freeze()  # as fastai's vision_learner leaves a pretrained model
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
    with learn.no_bar(), Timer() as t:
        preds = learn.get_preds(dl=learn.dls.test_dl(files))[0]
    with learn.no_bar(), Timer() as t1:
        labels = [learn.predict(f)[0] for f in files[:s.predict_n]]
    return {**t.fields(), "get_preds_per_s": len(preds) / t.seconds, "predict_per_s": len(labels) / t1.seconds,
            "n": len(preds), "top_class_share": float(torch.bincount(preds.argmax(1)).max()) / len(preds)}
