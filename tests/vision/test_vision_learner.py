"""vision_learner: the model, the splits, freezing, normalization and what fine-tuning buys."""
import pytest
import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.data.batch_transforms import Normalize
from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock
from fastlearn.data.getters import get_image_files, parent_label
from fastlearn.data.splitters import GrandparentSplitter
from fastlearn.metrics import error_rate
from fastlearn.torch_core import set_seed
from fastlearn.vision.augment import aug_transforms
from fastlearn.vision.data import ImageBlock
from fastlearn.vision.efficientnet_lite import LITE_STATS, MBConvBlock, lite_weights_path
from fastlearn.vision.learner import cnn_learner, vision_learner
from fastlearn.vision.models import IMAGENET_STATS, torchvision_checkpoint_path
from fastlearn.vision.transforms import Resize


def image_dls(path, size=32, bs=32, batch_tfms=None, seed=0):
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                      splitter=GrandparentSplitter(), item_tfms=Resize(size), batch_tfms=batch_tfms)
    return block.dataloaders(path, bs=bs, num_workers=0, seed=seed)


def _normalizers(dls):
    return [t for dl in (dls.train, dls.valid) for t in dl.after_batch if isinstance(t, Normalize)]


def test_model_layout_freezing_and_normalization(fashion_mnist_path):
    dls = image_dls(fashion_mnist_path)
    learn = vision_learner(dls, "efficientnet_lite0", metrics=error_rate)
    body, head = learn.model[0], learn.model[1]
    assert isinstance(learn.model, nn.Sequential) and len(learn.model) == 2
    assert isinstance(head[-1], nn.Linear) and head[-1].out_features == dls.c == 10
    groups = learn.splitter(learn.model)
    assert len(groups) == 3 and {id(p) for p in groups[-1]} == {id(p) for p in head.parameters()}
    convs = [m for m in body.modules() if isinstance(m, nn.Conv2d)]
    assert convs and not any(p.requires_grad for m in convs for p in m.parameters())
    assert all(p.requires_grad for p in head.parameters())
    bns = [m for m in body.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(p.requires_grad for m in bns for p in m.parameters())  # train_bn=False
    fastai_like = vision_learner(dls, "efficientnet_lite0", train_bn=True)
    assert fastai_like.train_bn and not learn.train_bn
    assert all(p.requires_grad for m in fastai_like.model[0].modules() if isinstance(m, nn.BatchNorm2d)
               for p in m.parameters())
    norms = _normalizers(dls)
    assert len(norms) == 2
    for norm in norms:
        torch.testing.assert_close(norm.mean.flatten(), torch.tensor(LITE_STATS[0]))
    xb, _ = dls.valid.one_batch()
    assert float(xb.min()) < -0.5  # normalized to about [-1, 1], not [0, 1]
    vision_learner(dls, "efficientnet_lite0")
    assert len(_normalizers(dls)) == 2  # not added twice
    assert cnn_learner is vision_learner


def test_not_pretrained_is_not_frozen_nor_normalized(fashion_mnist_path):
    dls = image_dls(fashion_mnist_path)
    learn = vision_learner(dls, "resnet18", pretrained=False, y_range=None, lin_ftrs=[64], ps=0.1)
    assert all(p.requires_grad for p in learn.model.parameters())
    assert _normalizers(dls) == []
    assert [m.out_features for m in learn.model[1] if isinstance(m, nn.Linear)] == [64, 10]


def test_torchvision_arch_uses_hub_weights_and_imagenet_stats(fashion_mnist_path, tmp_path, monkeypatch):
    from torchvision.models import resnet18
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoint = torchvision_checkpoint_path(resnet18)
    checkpoint.parent.mkdir(parents=True)
    saved = resnet18().state_dict()
    torch.save(saved, checkpoint)
    dls = image_dls(fashion_mnist_path)
    learn = vision_learner(dls, resnet18)
    assert torch.equal(learn.model[0][0].weight.detach().cpu(), saved["conv1.weight"])
    torch.testing.assert_close(_normalizers(dls)[0].mean.flatten(), torch.tensor(IMAGENET_STATS[0]))


def test_lite1_learner_loads_its_weights_and_trains_the_head(fashion_mnist_path):
    set_seed(0)
    dls = image_dls(fashion_mnist_path, bs=64)
    learn = vision_learner(dls, "efficientnet_lite1", metrics=error_rate)
    state = torch.load(lite_weights_path("efficientnet_lite1"), weights_only=True)
    body = learn.model[0]
    torch.testing.assert_close(body[0].weight.detach().cpu(), state["_conv_stem.weight"])
    assert len([m for m in body if isinstance(m, MBConvBlock)]) == 21
    torch.testing.assert_close(_normalizers(dls)[0].mean.flatten(), torch.tensor(LITE_STATS[0]))
    head_before = [p.detach().clone() for p in learn.model[1].parameters()]
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)
    assert all(not torch.equal(a, b.detach()) for a, b in zip(head_before, learn.model[1].parameters()))
    torch.testing.assert_close(body[0].weight.detach().cpu(), state["_conv_stem.weight"])  # frozen body
    valid_loss, error = learn.validate()
    assert torch.isfinite(torch.tensor(valid_loss)) and 0 <= error <= 1


class PhaseWatcher(Callback):
    """Snapshots around the two fits of fine_tune and the learning rates of the second."""

    def __init__(self):
        self.fits, self.lrs, self.trainable, self.body_grads = 0, [], [], []

    def before_fit(self):
        self.fits += 1
        if self.fits == 1:
            self.start = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}
        else:
            self.trainable.append(all(p.requires_grad for p in self.learn.model.parameters()))

    def after_backward(self):
        if self.fits == 1 and not self.body_grads:
            self.body_grads.append(any(p.grad is not None for p in self.learn.model[0].parameters()))

    def after_fit(self):
        if self.fits == 1:
            self.after_frozen = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}

    def before_step(self):
        if self.fits == 2:
            self.lrs.append([group["lr"] for group in self.learn.opt.param_groups])


def test_fine_tune_freezes_the_body_then_uses_discriminative_rates(fashion_mnist_path):
    set_seed(0)
    dls = image_dls(fashion_mnist_path)
    learn = vision_learner(dls, "efficientnet_lite0")
    watcher = PhaseWatcher()
    learn.fine_tune(1, base_lr=2e-3, freeze_epochs=1, cbs=[watcher])
    start, frozen = watcher.start, watcher.after_frozen
    body_keys = [k for k in start if k.startswith("0.")]
    conv_keys = [k for k in body_keys if k.endswith("weight") and start[k].ndim == 4]
    bn_stat_keys = [k for k in body_keys if k.endswith(("running_mean", "running_var"))]
    bn_scale_keys = [k[:-len("running_mean")] + "weight" for k in body_keys if k.endswith("running_mean")]
    assert conv_keys and all(torch.equal(start[k], frozen[k]) for k in conv_keys)
    assert bn_stat_keys and all(torch.equal(start[k], frozen[k]) for k in bn_stat_keys)  # keep_bn_stats
    assert bn_scale_keys and all(torch.equal(start[k], frozen[k]) for k in bn_scale_keys)  # train_bn=False
    assert watcher.body_grads == [False]  # no gradient reached the frozen body
    head_keys = [k for k in start if k.startswith("1.") and k.endswith("weight")]
    assert all(not torch.equal(start[k], frozen[k]) for k in head_keys)
    assert watcher.trainable == [True]
    for lrs in watcher.lrs:
        assert max(lrs) / min(lrs) == pytest.approx(100, rel=1e-6)
        assert len({round(lr, 12) for lr in lrs}) >= 3
    assert max(max(lrs) for lrs in watcher.lrs) == pytest.approx(1e-3, rel=0.05)
    final = learn.model.state_dict()
    assert any(not torch.equal(frozen[k], final[k]) for k in conv_keys)
    assert any(not torch.equal(frozen[k], final[k]) for k in bn_scale_keys)  # scales train once unfrozen
    assert all(torch.equal(start[k], final[k]) for k in bn_stat_keys)  # unfrozen too


def test_keep_bn_stats_false_lets_the_statistics_follow_the_data(fashion_mnist_path):
    set_seed(0)
    dls = image_dls(fashion_mnist_path)
    learn = vision_learner(dls, "efficientnet_lite0", keep_bn_stats=False)
    before = learn.model[0][1].running_mean.clone()
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)
    assert not torch.equal(before, learn.model[0][1].running_mean)


def test_default_head_is_linear_and_starts_from_a_linear_probe(fashion_mnist_path):
    set_seed(0)
    dls = image_dls(fashion_mnist_path)
    learn = vision_learner(dls, "efficientnet_lite0", metrics=error_rate)
    head = learn.model[1]
    assert [type(m).__name__ for m in head] == ["AdaptiveAvgPool2d", "Flatten", "Dropout", "Linear"]
    random_head = head[-1].weight.detach().clone()
    random_error = learn.validate()[1]
    with learn.no_bar(), learn.no_logging():
        learn.fit(0)  # no training step: the probe alone
    assert not torch.equal(random_head, head[-1].weight)
    assert learn.probe_init.weight_decay in learn.probe_init.weight_decays
    probe_error = learn.validate()[1]
    assert probe_error < random_error - 0.2 and probe_error < 0.6  # 10 classes, 30 images each
    fastai_head = vision_learner(dls, "efficientnet_lite0", lin_ftrs=None, concat_pool=True).model[1]
    assert [type(m).__name__ for m in fastai_head][:3] == ["AdaptiveConcatPool2d", "Flatten", "BatchNorm1d"]
    assert not hasattr(vision_learner(dls, "efficientnet_lite0", lin_ftrs=None), "probe_init")


@pytest.mark.slow
def test_pretrained_lite0_beats_random_init_by_a_wide_margin():
    from fastlearn.datasets import fashion_mnist
    path = fashion_mnist(n_per_class=100, n_valid_per_class=25)
    errors = {}
    for pretrained in (True, False):
        set_seed(42)
        dls = image_dls(path, size=64, bs=64, batch_tfms=aug_transforms(), seed=42)
        learn = vision_learner(dls, "efficientnet_lite0", pretrained=pretrained, metrics=error_rate)
        with learn.no_bar(), learn.no_logging():
            learn.fine_tune(1, base_lr=2e-3, freeze_epochs=1)
        errors[pretrained] = float(learn.validate()[1])
    print(f"\nFashion-MNIST 100/class, 64 px, fine_tune(1): error rate pretrained {errors[True]:.3f}, "
          f"random init {errors[False]:.3f}")
    assert errors[True] < errors[False] - 0.15


def test_grey_images_with_n_in_1(fashion_mnist_path):
    from fastlearn.vision.image import PILImageBW
    block = DataBlock(blocks=(ImageBlock(cls=PILImageBW), CategoryBlock), get_items=get_image_files,
                      get_y=parent_label, splitter=GrandparentSplitter(), item_tfms=Resize(32))
    dls = block.dataloaders(fashion_mnist_path, bs=16, num_workers=0)
    learn = vision_learner(dls, "efficientnet_lite0", n_in=1)
    xb, _ = dls.valid.one_batch()
    assert xb.shape[1] == 1 and learn.model[0][0].in_channels == 1
    assert _normalizers(dls)[0].mean.flatten().tolist() == pytest.approx([LITE_STATS[0][0]])
    preds, targs = learn.get_preds()
    assert preds.shape == (len(dls.valid_ds), 10)
