"""The fastlearn command: fine-tune a folder, predict images, clear errors for bad input."""
import os
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from fastlearn.vision.cli import main


def test_fine_tune_then_predict(fashion_mnist_path, tmp_path, capsys):
    out = tmp_path / "run" / "model.pkl"
    status = main(["fine-tune", str(fashion_mnist_path), "--epochs", "1", "--size", "32", "--bs", "32",
                   "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "final error rate:" in printed
    error = float(printed.split("final error rate:")[1].split()[0])
    assert 0 <= error < 0.9  # better than chance on 10 classes
    assert out.is_file()
    assert (out.parent / "model_confusion.png").is_file() and (out.parent / "model_loss.png").is_file()
    assert Image.open(out.parent / "model_confusion.png").size[0] > 100
    from fastlearn.data.getters import get_image_files
    from fastlearn.loading import load_learner
    loaded = load_learner(out)
    valid = sorted(get_image_files(fashion_mnist_path / "valid"))
    preds, _ = loaded.get_preds(dl=loaded.dls.test_dl(valid))
    targets = [list(loaded.dls.vocab).index(p.parent.name) for p in valid]
    exported_error = float((preds.argmax(1) != torch.tensor(targets)).float().mean())
    assert exported_error == pytest.approx(error, abs=1e-4)  # the printed figure is the exported model's
    images = [sorted((fashion_mnist_path / "valid" / name).glob("*.png"))[0] for name in ("Trouser", "Bag")]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, "-m", "fastlearn.vision.cli", "predict", str(out), *map(str, images)],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    vocab = sorted(p.name for p in (fashion_mnist_path / "train").iterdir())
    assert [row[0] for row in rows] == [str(p) for p in images]
    assert all(row[1] in vocab and 0 < float(row[2]) <= 1 for row in rows)


def test_random_split_without_train_valid_folders(fashion_mnist_path, tmp_path, capsys):
    folder = tmp_path / "two_classes"
    for name in ("Sandal", "Trouser"):
        shutil.copytree(fashion_mnist_path / "train" / name, folder / name)
    status = main(["fine-tune", str(folder), "--arch", "resnet18", "--no-pretrained", "--epochs", "1",
                   "--freeze-epochs", "0", "--size", "32", "--bs", "16", "--valid-pct", "0.25",
                   "--out", str(tmp_path / "m.pkl")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "45 training and 15 validation images, 2 classes: Sandal, Trouser" in printed


def test_clear_errors_for_bad_input(tmp_path, capsys):
    assert main(["fine-tune", str(tmp_path / "missing")]) == 2
    assert "missing does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["fine-tune", str(tmp_path / "empty")]) == 2
    assert "no images" in capsys.readouterr().err
    bad = tmp_path / "bad"
    for name in ("a", "b"):
        (bad / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(bad / name / "fine.png")
    (bad / "b" / "broken.png").write_bytes(b"not a png")
    assert main(["fine-tune", str(bad)]) == 2
    assert "broken.png" in capsys.readouterr().err
    one = tmp_path / "one"
    (one / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(one / "a" / "x.png")
    assert main(["fine-tune", str(one)]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nomodel.pkl"), "x.png"]) == 2
    assert "nomodel.pkl does not exist" in capsys.readouterr().err
    model = tmp_path / "model.pkl"
    model.write_bytes(b"junk")
    assert main(["predict", str(model), str(bad / "b" / "broken.png")]) == 2
    assert "broken.png is not an image" in capsys.readouterr().err
    assert main(["predict", str(model), str(bad / "a" / "fine.png")]) == 2
    assert "model.pkl" in capsys.readouterr().err


def test_unknown_arch_and_the_console_script(tmp_path, capsys):
    import tomllib
    from pathlib import Path
    folder = tmp_path / "shapes"
    for name, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (folder / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (12, 12), colour).save(folder / name / f"{i}.png")
    assert main(["fine-tune", str(folder), "--arch", "no_such_net", "--size", "16"]) == 2
    assert "no_such_net" in capsys.readouterr().err
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["fastlearn"] == "fastlearn.vision.cli:main"
