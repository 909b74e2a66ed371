"""ProbeInit: a pretrained learner's linear head starts from a linear probe of the frozen body."""
import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock
from fastlearn.data.getters import get_image_files, parent_label
from fastlearn.data.splitters import GrandparentSplitter
from fastlearn.losses import BCEWithLogitsLossFlat, MSELossFlat
from fastlearn.torch_core import set_seed
from fastlearn.vision.data import ImageBlock
from fastlearn.vision.layers import SigmoidRange
from fastlearn.vision.learner import vision_learner
from fastlearn.vision.probe_init import ProbeInit, dropout_for_l2, fit_linear_layer, linear_head_parts
from fastlearn.vision.transforms import Resize


@pytest.fixture(scope="module")
def dls(fashion_mnist_path):
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                      splitter=GrandparentSplitter(), item_tfms=Resize(32))
    return block.dataloaders(fashion_mnist_path, bs=32, num_workers=0, seed=0)


def quiet_fit(learn, *args, **kwargs):
    with learn.no_bar(), learn.no_logging():
        learn.fit(*args, **kwargs)


def blobs(n_per_class=30, n_classes=3, n_features=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(n_classes, n_features, generator=generator)
    targets = torch.arange(n_classes).repeat_interleave(n_per_class)
    return centres[targets] + torch.randn(len(targets), n_features, generator=generator), targets


def test_fit_linear_layer_classifies_separable_data_and_is_deterministic():
    features, targets = blobs()
    first, second = nn.Linear(5, 3), nn.Linear(5, 3)
    wd_first = fit_linear_layer(first, features, targets, nn.functional.cross_entropy)
    wd_second = fit_linear_layer(second, features, targets, nn.functional.cross_entropy)
    assert wd_first == wd_second
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)
    assert float((first(features).argmax(1) == targets).float().mean()) > 0.95


def test_fit_linear_layer_searches_with_short_fits_and_ends_with_a_full_one(monkeypatch):
    import fastlearn.vision.probe_init as probe_init
    calls, real = [], probe_init._lbfgs

    def recording(features, targets, loss_func, after, linear, weight_decay, max_iter, start):
        calls.append((len(features), weight_decay, max_iter))
        return real(features, targets, loss_func, after, linear, weight_decay, max_iter, start)

    monkeypatch.setattr(probe_init, "_lbfgs", recording)
    features, targets = blobs(n_per_class=40)
    short, full = nn.Linear(5, 3), nn.Linear(5, 3)
    wd_short = fit_linear_layer(short, features, targets, nn.functional.cross_entropy, search_iter=10)
    assert calls[:-1] == [(90, wd, 10) for wd in sorted(probe_init.WEIGHT_DECAYS, reverse=True)]
    assert calls[-1] == (120, wd_short, 100)  # every row, max_iter
    calls.clear()
    wd_full = fit_linear_layer(full, features, targets, nn.functional.cross_entropy)
    assert {c[2] for c in calls} == {100}  # search_iter None: the search fits run max_iter too
    assert wd_short == wd_full
    assert torch.allclose(short.weight, full.weight, atol=1e-3)


def test_fit_linear_layer_uses_the_loss_and_the_activation_after_it():
    features = torch.rand(60, 4)
    targets = features @ torch.tensor([0.5, -0.3, 0.2, 0.1]) - 0.1  # within (-1, 1)
    layer = nn.Linear(4, 1)
    fit_linear_layer(layer, features, targets[:, None], MSELossFlat(), after=SigmoidRange(-1, 1),
                     weight_decays=(1e-6,))
    predictions = SigmoidRange(-1, 1)(layer(features)).detach()
    assert float(((predictions - targets[:, None]) ** 2).mean()) < 1e-3


def test_fit_linear_layer_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"features of shape \(4, 2, 2\) for 4 targets"):
        fit_linear_layer(nn.Linear(2, 2), torch.zeros(4, 2, 2), torch.zeros(4), nn.functional.cross_entropy)
    with pytest.raises(ValueError, match="weight_decays is empty"):
        fit_linear_layer(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(4), nn.functional.cross_entropy,
                         weight_decays=())


def test_linear_head_parts_and_the_error_for_other_heads():
    assert linear_head_parts(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
                                           SigmoidRange(0, 1))) is not None
    hidden = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(4), nn.Linear(4, 2))
    assert linear_head_parts(hidden) is None
    with pytest.raises(ValueError, match="needs a linear head.*probe_init=False"):
        ProbeInit(nn.Identity(), hidden)


def test_a_loaded_head_is_never_replaced(dls, tmp_path):
    set_seed(0)
    learn = vision_learner(dls, "efficientnet_lite0", path=tmp_path)
    quiet_fit(learn, 1, 1e-3)
    learn.save("trained")
    trained = learn.model[1][-1].weight.detach().clone()
    fresh = vision_learner(dls, "efficientnet_lite0", path=tmp_path)
    fresh.load("trained")
    quiet_fit(fresh, 0)
    assert torch.equal(fresh.model[1][-1].weight, trained)
    assert fresh.probe_init.weight_decay is None  # never fitted


def test_lr_find_runs_on_the_probe_and_the_next_fit_starts_from_it(dls):
    set_seed(0)
    learn = vision_learner(dls, "efficientnet_lite0")
    learn.lr_find(num_it=5, show_plot=False)
    probed = learn.probe_init.fitted["weight"]
    assert learn.probe_init.weight_decay is not None and not learn.probe_init.done

    class FirstBatch(Callback):  # the head's weights at the first training step
        def before_batch(self):
            if not hasattr(self, "seen"):
                self.seen = self.learn.model[1][-1].weight.detach().clone()

    first = FirstBatch()
    quiet_fit(learn, 1, 1e-3, cbs=[first])
    assert torch.equal(first.seen, probed)
    assert learn.probe_init.done


@pytest.mark.parametrize("kind", ["multi-label", "points"])
def test_probe_fits_the_heads_of_other_losses(dls, kind):
    """The probe fits through the learner's own loss and what follows the linear layer (a
    SigmoidRange for points): on the body's real features it lowers that loss well below the
    random head's."""
    set_seed(0)
    if kind == "multi-label":
        learn = vision_learner(dls, "efficientnet_lite0", n_out=10, loss_func=BCEWithLogitsLossFlat())
        to_target = lambda y: nn.functional.one_hot(y, 10).float()  # noqa: E731
    else:
        learn = vision_learner(dls, "efficientnet_lite0", n_out=2, y_range=(-1, 1), loss_func=MSELossFlat())
        to_target = lambda y: torch.stack([y / 5 - 0.9, -(y / 5 - 0.9)], 1)  # noqa: E731
    probe = learn.probe_init
    features, targets = probe._features()
    targets = to_target(targets)
    learn.model.eval()
    with torch.no_grad():
        random_loss = float(learn.loss_func(probe.after(probe.linear(features)), targets))
    fit_linear_layer(probe.linear, features, targets, learn.loss_func, after=probe.after)
    with torch.no_grad():
        probe_loss = float(learn.loss_func(probe.after(probe.linear(features)), targets))
    assert probe_loss < 0.7 * random_loss


def test_the_heads_dropout_follows_the_probes_strength_unless_given(dls):
    set_seed(0)
    learn = vision_learner(dls, "efficientnet_lite0")
    dropout = [m for m in learn.model[1].modules() if isinstance(m, nn.Dropout)]
    assert [m.p for m in dropout] == [0.5]  # as built, until the probe has chosen its strength
    quiet_fit(learn, 0)
    probe = learn.probe_init
    assert probe.weight_decay is not None
    assert dropout[0].p == probe.dropout == dropout_for_l2(probe.weight_decay)
    given = vision_learner(dls, "efficientnet_lite0", ps=0.25)
    quiet_fit(given, 0)
    assert given.probe_init.weight_decay is not None and given.probe_init.dropout is None
    assert [m.p for m in given.model[1].modules() if isinstance(m, nn.Dropout)] == [0.25]


def test_dropout_for_l2_keeps_fastais_half_at_the_strongest_strength():
    assert dropout_for_l2(0.1) == 0.5
    assert dropout_for_l2(0.0) == 0.0
    values = [dropout_for_l2(wd) for wd in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)]
    assert values == sorted(values) and all(0 < v <= 0.5 for v in values)
    with pytest.raises(ValueError, match="weight_decay >= 0"):
        dropout_for_l2(-1.0)
