"""The ``fastlearn`` command: numbers are checked before anything runs, every error is one line
and a non-zero exit status, and no result or export comes from a model that did not train."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import fastlearn.vision.cli as cli
from fastlearn.vision.cli import main

FAST = ["--arch", "resnet18", "--no-pretrained", "--size", "16", "--freeze-epochs", "0", "--epochs", "1"]


@pytest.fixture
def twelve(tmp_path):
    rng = np.random.default_rng(0)
    for label in "ab":
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "imgs" / label / f"{i}.png")
    return tmp_path / "imgs"


def one_line_error(err: str) -> str:
    """The one error line of ``err`` (stderr); anything else there is a one-line warning."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if " error: " in line]
    assert len(errors) == 1 and all(line.startswith("fastlearn: warning: ") for line in lines if line not in errors), err
    return errors[0]


@pytest.mark.parametrize("option,value,expected", [
    ("--lr", "nan", "not a learning rate"), ("--lr", "inf", "not a learning rate"), ("--lr", "0", "not a learning rate"),
    ("--lr", "-1e-3", "not a learning rate"), ("--lr", "fast", "is not a number"), ("--size", "0", "not a positive"),
    ("--bs", "0", "not a positive"), ("--epochs", "-1", "not a count"), ("--freeze-epochs", "1.5", "not an integer"),
    ("--valid-pct", "1.5", "not a fraction"), ("--valid-pct", "0", "not a fraction"), ("--seed", "-3", "not a seed"),
    ("--n-per-class", "0", "not a positive"),
])
def test_bad_numbers_are_one_line_errors_before_anything_runs(twelve, tmp_path, capsys, option, value, expected):
    out = tmp_path / "model.pkl"
    with pytest.raises(SystemExit) as exit_status:
        main(["fine-tune", str(twelve), "--out", str(out), f"{option}={value}"])
    assert exit_status.value.code == 2
    line = one_line_error(capsys.readouterr().err)
    assert line.startswith("fastlearn fine-tune: error:") and option in line and expected in line
    assert not out.exists()


def test_twelve_images_with_the_default_batch_size_train_and_export(twelve, tmp_path, capsys):
    out = tmp_path / "model.pkl"
    assert main(["fine-tune", str(twelve), *FAST, "--out", str(out)]) == 0  # --bs 64 for 10 training images
    captured = capsys.readouterr()
    assert "fastlearn: warning: the batch size bs=64 is larger than the 10 training items" in captured.err
    table_row = [line for line in captured.out.splitlines() if line.startswith("0 ")][0]
    assert np.isfinite(float(table_row.split()[1]))  # the train loss of a batch that ran, not nan
    assert out.is_file() and "final error rate" in captured.out


def test_a_diverging_run_is_not_reported_nor_exported(twelve, tmp_path, capsys):
    out = tmp_path / "model.pkl"
    assert main(["fine-tune", str(twelve), *FAST, "--bs", "4", "--lr", "1e30", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    line = one_line_error(captured.err)
    assert "training diverged" in line and "--lr" in line and "nothing was exported" in line
    assert "final error rate" not in captured.out and "data: 10 training" in captured.out
    assert not out.exists()


def test_predict_on_a_tabular_export_is_a_one_line_error(twelve, tmp_path, capsys):
    from fastlearn.tabular.tabular_pandas import TabularDataLoaders
    from fastlearn.tabular.learner import tabular_learner
    df = pd.DataFrame({"x": np.arange(20.0), "y": list("ab") * 10})
    learn = tabular_learner(TabularDataLoaders.from_df(df, cont_names=["x"], y_names="y", bs=4, seed=0), layers=[4])
    model = learn.export(tmp_path / "table.pkl")
    assert main(["predict", str(model), str(twelve / "a" / "0.png")]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "table.pkl is not an image classifier" in line and "load_learner" in line


def test_an_unexpected_error_is_one_line_with_a_way_to_the_traceback(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(cli, "predict", broken)
    assert main(["predict", "m.pkl", "x.png"]) == 1
    line = one_line_error(capsys.readouterr().err)
    assert line == ("fastlearn predict: error: RuntimeError: disk on fire second line (run `fastlearn "
                    "--traceback predict ...` for the traceback)")
    with pytest.raises(RuntimeError, match="disk on fire"):
        main(["--traceback", "predict", "m.pkl", "x.png"])
