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
