"""unet_learner: skip connections at every resolution, frozen encoder, training, export."""
import pytest
import torch
from torch import nn

from fastlearn.data.getters import get_image_files
from fastlearn.loading import load_learner
from fastlearn.vision.data import SegmentationDataLoaders
from fastlearn.vision.unet import DynamicUnet, unet_learner, unet_model


@pytest.mark.parametrize("arch, size", [("resnet18", (64, 48)), ("efficientnet_lite0", (64, 64))])
def test_output_matches_input_and_skips_follow_resolutions(arch, size):
    model = unet_model(arch, n_out=5, img_size=size, pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 5, *size)
    assert len(model.blocks) == len(model.skip_indices) >= 3


def test_skip_connections_carry_information():
    torch.manual_seed(0)
    model = unet_model("resnet18", n_out=1, img_size=(32, 32), pretrained=False, last_cross=False).eval()
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    model(x)[0, 0, 3, 3].backward()
    grad = x.grad.abs().sum(1)[0]
    # a pixel's output depends on its neighbourhood far more than on the far corner
    assert float(grad[:8, :8].sum()) > 10 * float(grad[24:, 24:].sum())


def test_unet_learner_trains_and_exports(tmp_path):
    from fastlearn.datasets import fashion_segmentation
    path = fashion_segmentation(n_images=40, size=64)
    codes = (path / "codes.txt").read_text().split()
    dls = SegmentationDataLoaders.from_label_func(
        path, get_image_files(path / "images"), lambda p: path / "labels" / f"{p.stem}_P{p.suffix}",
        codes=codes, bs=8, num_workers=0, seed=0)
    learn = unet_learner(dls, "resnet18", pretrained=False, path=tmp_path)
    assert isinstance(learn.model, DynamicUnet) and learn.model.head.out_channels == len(codes)
    assert len(learn.splitter(learn.model)) == 2
    before = learn.validate()[0]
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, 3e-3)
    assert learn.validate()[0] < before
    xb, yb = dls.valid.one_batch()
    assert learn.model.eval()(xb).shape == (len(xb), len(codes), 64, 64)
    exported = learn.export("unet.pkl")
    loaded = load_learner(exported)
    image = get_image_files(path / "images")[0]
    torch.testing.assert_close(loaded.predict(image)[2], learn.predict(image)[2], atol=1e-5, rtol=1e-4)


def test_pretrained_unet_freezes_the_encoder(tmp_path, monkeypatch):
    from fastlearn.datasets import fashion_segmentation
    path = fashion_segmentation(n_images=40, size=64)
    dls = SegmentationDataLoaders.from_label_func(
        path, get_image_files(path / "images"), lambda p: path / "labels" / f"{p.stem}_P{p.suffix}",
        codes=(path / "codes.txt").read_text().split(), bs=8, num_workers=0, seed=0)
    learn = unet_learner(dls, "efficientnet_lite0")
    convs = [m for m in learn.model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert not any(p.requires_grad for m in convs for p in m.parameters())
    assert all(p.requires_grad for p in learn.model.head.parameters())


def test_show_results_draws_target_and_predicted_masks():
    import matplotlib.pyplot as plt
    from fastlearn.datasets import fashion_segmentation
    from fastlearn.vision import show_results
    path = fashion_segmentation(n_images=40, size=64)
    dls = SegmentationDataLoaders.from_label_func(
        path, get_image_files(path / "images"), lambda p: path / "labels" / f"{p.stem}_P{p.suffix}",
        codes=(path / "codes.txt").read_text().split(), bs=8, num_workers=0, seed=0)
    learn = unet_learner(dls, "resnet18", pretrained=False)
    show_results(learn, max_n=3)
    fig = plt.gcf()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["target", "prediction"] * 3
    assert all(len(ax.get_images()) == 2 for ax in axes)  # the image and its mask on top
    plt.close(fig)


def _decoder_convs(model):
    encoder = {id(m) for m in model.encoder.modules()}
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in encoder]


def test_default_decoder_is_narrow_and_upsamples_without_weights():
    from fastlearn.vision.layers import SimpleSelfAttention
    model = unet_model("efficientnet_lite0", n_out=11, img_size=(64, 64), pretrained=False)
    # one conv per resolution, (incoming + skip) // 2 wide, capped at 256: 1280 + 112, 256 + 40, 148 + 24, 86 + 16
    assert [block.out_channels for block in model.blocks] == [256, 148, 86, 51]
    assert all(sum(isinstance(m, nn.Conv2d) for m in block.modules()) == 1 for block in model.blocks)
    assert isinstance(model.middle, nn.Identity) and isinstance(model.final_up, nn.Identity)
    assert not any(isinstance(m, (nn.PixelShuffle, SimpleSelfAttention)) for m in model.modules())
    assert max(conv.out_channels for conv in _decoder_convs(model)) == 256
    assert model.cross[0].out_channels == 51 + 3  # the last block and the image
    def decoder_size(unet):
        return sum(p.numel() for name, p in unet.named_parameters() if not name.startswith("encoder."))
    encoder = sum(p.numel() for p in model.encoder.parameters())
    assert decoder_size(model) < 1.2 * encoder
    fastai_like = unet_model("efficientnet_lite0", n_out=11, img_size=(64, 64), pretrained=False,
                             upsample="shuffle", middle=True, max_width=4096)
    assert decoder_size(fastai_like) > 15 * encoder  # the widths follow the encoder's 1280 channels
    # a block's only weights are the skip's BatchNorm and its conv: upsampling is interpolation
    block = model.blocks[0]
    assert sum(p.numel() for p in block.parameters()) == (
        sum(p.numel() for p in block.skip_bn.parameters()) + sum(p.numel() for p in block.conv.parameters()))


def test_decoder_convs_keep_pytorch_default_init():
    import math
    from fastlearn.vision.layers import ConvLayer
    torch.manual_seed(0)
    model = unet_model("efficientnet_lite0", n_out=11, img_size=(64, 64), pretrained=False)
    for layer in [block.conv for block in model.blocks] + [model.cross]:
        weight = layer[0].weight.detach()
        fan_in = weight[0].numel()
        # kaiming_uniform_(a=sqrt(5)): std 1 / sqrt(3 fan_in); Kaiming normal for ReLU would be sqrt(2 / fan_in)
        assert abs(float(weight.std()) * math.sqrt(3 * fan_in) - 1) < 0.1
    kaiming = ConvLayer(256, 256)[0].weight.detach()
    assert abs(float(kaiming.std()) * math.sqrt(256 * 9 / 2) - 1) < 0.05


def test_bilinear_block_passes_a_smooth_map_up_unchanged():
    from fastlearn.vision.unet import UnetBlock
    block = UnetBlock(4, 2, 3).eval()
    seen = {}
    block.conv.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0]))
    constant = torch.full((1, 4, 2, 2), 0.7)
    block(constant, torch.zeros(1, 2, 4, 4))
    torch.testing.assert_close(seen["x"][:, :4], torch.full((1, 4, 4, 4), 0.7))


def test_icnr_makes_pixel_shuffle_start_as_nearest_upsampling():
    from fastlearn.vision.unet import PixelShuffleUp, icnr_
    torch.manual_seed(0)
    up = PixelShuffleUp(6, 4)
    with torch.no_grad():
        out = up(torch.rand(2, 6, 3, 3))
    assert out.shape == (2, 4, 6, 6)
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        torch.testing.assert_close(out[..., dy::2, dx::2], out[..., ::2, ::2])
    assert float(out.std()) > 0  # not a degenerate all-zero start
    with pytest.raises(ValueError, match="multiple of scale"):
        icnr_(torch.empty(6, 2, 1, 1))


def test_fastai_style_decoder_options():
    from fastlearn.vision.layers import NormType, SimpleSelfAttention
    model = unet_model("resnet18", n_out=2, img_size=(64, 64), pretrained=False, upsample="shuffle", middle=True,
                       self_attention=True, blur=True, max_width=4096, norm_type=None).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)
    assert sum(isinstance(m, nn.PixelShuffle) for m in model.modules()) == len(model.blocks) + 1
    middle_convs = [m for m in model.middle.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in middle_convs] == [(512, 1024), (1024, 1024)]
    assert [isinstance(block.attention, SimpleSelfAttention) for block in model.blocks] == [False, True, False, False]
    # norm_type=None: no BatchNorm after the decoder's convs (the skips' BatchNorms stay), biases instead
    decoder_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)
                     and not any(m is n for n in model.encoder.modules())]
    assert len(decoder_norms) == len(model.blocks) + 1  # the middle block's first BatchNorm and the skips'
    assert all(conv.bias is not None for conv in _decoder_convs(model))
    capped = unet_model("resnet18", n_out=2, img_size=(64, 64), pretrained=False, middle=True, max_width=64,
                        norm_type=NormType.Batch)
    assert [c.out_channels for c in capped.middle.modules() if isinstance(c, nn.Conv2d)] == [64, 64]
    assert max(block.out_channels for block in capped.blocks) == 64
    with pytest.raises(ValueError, match="upsample="):
        unet_model("resnet18", n_out=2, img_size=(64, 64), pretrained=False, upsample="transpose")
    with pytest.raises(ValueError, match="norm_type="):
        unet_model("resnet18", n_out=2, img_size=(64, 64), pretrained=False, norm_type="group")


def test_decoder_options_survive_export(tmp_path):
    from fastlearn.datasets import fashion_segmentation
    from fastlearn.vision.layers import NormType
    path = fashion_segmentation(n_images=40, size=64)
    dls = SegmentationDataLoaders.from_label_func(
        path, get_image_files(path / "images"), lambda p: path / "labels" / f"{p.stem}_P{p.suffix}",
        codes=(path / "codes.txt").read_text().split(), bs=8, num_workers=0, seed=0)
    learn = unet_learner(dls, "resnet18", pretrained=False, path=tmp_path, upsample="nearest", max_width=32,
                         norm_type=NormType.Instance, self_attention=True)
    assert learn.model_spec["args"]["norm_type"] == "instance"
    loaded = load_learner(learn.export("unet.pkl"))
    assert max(block.out_channels for block in loaded.model.blocks) == 32
    image = get_image_files(path / "images")[0]
    torch.testing.assert_close(loaded.predict(image)[2], learn.predict(image)[2], atol=1e-5, rtol=1e-4)


def test_course_superres_arguments():
    from torch.nn.utils import parametrize
    from fastlearn.vision.layers import NormType
    model = unet_model("resnet18", n_out=3, img_size=(32, 32), pretrained=False, blur=True,
                       norm_type=NormType.Weight, self_attention=True, y_range=(-3.0, 3.0)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32) * 50)
    assert out.shape == (2, 3, 32, 32) and float(out.abs().max()) < 3.0
    assert all(parametrize.is_parametrized(conv) for conv in _decoder_convs(model) if conv is not model.head)
