"""Callbacks for recurrent text models: ``ModelResetter`` and ``RNNRegularizer``.

>>> learn = TextLearner(dls, model, loss_func=CrossEntropyLossFlat(),
...                     cbs=[ModelResetter, RNNRegularizer(alpha=2, beta=1)])   # doctest: +SKIP
"""
from __future__ import annotations

import torch

from fastlearn.callback import Callback


def _reset(model) -> None:
    model = getattr(model, "module", model)  # DistributedDataParallel
    if hasattr(model, "reset"):
        model.reset()


class ModelResetter(Callback):
    """Calls ``model.reset()`` (clears a recurrent model's hidden state) before training, before
    validation and when the loop ends (also after an exception).

    >>> ModelResetter().name
    'model_resetter'
    """

    def before_train(self):
        _reset(self.model)

    def before_validate(self):
        _reset(self.model)

    def cleanup(self):
        _reset(self.model)


class RNNRegularizer(Callback):
    """Activation regularization (``alpha`` × mean square of the last layer's dropped-out outputs)
    and temporal activation regularization (``beta`` × mean square of the step-to-step change of
    its raw outputs), added to the training loss.

    The activations come from the prediction when the model returns a tuple
    ``(logits, raw_outputs, outputs)`` (a list of layers' outputs or one tensor each): the
    callback keeps them and sets ``learn.pred`` to the logits, so the loss and the metrics see
    only those. Models that return plain logits (``get_language_model``,
    ``get_text_classifier``) keep them in ``last_activations``: the last module that does
    (the decoder: its input and that input after dropout, as fastai's) is read.

    >>> RNNRegularizer(alpha=2., beta=1.).alpha
    2.0
    """

    order = -5  # before metrics and the recorder read the prediction

    def __init__(self, alpha: float = 2., beta: float = 1.):
        self.alpha, self.beta = float(alpha), float(beta)
        self.raw_out: torch.Tensor | None = None
        self.out: torch.Tensor | None = None

    def _encoder_activations(self):
        found = None, None
        for module in self.model.modules():
            activations = getattr(module, "last_activations", None)
            if isinstance(activations, tuple):
                found = activations
        return found

    def after_pred(self):
        pred = self.learn.pred
        if isinstance(pred, (tuple, list)):
            if len(pred) != 3:
                raise ValueError(f"RNNRegularizer expected the model to return (logits, raw_outputs, outputs), "
                                 f"got a {type(pred).__name__} of {len(pred)}")
            raw, out = pred[1], pred[2]
            self.raw_out = raw[-1] if isinstance(raw, (list, tuple)) else raw
            self.out = out[-1] if isinstance(out, (list, tuple)) else out
            self.learn.pred = pred[0]
        else:
            self.raw_out, self.out = self._encoder_activations()

    def after_loss(self):
        if not self.training or self.learn.loss_grad is None:
            return
        extra = 0.
        if self.alpha and self.out is not None:
            extra = extra + self.alpha * self.out.float().pow(2).mean()
        if self.beta and self.raw_out is not None and self.raw_out.size(1) > 1:
            extra = extra + self.beta * (self.raw_out[:, 1:] - self.raw_out[:, :-1]).float().pow(2).mean()
        if isinstance(extra, torch.Tensor):
            self.learn.loss_grad = self.learn.loss_grad + extra  # the recorded loss stays the plain loss
        self.raw_out = self.out = None
