"""Logging callbacks write what the run did, and each file is read back with its own reader:
CSV with pandas, TensorBoard event files with tensorboard's EventAccumulator, the offline W&B run
file with W&B's record protobuf, the MLflow file store with MlflowClient."""
from __future__ import annotations

import sys
import time

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.callback.progress import CSVLogger, ShowGraphCallback
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.metrics import accuracy
from fastlearn.optimizer import Adam
from fastlearn.tracker import ReduceLROnPlateau

N_TRAIN_BATCHES = 6  # 96 items in batches of 16


def make_learner(path, cbs=None, lr=1e-2, **kwargs):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(160, 10, generator=gen)
    y = (x[:, :3] + 0.5 * torch.randn(160, 3, generator=gen)).argmax(-1)
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:96], items[96:], bs=16, seed=3, device="cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat(), opt_func=Adam, lr=lr, metrics=accuracy, cbs=cbs,
                   path=path, device="cpu", **kwargs)


def quiet_fit(learn, n_epoch, cbs=None, one_cycle=True):
    with learn.no_bar(), learn.no_logging():
        if one_cycle:
            learn.fit_one_cycle(n_epoch, 1e-2, cbs=cbs)
        else:
            learn.fit(n_epoch, cbs=cbs)


class Boom(Callback):
    def after_batch(self):
        if self.training and self.epoch == 1 and self.iter == 2:
            raise RuntimeError("boom")


# --- CSV -------------------------------------------------------------------------------------------

def test_csv_logger_writes_the_metrics_table_read_back_with_pandas(tmp_path):
    learn = make_learner(tmp_path)
    quiet_fit(learn, 3, cbs=CSVLogger())
    log = pd.read_csv(tmp_path / "history.csv")
    assert list(log.columns) == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert log["epoch"].tolist() == [0, 1, 2]
    for (_, row), values in zip(log.iterrows(), learn.recorder.values):
        assert [row["train_loss"], row["valid_loss"], row["accuracy"]] == pytest.approx(values, rel=1e-6)
    assert all(len(t.split(":")) == 2 for t in log["time"])
    reader = CSVLogger()
    reader.learn = learn
    assert reader.read_log().shape == (3, 5)


def test_csv_logger_appends_and_closes_its_file_after_an_exception(tmp_path):
    logger = CSVLogger("logs/run.csv", append=True)
    learn = make_learner(tmp_path, cbs=logger)
    quiet_fit(learn, 1)
    with pytest.raises(RuntimeError, match="boom"):
        quiet_fit(learn, 3, cbs=Boom())
    assert logger.file is None  # closed by cleanup
    log = logger.read_log()
    assert log["epoch"].tolist() == [0, 0]  # one row from each fit: the second failed in its second epoch
    assert list(log.columns) == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]


# --- TensorBoard ------------------------------------------------------------------------------------

def event_accumulator(folder):
    accumulator_module = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    accumulator = accumulator_module.EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_event_files_hold_losses_learning_rates_and_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    from fastlearn.callback.tensorboard import TensorBoardCallback
    callback = TensorBoardCallback(log_dir="runs/one", log_histograms=True, trace_model=True)
    learn = make_learner(tmp_path)
    quiet_fit(learn, 2, cbs=callback)
    events = event_accumulator(tmp_path / "runs" / "one")
    tags = events.Tags()
    assert {"train_loss", "valid_loss", "accuracy", "lr_0", "mom_0", "epoch"} <= set(tags["scalars"])
    train_loss = events.Scalars("train_loss")
    assert [e.step for e in train_loss] == list(range(1, 2 * N_TRAIN_BATCHES + 1))
    assert [e.value for e in train_loss] == pytest.approx(learn.recorder.losses, rel=1e-6)
    assert [e.value for e in events.Scalars("lr_0")] == pytest.approx([lrs[-1] for lrs in learn.recorder.lrs],
                                                                       rel=1e-6)
    valid = events.Scalars("valid_loss")
    assert [e.step for e in valid] == [N_TRAIN_BATCHES, 2 * N_TRAIN_BATCHES]
    assert [e.value for e in valid] == pytest.approx([row[1] for row in learn.recorder.values], rel=1e-6)
    assert "0.weight" in tags["histograms"] and len(events.Histograms("0.weight")) == 2
    assert tags["graph"]  # the traced model


def test_tensorboard_writer_is_closed_after_an_exception_and_steps_go_on_across_fits(tmp_path):
    pytest.importorskip("tensorboard")
    from fastlearn.callback.tensorboard import TensorBoardCallback
    callback = TensorBoardCallback(log_dir=tmp_path / "tb", log_every=2)
    learn = make_learner(tmp_path, cbs=callback)
    quiet_fit(learn, 1)
    with pytest.raises(RuntimeError, match="boom"):
        quiet_fit(learn, 2, cbs=Boom())
    assert callback.writer is None
    steps = [e.step for e in event_accumulator(tmp_path / "tb").Scalars("train_loss")]
    # 6 batches, then 6 + 2 before the failing batch (which raised before the logger saw it), every 2nd
    assert steps == [2, 4, 6, 8, 10, 12, 14]


# --- Weights & Biases (offline) ---------------------------------------------------------------------

def wandb_records(path):
    """The records of a .wandb run file: 7-byte header, then 32 KiB blocks of length-prefixed chunks."""
    from wandb.proto import wandb_internal_pb2
    data, block, pos, records, pending = path.read_bytes(), 32768, 7, [], b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind in (2, 3):
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
            pending = b""
    parsed = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        parsed.append(record)
    return parsed


def test_wandb_offline_run_holds_the_logged_history(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    import json

    from fastlearn.callback.wandb import WandbCallback
    for key in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "home" / key.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    learn = make_learner(tmp_path)
    quiet_fit(learn, 2, cbs=WandbCallback(project="tests", mode="offline", dir=tmp_path / "wb"))
    run_files = list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 1
    def items(entries):
        return {entry.key or ".".join(entry.nested_key): json.loads(entry.value_json) for entry in entries}

    for _ in range(100):  # W&B's service may still be writing the file when finish() returns
        records = wandb_records(run_files[0])
        if any(record.WhichOneof("record_type") == "exit" for record in records):
            break
        time.sleep(0.1)
    history, config = [], {}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(items(record.history.item))
        elif kind in ("run", "config"):
            config.update(items((record.run.config if kind == "run" else record.config).update))
    assert [row["_step"] for row in history] == list(range(1, 2 * N_TRAIN_BATCHES + 1))
    losses = [row["train_loss"] for row in history]
    assert losses == pytest.approx(learn.recorder.losses, rel=1e-6)
    valid = [row["valid_loss"] for row in history if "valid_loss" in row]
    assert valid == pytest.approx([row[1] for row in learn.recorder.values], rel=1e-6)
    assert config["n_epoch"] == 2 and config["metrics"] == ["accuracy"] and config["lr"] == [0.01]


# --- MLflow ---------------------------------------------------------------------------------------------

def test_mlflow_file_store_holds_params_and_metric_histories(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    from fastlearn.callback.mlflow import MLflowCallback
    callback = MLflowCallback(experiment_name="tests", run_name="first")
    learn = make_learner(tmp_path)
    quiet_fit(learn, 2, cbs=callback)
    assert (tmp_path / "mlruns").is_dir()
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    run = client.get_run(callback.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "first"
    assert run.data.params["n_epoch"] == "2" and run.data.params["loss_func"] == "CrossEntropyLossFlat"
    valid = client.get_metric_history(callback.run_id, "valid_loss")
    assert [m.value for m in valid] == pytest.approx([row[1] for row in learn.recorder.values], rel=1e-6)
    assert [m.step for m in valid] == [N_TRAIN_BATCHES, 2 * N_TRAIN_BATCHES]
    assert len(client.get_metric_history(callback.run_id, "train_loss")) == 2 * N_TRAIN_BATCHES
    with pytest.raises(RuntimeError, match="boom"):
        quiet_fit(learn, 2, cbs=[callback, Boom()])
    assert client.get_run(callback.run_id).info.status == "FAILED"


# --- missing packages, fast_dev_run ---------------------------------------------------------------------

@pytest.mark.parametrize("module, package, extra, name", [
    ("fastlearn.callback.tensorboard", "torch.utils.tensorboard", "tensorboard", "TensorBoardCallback"),
    ("fastlearn.callback.wandb", "wandb", "wandb", "WandbCallback"),
    ("fastlearn.callback.mlflow", "mlflow", "mlflow", "MLflowCallback"),
])
def test_a_missing_package_names_the_extra(monkeypatch, module, package, extra, name):
    import importlib
    monkeypatch.setitem(sys.modules, package, None)  # what an uninstalled package looks like to import
    callback_class = getattr(importlib.import_module(module), name)
    with pytest.raises(ImportError, match=rf"{name} needs .* pip install 'fastlearn\[{extra}\]'"):
        callback_class()


def test_fast_dev_run_writes_no_log(tmp_path, monkeypatch, capsys):
    cbs = [CSVLogger()]
    for module, name in (("tensorboard", "TensorBoardCallback"), ("mlflow", "MLflowCallback")):
        try:
            cbs.append(getattr(__import__(f"fastlearn.callback.{module}", fromlist=[name]), name)())
        except ImportError:
            pass
    learn = make_learner(tmp_path, cbs=cbs, fast_dev_run=True)
    learn.fit_one_cycle(2)
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert "nothing was written (left out: CSVLogger" in out


# --- live graph, plateaus ---------------------------------------------------------------------------

def test_show_graph_callback_keeps_both_loss_series(tmp_path):
    callback = ShowGraphCallback()
    learn = make_learner(tmp_path)
    quiet_fit(learn, 3, cbs=callback)
    (train_x, train_y), (valid_x, valid_y) = callback.graphs
    assert train_y == pytest.approx(learn.recorder.losses) and train_x == list(range(3 * N_TRAIN_BATCHES))
    assert valid_x == [6, 12, 18] and valid_y == pytest.approx([row[1] for row in learn.recorder.values])
    assert callback.plot() is None
    assert [line.get_label() for line in plt.gca().lines] == ["train", "valid"]


def test_reduce_lr_on_plateau_divides_the_learning_rate(tmp_path, capsys):
    callback = ReduceLROnPlateau(monitor="accuracy", comp=lambda value, best: False, patience=2, factor=4)
    learn = make_learner(tmp_path, lr=0.008)
    quiet_fit(learn, 5, cbs=callback, one_cycle=False)  # accuracy "never improves": epochs 1 and 3 reduce
    assert [epoch for epoch, _ in callback.reductions] == [1, 3]
    assert learn.opt.param_groups[0]["lr"] == pytest.approx(0.008 / 16)
    assert "Epoch 1: reducing lr to 0.002" in capsys.readouterr().out
    with pytest.raises(ValueError, match="factor=1"):
        ReduceLROnPlateau(factor=1)
