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

from common import (IMAGENET_STATS, LITE_STATS, TAB_CATS, TAB_CONTS, TAB_LAYERS, Settings, Timer, checksum,
                    fit_workload, image_files, lite0_groups, lite0_model, loading_workload, median_pass_rate, peak_rss_mb,
                    resnet18_model, rss_mb, tabular_frame, tabular_splits)


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
    with learn.no_bar():
        predict_per_s, labels = median_pass_rate(lambda f: learn.predict(f)[0], files[:s.predict_n], s.predict_passes)
    return {**t.fields(), "get_preds_per_s": len(preds) / t.seconds, "predict_per_s": predict_per_s,
            "n": len(preds), "top_class_share": float(torch.bincount(preds.argmax(1)).max()) / len(preds)}


def tabular(s: Settings) -> dict:
    """TabularPandas + tabular_learner, as fastai's tabular tutorial writes them."""
    from fastai.tabular.all import (Categorify, CategoryBlock, FillMissing, TabularPandas, tabular_learner)
    from fastai.tabular.all import Normalize as TabNormalize
    df = tabular_frame(s.tab_rows)
    with Timer() as setup:
        to = TabularPandas(df, procs=[Categorify, FillMissing, TabNormalize], cat_names=list(TAB_CATS),
                           cont_names=list(TAB_CONTS), y_names="label", y_block=CategoryBlock(),
                           splits=tabular_splits(len(df)))
        dls = to.dataloaders(bs=s.tab_bs, val_bs=s.tab_bs, device=torch.device("cpu"))
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=list(TAB_LAYERS), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(), Timer() as t:
        learn.fit_one_cycle(s.tab_epochs, s.tab_lr)
    with learn.no_bar():
        valid_loss, acc = learn.validate()[:2]
    return {**t.fields(), "epoch_s": t.seconds / s.tab_epochs, "setup_s": setup.seconds, "accuracy": float(acc),
            "valid_loss": float(valid_loss), "rows": len(df), "params": sum(p.numel() for p in learn.model.parameters())}


def text_lm(s: Settings) -> dict:
    """AWD-LSTM language-model training batches (``bench/text_speed.py``'s workload)."""
    from common import text_workload
    return text_workload("fastai", "lm", s)


def text_clas(s: Settings) -> dict:
    """AWD-LSTM classifier training batches (``bench/text_speed.py``'s workload)."""
    from common import text_workload
    return text_workload("fastai", "clas", s)

