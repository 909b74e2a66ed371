"""ONNX and TorchScript exports: the exported model, run by onnxruntime or by torch.jit in a fresh
process, gives the PyTorch model's outputs on raw (unnormalized) batches of any size, and the file
says how to feed it."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from fastlearn.data.batch_transforms import Normalize
from fastlearn.data.databunch import DataBunch
from fastlearn.deploy import read_deploy_metadata
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat

MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]


class ImageItems(list):
    """(image, label) pairs the loaders treat as an image and a category, as a DataBlock's are."""

    kinds = ("image", "category")


def image_learner(tmp_path, items_type=ImageItems, **kwargs):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(40, 3, 16, 16, generator=gen)
    y = torch.randint(0, 3, (40,), generator=gen)
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items_type(items[:24]), items_type(items[24:]), bs=8, device="cpu",
                               after_batch=[Normalize.from_stats(MEAN, STD)])
    dls.vocab = ["cat", "dog", "owl"]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 3))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), path=tmp_path, device="cpu", **kwargs)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)  # BatchNorm statistics that differ from the defaults
    return learn


def raw_valid(learn):
    """The validation images as stored (before the loaders' normalization)."""
    return torch.stack([image for image, _ in learn.dls.valid.dataset])


def learner_preds(learn, probabilities=False):
    """What the learner's own pipeline (normalization included) predicts for the validation set."""
    preds, _ = learn.get_preds(act=None if probabilities else (lambda out: out))
    return preds


def test_onnx_export_runs_in_onnxruntime_with_any_batch_size(tmp_path):
    pytest.importorskip("onnxscript")
    learn = image_learner(tmp_path)
    path = learn.export_onnx("model.onnx", activation=True)
    assert path == tmp_path / "model.onnx"
    metadata = read_deploy_metadata(path)
    assert metadata["inputs"] == [{"name": "input", "shape": ["batch", 3, 16, 16], "dtype": "float32"}]
    assert metadata["normalization"] == {"mean": pytest.approx(MEAN), "std": pytest.approx(STD), "folded": True}
    assert metadata["vocab"] == ["cat", "dog", "owl"] and metadata["activation"] == "CrossEntropyLossFlat"
    onnx = pytest.importorskip("onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raw, expected = raw_valid(learn), learner_preds(learn, probabilities=True)
    assert abs(float(raw.mean()) - 0.5) < 0.05  # the file takes the stored images, not normalized ones
    for start, n in ((0, 1), (1, 5), (3, 13)):
        got = torch.from_numpy(session.run(None, {"input": raw[start:start + n].numpy()})[0])
        torch.testing.assert_close(got, expected[start:start + n], atol=1e-5, rtol=1e-4)


def test_onnx_export_with_normalization_recorded_only(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    learn = image_learner(tmp_path)
    path = learn.export_onnx("raw.onnx", fold_normalization=False)
    assert read_deploy_metadata(path)["normalization"]["folded"] is False
    normalized = (raw_valid(learn) - torch.tensor(MEAN).reshape(1, 3, 1, 1)) / torch.tensor(STD).reshape(1, 3, 1, 1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": normalized.numpy()})[0])
    torch.testing.assert_close(got, learner_preds(learn), atol=1e-5, rtol=1e-4)


def test_a_normalization_the_loaders_do_not_apply_is_not_folded(tmp_path):
    """Plain tensor items have no kinds: an image Normalize leaves them alone, and so does the export."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    learn = image_learner(tmp_path, items_type=list)
    path = learn.export_onnx("plain.onnx")
    assert read_deploy_metadata(path)["normalization"] is None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": raw_valid(learn).numpy()})[0])
    torch.testing.assert_close(got, learner_preds(learn), atol=1e-5, rtol=1e-4)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding, self.linear = nn.Embedding(5, 4), nn.Linear(4 + 2, 1)

    def forward(self, codes, values):
        return self.linear(torch.cat([self.embedding(codes).mean(1), values], dim=1))


def test_onnx_export_of_a_model_with_two_inputs(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    gen = torch.Generator().manual_seed(0)
    items = [(torch.randint(0, 5, (3,), generator=gen), torch.randn(2, generator=gen), torch.randn(1, generator=gen))
             for _ in range(32)]
    dls = DataBunch.from_dsets(items[:24], items[24:], bs=8, device="cpu", n_inp=2)
    learn = Learner(dls, TwoInputs(), loss_func=nn.MSELoss(), path=tmp_path, device="cpu")
    path = learn.export_onnx("two.onnx")
    assert [i["name"] for i in read_deploy_metadata(path)["inputs"]] == ["input_0", "input_1"]
    codes, values = torch.randint(0, 5, (6, 3), generator=gen), torch.randn(6, 2, generator=gen)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input_0": codes.numpy(), "input_1": values.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), learn.model.eval()(codes, values), atol=1e-5, rtol=1e-4)


def test_torchscript_export_reloads_in_a_fresh_process(tmp_path):
    learn = image_learner(tmp_path)
    path = learn.export_torchscript("model.pt", activation=True)
    raw = raw_valid(learn)[:7]
    torch.save(raw, tmp_path / "input.pt")
    script = textwrap.dedent(f"""
        import json, torch
        extra = {{"fastlearn.json": ""}}
        model = torch.jit.load({str(path)!r}, map_location="cpu", _extra_files=extra)
        out = model(torch.load({str(tmp_path / 'input.pt')!r}))
        torch.save(out, {str(tmp_path / 'output.pt')!r})
        print(json.loads(extra["fastlearn.json"])["vocab"])
    """)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fastlearn" not in result.stderr and result.stdout.strip() == "['cat', 'dog', 'owl']"
    torch.testing.assert_close(torch.load(tmp_path / "output.pt"), learner_preds(learn, probabilities=True)[:7],
                               atol=1e-5, rtol=1e-4)
    assert read_deploy_metadata(path)["normalization"]["folded"] is True


def test_exports_keep_the_learner_as_it_was_and_fast_dev_run_writes_none(tmp_path, capsys):
    learn = image_learner(tmp_path)
    learn.model.train()
    learn.export_torchscript("a.pt")
    assert learn.model.training and next(learn.model.parameters()).device.type == "cpu"
    dev = image_learner(tmp_path / "dev", fast_dev_run=True)
    dev.export_torchscript("model.pt")
    dev.export_onnx("model.onnx")
    assert not (tmp_path / "dev" / "model.pt").exists() and not (tmp_path / "dev" / "model.onnx").exists()
    assert "fast_dev_run: TorchScript export" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no exported model"):
        read_deploy_metadata(tmp_path / "missing.onnx")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_exports_from_a_cuda_learner_run_on_the_cpu(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    learn = image_learner(tmp_path)
    learn.to("cuda")
    onnx_path, script_path = learn.export_onnx("gpu.onnx"), learn.export_torchscript("gpu.pt")
    assert next(learn.model.parameters()).device.type == "cuda"  # put back
    learn.to("cpu")
    raw, expected = raw_valid(learn), learner_preds(learn)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    torch.testing.assert_close(torch.from_numpy(session.run(None, {"input": raw.numpy()})[0]), expected,
                               atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(torch.jit.load(str(script_path), map_location="cpu")(raw), expected,
                               atol=1e-4, rtol=1e-3)
