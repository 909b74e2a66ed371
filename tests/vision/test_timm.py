"""timm architectures through vision_learner: timm's own feature extraction as the body, tagged
names resolved to timm, exports rebuilt from the name without trusting code."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fastlearn.data.batch_transforms import Normalize
from fastlearn.data.blocks import CategoryBlock
from fastlearn.data.datablock import DataBlock
from fastlearn.data.getters import get_image_files, parent_label
from fastlearn.data.splitters import GrandparentSplitter
from fastlearn.loading import load_learner
from fastlearn.metrics import error_rate
from fastlearn.registry import UntrustedCodeError
from fastlearn.vision.data import ImageBlock
from fastlearn.vision.learner import vision_learner
from fastlearn.vision.models import arch_meta, resolve_arch
from fastlearn.vision.transforms import Resize

timm = pytest.importorskip("timm")
from fastlearn.vision.timm_archs import TimmArch, TimmBody  # noqa: E402


def image_dls(path, size=32):
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                      splitter=GrandparentSplitter(), item_tfms=Resize(size))
    return block.dataloaders(path, bs=32, num_workers=0, seed=0)


def test_a_timm_cnn_trains_exports_and_loads(fashion_mnist_path, tmp_path):
    dls = image_dls(fashion_mnist_path)
    learn = vision_learner(dls, "resnet10t", pretrained=False, metrics=error_rate, path=tmp_path)
    body, head = learn.model
    assert isinstance(body, TimmBody) and type(body.model).__name__ == "ResNet"
    assert body.num_features == body.model.num_features == 512
    assert isinstance(body.model.fc, nn.Identity)  # timm's classifier removed by reset_classifier(0)
    assert head[-1].out_features == 10
    assert body(torch.zeros(2, 3, 32, 32)).shape == (2, 512, 1, 1)
    groups = learn.splitter(learn.model)
    assert len(groups) == 3 and sum(len(g) for g in groups) == len(list(learn.model.parameters()))
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, 1e-3)
    assert learn.model_spec["args"]["arch"] == "resnet10t"
    learn.export("timm.pkl")
    loaded = load_learner(tmp_path / "timm.pkl")  # no custom_objects, no trust_code: a timm name is safe
    preds, _ = learn.get_preds()
    loaded_preds, _ = loaded.get_preds(dl=learn.dls.valid)
    torch.testing.assert_close(loaded_preds, preds, atol=1e-5, rtol=1e-5)


def test_timm_stats_normalize_a_pretrained_body(fashion_mnist_path, monkeypatch):
    dls = image_dls(fashion_mnist_path)
    monkeypatch.setattr(TimmArch, "__call__", lambda self, pretrained=False: timm.create_model(self.name))
    vision_learner(dls, "vit_tiny_patch16_224.augreg_in21k", pretrained=True)  # no download: weights faked above
    stats = [t for t in dls.valid.after_batch if isinstance(t, Normalize)]
    assert len(stats) == 1 and stats[0].mean.flatten().tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_tagged_names_resolve_to_timm_and_dotted_code_paths_do_not():
    arch = resolve_arch("resnet10t.c3_in1k")
    assert isinstance(arch, TimmArch) and arch.name == "resnet10t.c3_in1k"
    assert arch_meta("resnet10t.c3_in1k")["stats"] == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert resolve_arch("torchvision.models.resnet18").__name__ == "resnet18"  # an import path
    assert resolve_arch("resnet18").__module__.startswith("torchvision")  # fastlearn's own name wins
    with pytest.raises(ValueError, match="neither a fastlearn architecture nor a timm model name"):
        resolve_arch("no_such_net")


def test_a_token_model_is_pooled_by_timm(fashion_mnist_path, tmp_path):
    dls = image_dls(fashion_mnist_path, size=160)  # test_vit's input size
    learn = vision_learner(dls, "test_vit", pretrained=False, path=tmp_path)
    body = learn.model[0]
    assert body.num_features == body.model.num_features
    assert body(torch.zeros(2, 3, 160, 160)).shape == (2, body.num_features, 1, 1)
    xb, _ = dls.one_batch()
    assert learn.model.eval()(xb[:4]).shape == (4, 10)


def test_an_export_naming_a_tagged_timm_model_loads_and_other_dotted_names_are_refused(fashion_mnist_path,
                                                                                        tmp_path):
    dls = image_dls(fashion_mnist_path)
    learn = vision_learner(dls, "resnet10t.c3_in1k", pretrained=False, path=tmp_path)
    learn.export("tagged.pkl")
    assert isinstance(load_learner(tmp_path / "tagged.pkl").model[0], TimmBody)
    learn.model_spec = {**learn.model_spec, "args": {**learn.model_spec["args"], "arch": "os.system"}}
    learn.export("evil.pkl")
    with pytest.raises(UntrustedCodeError, match="os.system"):
        load_learner(tmp_path / "evil.pkl")


def test_pretrained_weights_offline_say_how_to_get_them(monkeypatch, tmp_path):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no network, and an empty cache
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="pass pretrained=False"):
        TimmArch("resnet10t")(pretrained=True)
