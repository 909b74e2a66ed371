"""Fine-tuning that starts from a linear probe: the head's linear layer is fitted to the frozen
body's features before the first training step.

A new head starts from random weights, and its first steps send large, noisy gradients into the
pretrained body while the head itself is still guessing. Fitting the head's linear layer first to
the features the frozen body gives the training images (a linear probe: for classification a
convex problem, solved in a second or two by L-BFGS on the learner's own loss) means fine-tuning
starts from a head that is already as good as a linear probe, and the body's features are changed
only where that helps (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features and
Underperform Out-of-Distribution", call this LP-FT). ``vision_learner`` adds :class:`ProbeInit`
to a pretrained learner with a linear head (its default); the measurements behind the choice are in
``docs/transfer.md``.

>>> head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 3))
>>> [type(m).__name__ for m in linear_head_parts(head)[1:]]
['Linear', 'Sequential']
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.losses import is_cross_entropy
from fastlearn.schedule import LRFinder
from fastlearn.vision.layers import AdaptiveConcatPool2d, Flatten

WEIGHT_DECAYS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3)
"""The L2 strengths :func:`fit_linear_layer` tries, strongest first (penalty
``weight_decay * |W|^2`` added to the mean loss)."""

DROPOUT_HALF_L2 = 0.1
"""The probe's L2 strength at which :func:`dropout_for_l2` gives fastai's head dropout, 0.5 (the
strongest strength in :data:`WEIGHT_DECAYS`)."""

_FEATURE_LAYERS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, AdaptiveConcatPool2d, nn.Flatten, Flatten, nn.Dropout)


def linear_head_parts(head: nn.Module) -> tuple[nn.Sequential, nn.Linear, nn.Sequential] | None:
    """``(before, linear, after)`` when ``head`` is a linear head: a ``nn.Sequential`` whose last
    ``nn.Linear`` is preceded only by pooling, flattening and dropout (a concat pool counts as
    pooling); None for a head with hidden layers or normalization before its last linear layer.

    >>> linear_head_parts(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))) is None
    True
    """
    if not isinstance(head, nn.Sequential):
        return None
    children = list(head)
    linears = [i for i, child in enumerate(children) if isinstance(child, nn.Linear)]
    if not linears:
        return None
    index = linears[-1]
    before = children[:index]
    if not all(isinstance(m, _FEATURE_LAYERS) for m in before):
        return None
    return nn.Sequential(*before), children[index], nn.Sequential(*children[index + 1:])


def dropout_for_l2(weight_decay: float, half: float = DROPOUT_HALF_L2) -> float:
    """The dropout probability ``p`` with ``p / (1 - p) = weight_decay / half``.

    Dropout on a linear layer's inputs penalises its weights as an L2 penalty whose strength grows
    as ``p / (1 - p)`` (Wager, Wang & Liang, 2013, "Dropout training as adaptive regularization").
    The probe's L2 strength, chosen on held-out training images, says how much regularisation the
    head needs on these features: the strongest strength searched keeps fastai's 0.5, a weakly
    regularised probe gets little dropout.

    >>> dropout_for_l2(0.1), round(dropout_for_l2(0.03), 3), round(dropout_for_l2(0.003), 3)
    (0.5, 0.231, 0.029)
    """
    if weight_decay < 0 or half <= 0:
        raise ValueError(f"dropout_for_l2 needs weight_decay >= 0 and half > 0, got {weight_decay}, {half}")
    return weight_decay / (weight_decay + half)


def fit_linear_layer(linear: nn.Linear, features: torch.Tensor, targets: torch.Tensor,
                     loss_func: Callable, after: nn.Module | None = None,
                     weight_decays: Sequence[float] = WEIGHT_DECAYS, holdout: float = 0.25,
                     max_iter: int = 100, seed: int = 0, search_iter: int | None = None) -> float:
    """Set ``linear``'s weight and bias to minimise ``loss_func(after(linear(features)), targets)``
    plus ``weight_decay * |W|^2``, by full-batch L-BFGS from zero weights; returns the weight decay
    used.

    With several ``weight_decays``, each is fitted (strongest first, each fit starting from the
    previous one) on a seeded random ``1 - holdout`` of the rows and scored by the loss on the
    others; the best is then fitted on all rows. The search's fits stop after ``search_iter``
    L-BFGS iterations (None: ``max_iter``), the final fit after ``max_iter``: each search fit starts
    where the previous one ended, so a few iterations rank the strengths as the full fits do.
    Nothing outside ``features`` and ``targets`` is
    read, so a validation set stays unseen.

    >>> x = torch.cat([torch.full((20, 3), -1.0), torch.full((20, 3), 1.0)]) + 0.1 * torch.rand(40, 3)
    >>> y = torch.tensor([0] * 20 + [1] * 20)
    >>> layer = nn.Linear(3, 2)
    >>> _ = fit_linear_layer(layer, x, y, nn.functional.cross_entropy)
    >>> bool((layer(x).argmax(1) == y).all())
    True
    """
    if features.ndim != 2 or len(features) != len(targets):
        raise ValueError(f"features of shape {tuple(features.shape)} for {len(targets)} targets; expected "
                         "(N, n_features) features with one target per row")
    if not weight_decays:
        raise ValueError("weight_decays is empty; pass at least one L2 strength, such as (1e-2,)")
    after = after if after is not None else nn.Identity()
    weight_decay, start = weight_decays[0], None
    n_held = int(round(len(features) * holdout))
    if len(weight_decays) > 1 and 0 < n_held < len(features) - 1:
        order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed)).to(features.device)
        fit_rows, held_rows = order[n_held:], order[:n_held]
        best = None
        for tried in sorted(weight_decays, reverse=True):
            start = _lbfgs(features[fit_rows], targets[fit_rows], loss_func, after, linear, tried,
                           search_iter or max_iter, start)
            with torch.no_grad():
                held_loss = float(loss_func(after(_affine(features[held_rows], *start)), targets[held_rows]))
            if best is None or held_loss < best[0]:
                best = (held_loss, tried, start)
        _, weight_decay, start = best
    weight, bias = _lbfgs(features, targets, loss_func, after, linear, weight_decay, max_iter, start)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if linear.bias is not None:
            linear.bias.copy_(bias)
    return weight_decay


def _affine(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return features @ weight.T + bias


def _lbfgs(features, targets, loss_func, after, linear, weight_decay, max_iter, start):
    shape = (linear.out_features, linear.in_features)
    weight = torch.zeros(shape, device=features.device) if start is None else start[0].clone()
    bias = torch.zeros(shape[0], device=features.device) if start is None else start[1].clone()
    weight.requires_grad_(True)
    bias.requires_grad_(linear.bias is not None)
    params = [weight, bias] if linear.bias is not None else [weight]
    optimizer = torch.optim.LBFGS(params, lr=1, max_iter=max_iter, history_size=20,
                                  tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_func(after(_affine(features, weight, bias)), targets) + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


class ProbeInit(Callback):
    """Before a new pretrained learner first trains, fit its head's linear layer to the frozen
    body's features of (up to ``max_items``) training images, read through the validation
    transforms (no augmentation), with the learner's loss (:func:`fit_linear_layer`).

    It acts once, on a head exactly as it was built: a head that was trained or loaded since
    (``learn.load``) is left alone. ``lr_find`` runs on the probed head and puts back the head
    it found, so the probe is reapplied (not recomputed) before the next fit.
    ``vision_learner(..., probe_init=False)`` leaves the head random. The search for the L2
    strength fits for ``search_iter`` L-BFGS iterations each (the final fit for 100): about half the
    L-BFGS time of full fits, the same strengths chosen on the transfer benchmark's tasks.

    ``dropout_from_probe`` (``vision_learner``'s default, ``ps=None``): with a single-label
    classification loss, the dropout before the linear layer is then set from the strength the
    probe chose (:func:`dropout_for_l2`, kept in ``dropout``): measured in docs/transfer.md, the
    head's dropout suits a dataset as the probe's strength does, and one fixed value did not suit
    both digits and clothes.

    >>> learn = vision_learner(dls, "efficientnet_lite0")   # doctest: +SKIP
    >>> learn.probe_init.weight_decay                         # doctest: +SKIP
    """

    order = -5  # before the schedules and the first batch; after nothing that trains

    def __init__(self, body: nn.Module, head: nn.Sequential, max_items: int = 4096,
                 weight_decays: Sequence[float] = WEIGHT_DECAYS, search_iter: int = 30,
                 dropout_from_probe: bool = False):
        parts = linear_head_parts(head)
        if parts is None:
            raise ValueError("ProbeInit needs a linear head (pooling, flattening and dropout, then one "
                             "nn.Linear, then any activation); build the head with lin_ftrs=[] and "
                             "first_bn=False, or pass probe_init=False")
        self.body, (self.before, self.linear, self.after) = body, parts
        self.max_items, self.weight_decays, self.search_iter = max_items, tuple(weight_decays), search_iter
        self.dropout_from_probe = dropout_from_probe
        self.dropout: float | None = None  # set from the probe's strength (dropout_from_probe)
        self.as_built = self.linear.weight.detach().clone()
        self.fitted: dict | None = None
        self.done = False
        self.weight_decay: float | None = None

    def before_fit(self):
        if self.done:
            return
        if not torch.equal(self.linear.weight.detach(), self.as_built.to(self.linear.weight.device)):
            self.done = True  # trained or loaded since it was built: not ours to replace
            return
        if self.fitted is None:
            self._fit()
        self.linear.load_state_dict(self.fitted)
        if not any(isinstance(cb, LRFinder) for cb in self.learn.cbs):
            self.done = True

    def _fit(self) -> None:
        features, targets = self._features()
        if len(features) < 2:
            self.done = True
            return
        self.weight_decay = fit_linear_layer(self.linear, features, targets, self.learn.loss_func,
                                             after=self.after, weight_decays=self.weight_decays,
                                             search_iter=self.search_iter)
        self.fitted = {k: v.detach().clone() for k, v in self.linear.state_dict().items()}
        if self.dropout_from_probe and is_cross_entropy(self.learn.loss_func):
            self.dropout = dropout_for_l2(self.weight_decay)
            for module in self.before.modules():
                if isinstance(module, nn.Dropout):
                    module.p = self.dropout

    def _features(self) -> tuple[torch.Tensor, torch.Tensor]:
        loader = _unaugmented_training_loader(self.dls)
        was_training = self.body.training, self.before.training
        self.body.eval()
        self.before.eval()
        features, targets, count = [], [], 0
        try:
            with torch.no_grad(), torch.autocast(self.learn.device.type, enabled=False):
                for batch in loader:
                    xb, yb = _inputs_and_target(batch, getattr(self.dls, "n_inp", 1) or 1)
                    if xb is None:
                        return torch.zeros(0), torch.zeros(0)
                    xb, yb = xb.to(self.learn.device), yb.to(self.learn.device)
                    features.append(self.before(self.body(xb)).float())
                    targets.append(yb)
                    count += len(xb)
                    if count >= self.max_items:
                        break
        finally:
            self.body.train(was_training[0])
            self.before.train(was_training[1])
        if not features:
            return torch.zeros(0), torch.zeros(0)
        return torch.cat(features)[:self.max_items], torch.cat(targets)[:self.max_items]


def _unaugmented_training_loader(dls):
    """The training items through the validation loader's transforms (resized, not augmented), in
    a seeded random order; the training loader itself when the loaders cannot make that."""
    valid, train_ds = getattr(dls, "valid", None), getattr(dls, "train_ds", None)
    if valid is not None and train_ds is not None and hasattr(valid, "new"):
        try:
            return valid.new(dataset=train_ds, shuffle=True, drop_last=False, seed=0)
        except TypeError:
            pass
    return dls.train


def _inputs_and_target(batch, n_inp: int):
    batch = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
    if n_inp != 1 or len(batch) != 2 or not all(isinstance(part, torch.Tensor) for part in batch):
        return None, None
    return batch
