"""Key points after training: predict, get_preds, show_results and export speak pixels of the image."""
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import pytest
import torch
from torch import nn

from fastlearn.data.datablock import DataBlock
from fastlearn.data.getters import get_image_files
from fastlearn.data.splitters import FuncSplitter
from fastlearn.loading import load_learner
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.vision.data import ImageBlock, PointBlock
from fastlearn.vision.transforms import Resize

# Images are 48 x 80 (height x width) on disk; the model sees them squished to 24 x 40.
HEIGHT, WIDTH = 24, 40
FIXED = (0.5, -0.5)  # what FixedPoint predicts, in the model's [-1, 1] scale
FIXED_PIXELS = [(FIXED[0] + 1) * WIDTH / 2, (FIXED[1] + 1) * HEIGHT / 2]  # [30.0, 6.0]


def centre(path):
    """The bright square's centre in pixels of the 48 x 80 file, from its name ``x_y_n.png``."""
    x, y, _ = path.stem.split("_")
    return [float(x), float(y)]


@pytest.fixture
def folder(tmp_path):
    for n, (x, y) in enumerate([(10, 12), (60, 30), (40, 24), (70, 8), (20, 40), (50, 16)]):
        array = np.zeros((48, 80, 3), dtype=np.uint8)
        array[y - 2:y + 2, x - 2:x + 2] = 255
        PIL.Image.fromarray(array).save(tmp_path / f"{x}_{y}_{n}.png")
    return tmp_path


def valid_files(dls):
    return list(dls.valid_ds.items)


def point_dls(folder):
    dblock = DataBlock(blocks=(ImageBlock, PointBlock), get_items=get_image_files, get_y=centre,
                       splitter=FuncSplitter(lambda path: path.stem.endswith(("_4", "_5"))),
                       item_tfms=Resize((HEIGHT, WIDTH), method="squish"))
    return dblock.dataloaders(folder, bs=2, device="cpu", num_workers=0)


class FixedPoint(nn.Module):
    """Predicts the same point for every image."""

    def __init__(self):
        super().__init__()
        self.point = nn.Parameter(torch.tensor([FIXED]))

    def forward(self, x):
        return self.point.expand(len(x), 2)


def test_predict_returns_pixels_of_the_image_the_model_saw(folder):
    dls = point_dls(folder)
    learn = Learner(dls, FixedPoint(), loss_func=MSELossFlat())
    image = get_image_files(folder)[0]
    point, decoded, raw = learn.predict(image)
    assert point.reshape(-1).tolist() == pytest.approx(FIXED_PIXELS)
    assert raw.tolist() == pytest.approx(list(FIXED)) and decoded.tolist() == pytest.approx(list(FIXED))
    shown, point_again, _, _ = learn.predict(image, with_input=True)
    assert shown.shape == (3, HEIGHT, WIDTH) and torch.equal(point_again, point)
    # alone, without the image it belongs to, a point stays in the model's scale
    assert dls.decode_target(decoded).reshape(-1).tolist() == pytest.approx(list(FIXED))


def test_get_preds_decodes_like_the_targets_and_like_predict(folder):
    dls = point_dls(folder)
    learn = Learner(dls, FixedPoint(), loss_func=MSELossFlat())
    inputs, preds, targs, decoded = learn.get_preds(with_input=True, with_decoded=True)
    assert decoded.shape == (2, 2) and targs.shape == (2, 1, 2)
    assert float(targs.abs().max()) <= 1 and torch.equal(decoded, preds)  # both in [-1, 1]
    for i, path in enumerate(valid_files(dls)):
        expected = torch.tensor(centre(path)) / 2  # the 48 x 80 file squished to 24 x 40
        torch.testing.assert_close(dls.decode_targets(inputs, targs)[i].reshape(-1), expected)
        torch.testing.assert_close(dls.decode_targets(inputs, decoded)[i], learn.predict(path)[0])


def _scatter_offsets(ax):
    return np.concatenate([collection.get_offsets() for collection in ax.collections])


def test_show_results_draws_points_on_the_image_in_pixels(folder):
    dls = point_dls(folder)
    learn = Learner(dls, FixedPoint(), loss_func=MSELossFlat())
    assert learn.show_results(max_n=2) is None
    axes = [ax for ax in plt.gcf().axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["target", "prediction"] * 2
    for ax, path in zip(axes[::2], valid_files(dls)):
        assert ax.images[0].get_array().shape[:2] == (HEIGHT, WIDTH)
        assert _scatter_offsets(ax).tolist() == [pytest.approx([c / 2 for c in centre(path)])]
    for ax in axes[1::2]:
        offsets = _scatter_offsets(ax)
        assert offsets.tolist() == [pytest.approx(FIXED_PIXELS)]
        assert ((offsets >= 0) & (offsets <= [WIDTH, HEIGHT])).all()
    plt.close("all")


def test_exported_keypoint_learner_predicts_the_same_pixels(folder, tmp_path):
    from fastlearn.vision.learner import vision_learner
    dls = point_dls(folder)
    learn = vision_learner(dls, "resnet18", pretrained=False, y_range=(-1, 1), path=tmp_path)
    image = get_image_files(folder)[0]
    point, _, raw = learn.predict(image)
    torch.testing.assert_close(point.reshape(-1), (raw.reshape(-1) + 1) * torch.tensor([WIDTH, HEIGHT]) / 2)
    loaded = load_learner(learn.export(tmp_path / "points.pkl"))
    loaded_point, _, loaded_raw = loaded.predict(image)
    torch.testing.assert_close(loaded_raw, raw, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loaded_point, point, atol=1e-4, rtol=1e-5)
