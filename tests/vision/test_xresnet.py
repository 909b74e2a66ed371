"""ConvLayer, NormType, ResBlock, SimpleSelfAttention and XResNet (the architecture chapters' blocks)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fastlearn.vision.all import *  # noqa: F401,F403


def test_conv_layer_norm_activation_order_bias_and_padding():
    layer = ConvLayer(3, 8)
    assert [type(m) for m in layer] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert layer[0].bias is None and layer[0].padding == (1, 1)
    assert [type(m) for m in ConvLayer(3, 8, bn_1st=False)] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    plain = ConvLayer(3, 8, ks=1, norm_type=None, act_cls=None)
    assert len(plain) == 1 and plain[0].bias is not None
    assert ConvLayer(2, 4, ndim=1)(torch.zeros(1, 2, 10)).shape == (1, 4, 10)
    assert ConvLayer(2, 4, ks=2, stride=2, transpose=True, norm_type=NormType.Instance)(
        torch.zeros(1, 2, 5, 5)).shape == (1, 4, 10, 10)
    assert ConvLayer(4, 4, groups=2)[0].groups == 2
    with pytest.raises(TypeError, match="NormType"):
        ConvLayer(3, 8, norm_type="batch")
    with pytest.raises(ValueError, match="ndim=4"):
        ConvLayer(3, 8, ndim=4)


def test_batch_zero_starts_at_zero_and_weight_norm_parametrizes_the_conv():
    zero = ConvLayer(4, 4, norm_type=NormType.BatchZero, act_cls=None)
    assert not zero[1].weight.detach().any()
    with torch.no_grad():
        assert not zero.eval()(torch.randn(2, 4, 3, 3)).any()
    weighted = ConvLayer(3, 4, norm_type=NormType.Weight)
    assert hasattr(weighted[0], "parametrizations") and len(weighted) == 2


def test_resblock_shapes_shortcuts_and_identity_at_start():
    basic = ResBlock(1, 16, 16).eval()
    x = torch.randn(2, 16, 8, 8)
    assert torch.allclose(basic(x), torch.relu(x))              # the branch starts at zero
    down = ResBlock(1, 16, 32, stride=2)
    assert down(x).shape == (2, 32, 4, 4)
    assert [type(m) for m in down.idpath] == [nn.AvgPool2d, ConvLayer]
    bottleneck = ResBlock(4, 16, 32, stride=2)
    assert len(bottleneck.convpath) == 3 and bottleneck(torch.randn(2, 64, 8, 8)).shape == (2, 128, 4, 4)
    with_sa = ResBlock(1, 8, 8, sa=True)
    assert isinstance(with_sa.convpath[-1], SimpleSelfAttention)


def test_simple_self_attention_starts_as_identity_and_keeps_symmetry():
    attention = SimpleSelfAttention(4, sym=True)
    x = torch.randn(2, 4, 3, 3)
    assert torch.equal(attention(x), x)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    y = attention(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    matrix = attention.conv.weight.view(4, 4)
    assert torch.allclose(matrix, matrix.t())


def test_xresnets_have_the_resnet_shapes_and_train():
    model = xresnet50(n_out=7)
    n_params = sum(p.numel() for p in model.parameters())
    assert 23e6 < n_params < 24e6                               # ResNet-50 with a 3-conv stem
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    small = xresnet18(n_out=3, c_in=1, p=0.2)
    assert isinstance(small[-2], nn.Dropout) and small[-2].p == 0.2
    assert small(torch.zeros(2, 1, 24, 24)).shape == (2, 3)
    assert xresnet34(n_out=2, sa=True)(torch.zeros(2, 3, 32, 32)).shape == (2, 2)
    with pytest.raises(ValueError, match="pretrained=False"):
        xresnet18(pretrained=True)
    with pytest.raises(ValueError, match="expansion=2"):
        XResNet(2, [1, 1, 1, 1])


def test_vision_learner_cuts_an_xresnet_before_its_pooling(fashion_mnist_path, tmp_path):
    dls = ImageDataLoaders.from_folder(fashion_mnist_path, item_tfms=Resize(24), bs=32)
    learn = vision_learner(dls, xresnet18, pretrained=False, metrics=accuracy, path=tmp_path)
    body, head = learn.model
    assert isinstance(body[-1], nn.Sequential) and isinstance(body[-1][-1], ResBlock)
    assert len(learn.splitter(learn.model)) == 3                # two halves of the body, the head
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, 1e-3)
    learn.export("xresnet.pkl")
    again = load_learner(tmp_path / "xresnet.pkl")
    x, _ = dls.one_batch()
    learn.model.eval()
    with torch.no_grad():
        assert torch.allclose(again.model.eval()(x.cpu()), learn.model(x), atol=1e-5)
