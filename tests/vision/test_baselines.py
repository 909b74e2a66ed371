"""The linear-probe and pixel logistic-regression baselines: better than chance, deterministic,
blind to augmentation and to whether the loaders already normalize, and clear about misuse."""
import pytest
import torch

from fastlearn.data.batch_transforms import Normalize
from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock, MultiCategoryBlock
from fastlearn.data.getters import get_image_files, parent_label
from fastlearn.data.splitters import GrandparentSplitter
from fastlearn.vision.augment import aug_transforms
from fastlearn.vision.baselines import (LogisticRegression, fit_logistic_regression, linear_probe,
                                        loader_features, pixel_logistic_regression)
from fastlearn.vision.data import ImageBlock
from fastlearn.vision.efficientnet_lite import LITE_STATS
from fastlearn.vision.transforms import Resize

CHANCE_ERROR = 0.9  # 10 balanced classes


def fashion_dls(path, batch_tfms=None, get_y=parent_label, y_block=CategoryBlock):
    block = DataBlock(blocks=(ImageBlock, y_block), get_items=get_image_files, get_y=get_y,
                      splitter=GrandparentSplitter(), item_tfms=Resize(32), batch_tfms=batch_tfms)
    return block.dataloaders(path, bs=32, num_workers=0, seed=0)


@pytest.fixture(scope="module")
def probe(fashion_mnist_path):
    return linear_probe(fashion_dls(fashion_mnist_path), "efficientnet_lite0")


def test_linear_probe_beats_chance_and_repeats_exactly(fashion_mnist_path, probe):
    assert probe.n_train == 300 and probe.n_valid == 100 and probe.n_features == 1280
    assert probe.error < CHANCE_ERROR - 0.4, probe
    assert probe.weight_decay in (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    again = linear_probe(fashion_dls(fashion_mnist_path), "efficientnet_lite0")
    assert again.error == probe.error and again.weight_decay == probe.weight_decay
    assert torch.equal(again.model.linear.weight, probe.model.linear.weight)


def test_linear_probe_ignores_augmentation_and_existing_normalization(fashion_mnist_path, probe):
    augmented = linear_probe(fashion_dls(fashion_mnist_path, batch_tfms=aug_transforms()), "efficientnet_lite0")
    assert augmented.error == probe.error       # training images go through the validation transforms
    normalized = fashion_dls(fashion_mnist_path, batch_tfms=[Normalize.from_stats(*LITE_STATS)])
    assert linear_probe(normalized, "efficientnet_lite0").error == pytest.approx(probe.error, abs=0.011)


def test_pixel_logistic_regression_beats_chance_and_repeats_exactly(fashion_mnist_path):
    dls = fashion_dls(fashion_mnist_path)
    result = pixel_logistic_regression(dls, size=16)
    assert result.n_features == 3 * 16 * 16
    assert result.error < CHANCE_ERROR - 0.4, result
    assert pixel_logistic_regression(dls, size=16).error == result.error
    assert pixel_logistic_regression(dls, size=None).n_features == 3 * 32 * 32


def test_weight_decay_is_chosen_on_the_training_rows_only():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 50, generator=generator)
    y = (x[:, 0] > 0).long()
    model, weight_decay = fit_logistic_regression(x, y, weight_decays=(1e-3, 1e-1))
    assert isinstance(model, LogisticRegression) and weight_decay in (1e-3, 1e-1)
    # the chosen strength fitted on all rows: the same as fitting it directly from zero, to optimizer precision
    direct, _ = fit_logistic_regression(x, y, weight_decays=(weight_decay,))
    assert torch.allclose(model(x).softmax(1), direct(x).softmax(1), atol=1e-2)
    assert float((model(x).argmax(1) == y).float().mean()) > 0.95


def test_misuse_raises_clear_errors(fashion_mnist_path, tmp_path):
    with pytest.raises(ValueError, match=r"expected \(N, F\) features"):
        fit_logistic_regression(torch.zeros(4, 3), torch.zeros(5))
    with pytest.raises(ValueError, match="holdout=1.5"):
        fit_logistic_regression(torch.zeros(4, 3), torch.zeros(4), holdout=1.5)
    with pytest.raises(ValueError, match="size=0"):
        pixel_logistic_regression(fashion_dls(fashion_mnist_path), size=0)
    with pytest.raises(TypeError, match="expected a DataBunch"):
        linear_probe([(torch.zeros(1, 3, 8, 8), torch.zeros(1))])
    multi = fashion_dls(fashion_mnist_path, get_y=lambda f: [f.parent.name], y_block=MultiCategoryBlock)
    with pytest.raises(ValueError, match="single-label classification"):
        pixel_logistic_regression(multi, size=8)
    assert loader_features([(torch.ones(2, 1, 2, 2), torch.tensor([3, 4]))])[0].shape == (2, 4)
