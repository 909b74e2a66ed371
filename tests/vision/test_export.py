"""Export and load_learner: a fresh process predicts the same, without the training code."""
import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock
from fastlearn.data.getters import get_image_files
from fastlearn.data.splitters import GrandparentSplitter
from fastlearn.loading import load_learner
from fastlearn.learner import Learner
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.vision.data import ImageBlock
from fastlearn.vision.learner import vision_learner
from fastlearn.vision.transforms import Resize

LABEL_MODULE = """
def label_from_folder(path):
    return "item_" + path.parent.name.lower()
"""

MODEL_MODULE = """
import torch
from torch import nn

class TinyNet(nn.Module):
    def __init__(self, n_out, width=8):
        super().__init__()
        self.export_args = dict(n_out=n_out, width=width)
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, n_out)

    def forward(self, x):
        return self.head(self.body(x))
"""


def _temp_module(folder, name, source):
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    return importlib.import_module(name)


def _forget_module(folder, name):
    (folder / f"{name}.py").unlink()
    sys.path.remove(str(folder))
    sys.modules.pop(name, None)


def _fresh_process(code: str, cwd) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            cwd=cwd, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def trained(fashion_mnist_path, tmp_path):
    """A tiny classifier whose label function lives in a temporary module, deleted after training."""
    module_dir = tmp_path / "training_code"
    module_dir.mkdir()
    labels = _temp_module(module_dir, "fashion_labels_tmp", LABEL_MODULE)
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=labels.label_from_folder,
                      splitter=GrandparentSplitter(), item_tfms=Resize(32))
    dls = block.dataloaders(fashion_mnist_path, bs=32, num_workers=0, seed=0)
    learn = vision_learner(dls, "efficientnet_lite0", pretrained=True, path=tmp_path)
    learn.fit_one_cycle(1, 1e-3)
    _forget_module(module_dir, "fashion_labels_tmp")
    yield learn
    sys.modules.pop("fashion_labels_tmp", None)


def test_fresh_process_predicts_the_same_without_the_label_function(trained, fashion_mnist_path, tmp_path):
    learn = trained
    path = learn.export("model.pkl")
    assert path == tmp_path / "model.pkl" and path.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    images = sorted(get_image_files(fashion_mnist_path / "valid"))[:5]
    label, index, probs = learn.predict(images[0])
    assert label.startswith("item_") and probs.shape == (10,)
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(images))
    out = _fresh_process(f"""
        import json, torch
        from fastlearn.loading import load_learner
        learn = load_learner({str(path)!r})
        label, index, probs = learn.predict({str(images[0])!r})
        preds, _ = learn.get_preds(dl=learn.dls.test_dl({[str(i) for i in images]!r}))
        print(json.dumps(dict(label=label, index=int(index), probs=probs.tolist(), preds=preds.tolist(),
                              vocab=list(map(str, learn.dls.vocab)))))
    """, cwd=tmp_path)
    assert out["label"] == label and out["index"] == int(index)
    assert out["vocab"] == list(map(str, learn.dls.vocab))
    torch.testing.assert_close(torch.tensor(out["probs"]), probs.float(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.tensor(out["preds"]), preds.float(), atol=1e-5, rtol=1e-4)


def test_load_in_process_and_weights_only(trained, tmp_path):
    path = trained.export(tmp_path / "again.pkl")
    content = torch.load(path, weights_only=True)  # no pickled objects: plain tensors and text
    assert set(content) == {"description", "state_dict"}
    description = json.loads(content["description"])
    assert description["model"]["args"]["arch"] == "efficientnet_lite0"
    assert description["model"]["args"]["pretrained"] is False
    learn = load_learner(path)
    assert next(learn.model.parameters()).device.type == "cpu"
    assert list(learn.dls.vocab) == list(trained.dls.vocab)


def test_corrupted_or_truncated_file_is_a_clear_error(trained, tmp_path):
    path = trained.export("model.pkl")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.pkl.*(corrupted|truncated)"):
        load_learner(truncated)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not an export at all" * 100)
    with pytest.raises(ValueError, match="garbage.pkl"):
        load_learner(garbage)
    other = tmp_path / "other.pkl"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="other.pkl.*not a fastlearn export"):
        load_learner(other)
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        load_learner(tmp_path / "missing.pkl")


def test_failed_export_leaves_the_previous_file_intact(trained, tmp_path):
    path = trained.export("model.pkl")
    before = path.read_bytes()
    trained.model_spec = {"builder": "somewhere.make", "args": {"layer": torch.nn.ReLU()}}
    with pytest.raises(ValueError, match="not JSON"):
        trained.export("model.pkl")
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_own_model_exports_with_its_class_path(fashion_mnist_path, tmp_path):
    module_dir = tmp_path / "user_code"
    module_dir.mkdir()
    models = _temp_module(module_dir, "user_models_tmp", MODEL_MODULE)
    try:
        block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
                          get_y=lambda p: p.parent.name, splitter=GrandparentSplitter(), item_tfms=Resize(16))
        dls = block.dataloaders(fashion_mnist_path, bs=32, num_workers=0)
        learn = Learner(dls, models.TinyNet(n_out=dls.c), loss_func=CrossEntropyLossFlat(), path=tmp_path)
        path = learn.export("own.pkl")
        image = str(sorted(get_image_files(fashion_mnist_path / "valid"))[0])
        probs = learn.predict(image)[2]
        out = _fresh_process(f"""
            import json, sys
            sys.path.insert(0, {str(module_dir)!r})
            from fastlearn.loading import load_learner
            from user_models_tmp import TinyNet
            learn = load_learner({str(path)!r}, custom_objects=[TinyNet])
            trusted = load_learner({str(path)!r}, trust_code=True)
            print(json.dumps(dict(probs=learn.predict({image!r})[2].tolist(), cls=type(learn.model).__name__,
                                  trusted=trusted.predict({image!r})[2].tolist())))
        """, cwd=tmp_path)
        assert out["cls"] == "TinyNet"
        torch.testing.assert_close(torch.tensor(out["probs"]), probs.float(), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(torch.tensor(out["trusted"]), probs.float(), atol=1e-5, rtol=1e-4)
        # the user's class is not the library's: without being passed or trusted, it is refused
        with pytest.raises(ValueError, match="user_models_tmp.TinyNet.*custom_objects.*trust_code=True"):
            load_learner(path)
        _forget_module(module_dir, "user_models_tmp")
        with pytest.raises(ValueError, match="user_models_tmp.TinyNet"):
            load_learner(path, trust_code=True)
        learn.model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(dls.c))
        with pytest.raises(ValueError, match="export_args"):
            learn.export("plain.pkl")
    finally:
        sys.modules.pop("user_models_tmp", None)
        if str(module_dir) in sys.path:
            sys.path.remove(str(module_dir))
