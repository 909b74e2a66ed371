"""Two cheap baselines for an image classifier, to set beside a fine-tuned model's error.

- :func:`linear_probe`: the frozen pretrained body of ``arch`` turns every image into a feature
  vector (global average pool); a multinomial logistic regression learns the classes from them.
- :func:`pixel_logistic_regression`: the same logistic regression on the raw pixels.

Both read the training and validation images of a ``DataBunch`` built from a ``DataBlock`` (or
``ImageDataLoaders``): the training images through the validation transforms (resized, never
augmented), and report the error on the validation set. The logistic regression
(:class:`LogisticRegression`, on pixels standardized with the training set's mean and standard
deviation, on pretrained features as they are) is fitted by full-batch L-BFGS with an L2 penalty
whose strength is chosen on a held-out part of the *training* set only
(:func:`fit_logistic_regression`); the validation set is used once, to report the error. Everything runs in torch, and the same call on the same
data gives the same numbers.

>>> dls = ImageDataLoaders.from_folder(fashion_mnist(n_per_class=100), item_tfms=Resize(64))  # doctest: +SKIP
>>> linear_probe(dls, "efficientnet_lite0").error       # doctest: +SKIP
0.168
>>> pixel_logistic_regression(dls).error                # doctest: +SKIP
0.176
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from fastlearn.data.batch_transforms import Normalize
from fastlearn.vision.learner import create_body, stats_for_channels
from fastlearn.vision.models import arch_meta
from fastlearn.vision.probe_init import fit_linear_layer

WEIGHT_DECAYS = (1.0, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4)
"""The L2 strengths :func:`fit_logistic_regression` tries (penalty ``weight_decay * |W|^2`` added
to the mean cross-entropy)."""


class LogisticRegression(nn.Module):
    """Optionally standardize each feature (with statistics of the training features), then a
    linear layer giving one logit per class.

    >>> model = LogisticRegression(torch.zeros(4), torch.ones(4), n_classes=3)
    >>> model(torch.randn(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.numel(), n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.std)


def fit_logistic_regression(features: torch.Tensor, targets: torch.Tensor, n_classes: int | None = None,
                            weight_decays: Sequence[float] = WEIGHT_DECAYS, holdout: float = 0.2,
                            seed: int = 0, standardize: bool = True) -> tuple[LogisticRegression, float]:
    """A :class:`LogisticRegression` on ``features`` (N, F) and class indices ``targets`` (N,),
    with the L2 strength chosen on the training data alone; returns ``(model, weight_decay)``.

    The fit is :func:`~fastlearn.vision.probe_init.fit_linear_layer` (the one that starts
    ``vision_learner``'s head): full-batch L-BFGS on the mean cross-entropy, each strength in
    ``weight_decays`` fitted on a random ``1 - holdout`` of the rows (drawn with ``seed``) and
    scored by the cross-entropy on the others, the best then fitted on all rows. ``standardize``
    scales each feature by the training rows' mean and standard deviation first (for pixels);
    pretrained features go in as they are.

    >>> x = torch.cat([torch.full((20, 3), -2.0), torch.full((20, 3), 2.0)]) + torch.rand(40, 3)
    >>> y = torch.tensor([0] * 20 + [1] * 20)
    >>> model, weight_decay = fit_logistic_regression(x, y)
    >>> float((model(x).argmax(1) == y).float().mean())
    1.0
    """
    if features.ndim != 2 or targets.ndim != 1 or len(features) != len(targets):
        raise ValueError(f"features of shape {tuple(features.shape)} and targets of shape {tuple(targets.shape)}; "
                         "expected (N, F) features and (N,) class indices for the same N rows")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout={holdout!r}; expected the fraction of training rows to score the "
                         "weight decays on, between 0 and 1 (such as 0.2)")
    if not weight_decays:
        raise ValueError("weight_decays is empty; pass at least one L2 strength, such as (1e-3, 1e-2, 1e-1)")
    n_held = int(round(len(targets) * holdout))
    if len(weight_decays) > 1 and not 0 < n_held < len(targets) - 1:
        raise ValueError(f"{len(targets)} training rows are too few to hold out {holdout:.0%} of them for "
                         "choosing the weight decay; pass a single weight_decays value or more data")
    features, targets = features.float(), targets.long()
    n_classes = int(targets.max()) + 1 if n_classes is None else n_classes
    if standardize:
        mean, std = features.mean(0), features.std(0, unbiased=False)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
    else:
        mean, std = torch.zeros(features.shape[1]), torch.ones(features.shape[1])
    model = LogisticRegression(mean.to(features.device), std.to(features.device), n_classes).to(features.device)
    weight_decay = fit_linear_layer(model.linear, (features - model.mean) / model.std, targets, F.cross_entropy,
                                    weight_decays=weight_decays, holdout=holdout, max_iter=200, seed=seed)
    return model.requires_grad_(False), weight_decay


@dataclass
class BaselineResult:
    """What :func:`linear_probe` and :func:`pixel_logistic_regression` return.

    ``error`` is the validation error rate; ``weight_decay`` the L2 strength chosen on the
    training set; ``model`` the fitted :class:`LogisticRegression` (on the features);
    ``seconds`` the wall time of the whole call (reading images included).
    """

    error: float
    weight_decay: float
    model: LogisticRegression
    n_train: int
    n_valid: int
    n_features: int
    seconds: float

    @property
    def accuracy(self) -> float:
        return 1 - self.error


def loader_features(dl, encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, targets)`` over a whole loader of ``(images, targets)`` batches: each image
    batch goes through ``encode`` (without gradients) and is flattened to one row per image.

    >>> x, y = loader_features([(torch.ones(2, 3, 4, 4), torch.tensor([0, 1]))])
    >>> x.shape, y.tolist()
    (torch.Size([2, 48]), [0, 1])
    """
    features, targets = [], []
    with torch.no_grad():
        for images, target in dl:
            if device is not None:
                images = images.to(device)
            out = encode(images) if encode is not None else images
            features.append(out.float().flatten(1).cpu())
            targets.append(torch.as_tensor(target).cpu())
    if not features:
        raise ValueError(f"the loader {dl!r} gave no batches; expected images and their labels")
    return torch.cat(features), torch.cat(targets)


def _train_and_valid_loaders(dls):
    if not hasattr(dls, "test_dl") or not hasattr(dls, "train_ds"):
        raise TypeError(f"expected a DataBunch (DataLoaders) from a DataBlock or ImageDataLoaders; got "
                        f"{type(dls).__name__}")
    try:
        train = dls.test_dl(dls.train_ds.items, with_labels=True)
    except TypeError as error:
        raise TypeError(f"{error}; the baselines read the training images through the validation "
                        "transforms, which needs loaders built from a DataBlock or ImageDataLoaders") from error
    return train, dls.valid


def _fit_and_score(dls, encode, device, weight_decays, seed, started, standardize) -> BaselineResult:
    train_dl, valid_dl = _train_and_valid_loaders(dls)
    train_x, train_y = loader_features(train_dl, encode, device)
    valid_x, valid_y = loader_features(valid_dl, encode, device)
    if train_y.ndim != 1 or train_y.is_floating_point():
        raise ValueError(f"the targets are of shape {tuple(train_y.shape)[1:]} and type {train_y.dtype}; the "
                         "baselines need single-label classification (one class index per image, a "
                         "CategoryBlock target)")
    n_classes = len(dls.vocab) if getattr(dls, "vocab", None) is not None else None
    model, weight_decay = fit_logistic_regression(train_x, train_y, n_classes, weight_decays, seed=seed,
                                                  standardize=standardize)
    error = float((model(valid_x).argmax(1) != valid_y).float().mean())
    return BaselineResult(error, weight_decay, model, len(train_y), len(valid_y), train_x.shape[1],
                          time.perf_counter() - started)


def _loaders_normalize(dls) -> bool:
    loaders = [dls[i] for i in range(len(dls))]
    return any(isinstance(t, Normalize) for dl in loaders for t in (getattr(dl, "after_batch", None) or []))


def linear_probe(dls, arch: Callable | str | nn.Module = "efficientnet_lite0",
                 weight_decays: Sequence[float] = WEIGHT_DECAYS, seed: int = 0) -> BaselineResult:
    """Validation error of a logistic regression on the frozen pretrained body of ``arch``.

    The body is ``create_body(arch, pretrained=True)`` in eval mode (BatchNorm with its pretrained
    statistics); a feature vector is its output averaged over the spatial positions. Images are
    normalized with the arch's statistics unless the loaders already normalize (as after
    ``vision_learner``) or ``arch`` is a model instance (then they go in as the loaders give them). See the module docstring for the regression and how the L2 strength is
    chosen (``seed`` draws the held-out rows).

    >>> result = linear_probe(dls, "efficientnet_lite0")      # doctest: +SKIP
    >>> print(f"error {result.error:.3f} in {result.seconds:.1f} s")   # doctest: +SKIP
    error 0.168 in 6.1 s
    """
    started = time.perf_counter()
    device = dls.device if getattr(dls, "device", None) is not None else torch.device("cpu")
    body = create_body(arch, pretrained=True).to(device).eval()
    norm = None
    if not _loaders_normalize(dls) and not isinstance(arch, nn.Module):
        norm = arch_meta(arch)["stats"]

    def encode(images: torch.Tensor) -> torch.Tensor:
        if norm is not None:
            mean, std = (torch.tensor(s, device=images.device).reshape(1, -1, 1, 1)
                         for s in stats_for_channels(norm, images.shape[1]))
            images = (images - mean) / std
        return body(images).mean((2, 3))

    return _fit_and_score(dls, encode, device, weight_decays, seed, started, standardize=False)


def pixel_logistic_regression(dls, size: int | None = 32, weight_decays: Sequence[float] = WEIGHT_DECAYS,
                              seed: int = 0) -> BaselineResult:
    """Validation error of a logistic regression on the pixels of the loaders' images.

    Images larger than ``size`` pixels on a side are averaged down to ``size`` x ``size`` first
    (``None`` keeps them as they are), so that the regression stays small on large sets; a 28 px
    source resized to 64 loses almost nothing at 32. See the module docstring for the regression.

    >>> pixel_logistic_regression(dls).error                 # doctest: +SKIP
    0.176
    """
    if size is not None and (not isinstance(size, int) or size < 1):
        raise ValueError(f"size={size!r}; expected a positive number of pixels per side, or None for the "
                         "images as the loaders give them")
    started = time.perf_counter()

    def encode(images: torch.Tensor) -> torch.Tensor:
        if size is not None and max(images.shape[-2:]) > size:
            images = F.adaptive_avg_pool2d(images, size)
        return images

    return _fit_and_score(dls, encode, None, weight_decays, seed, started, standardize=True)
