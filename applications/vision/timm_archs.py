"""timm architectures for ``vision_learner``: any model name timm knows (``"resnet10t"``,
``"convnext_atto"``, ``"vit_tiny_patch16_224.augreg_in21k"``) when ``timm`` is installed (the
``timm`` extra: ``pip install 'fastlearn[timm]'``).

The body is timm's own feature extractor: the model with its classifier removed
(``reset_classifier(0)``), run through ``forward_features``; a feature map (CNNs) goes to the
fastlearn head as it is, a token sequence (vision transformers) through timm's own pooling
(``forward_head(pre_logits=True)``) first. ``num_features`` is timm's, normalization the
pretrained configuration's mean and std. Pretrained weights come through timm (the Hugging Face
hub cache); an export records the name and is rebuilt from it with ``pretrained=False``.

>>> learn = vision_learner(dls, "resnet10t", pretrained=False)   # doctest: +SKIP
"""
from __future__ import annotations

import torch
from torch import nn

from fastlearn.foundation import import_optional
from fastlearn.registry import is_timm_model_name


class TimmArch:
    """A timm model name as an architecture constructor: ``TimmArch("resnet10t")(pretrained=False)``.

    >>> TimmArch("resnet10t").__name__   # doctest: +SKIP
    'resnet10t'
    """

    def __init__(self, name: str):
        self.timm = import_optional("timm", "timm", f"the timm architecture {name!r}")
        if not self.timm.is_model(name):
            raise ValueError(f"{name!r} is not a timm model name; see timm.list_models()")
        self.name = self.__name__ = name

    def __call__(self, pretrained: bool = False) -> nn.Module:
        if not pretrained:
            return self.timm.create_model(self.name, pretrained=False)
        try:
            return self.timm.create_model(self.name, pretrained=True)
        except Exception as error:  # no network and nothing cached, or a damaged download
            raise FileNotFoundError(
                f"the pretrained weights of the timm model {self.name!r} are not in the Hugging Face hub cache "
                f"and could not be downloaded ({type(error).__name__}: {str(error)[:200]}); download them once "
                "with a network (they are cached under HF_HOME), or pass pretrained=False") from error

    @property
    def stats(self) -> tuple[list[float], list[float]]:
        """The mean and std its pretrained weights expect (ImageNet's when timm has none)."""
        cfg = self.timm.get_pretrained_cfg(self.name)
        mean, std = getattr(cfg, "mean", None), getattr(cfg, "std", None)
        if mean is None or std is None:
            return [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        return list(mean), list(std)

    def __eq__(self, other) -> bool:
        return isinstance(other, TimmArch) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("timm", self.name))

    def __repr__(self) -> str:
        return f"TimmArch({self.name!r})"


class TimmBody(nn.Module):
    """A timm model without its classifier, giving a feature map ``(batch, num_features, h, w)``:
    ``forward_features``, with token sequences pooled by timm's head (to ``h = w = 1``).

    >>> body = TimmBody(timm.create_model("resnet10t"))   # doctest: +SKIP
    >>> body(torch.zeros(1, 3, 64, 64)).shape             # doctest: +SKIP
    torch.Size([1, 512, 2, 2])
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        model.reset_classifier(0)
        self.model = model
        self.channels_last = getattr(model, "output_fmt", "NCHW") == "NHWC"
        self.num_features: int = self._features_given()

    def _features_given(self) -> int:
        """timm's ``num_features`` for a feature map; for tokens, what its pooling gives (its
        ``head_hidden_size``). Which one, a batch of one at the model's input size tells (on the
        ``meta`` device when the model is there: shapes only)."""
        size = tuple(getattr(self.model, "pretrained_cfg", {}).get("input_size", (3, 224, 224)))
        param = next(self.model.parameters())
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                features = self.model.forward_features(torch.zeros(1, *size, device=param.device, dtype=param.dtype))
        finally:
            self.model.train(was_training)
        if features.ndim == 4:
            return int(self.model.num_features)
        return int(getattr(self.model, "head_hidden_size", None) or self.model.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.model.forward_features(x)
        if features.ndim == 4:
            return features.permute(0, 3, 1, 2) if self.channels_last else features
        pooled = self.model.forward_head(features, pre_logits=True)  # tokens: the model's own pooling
        return pooled.reshape(*pooled.shape[:2], 1, 1)


def timm_body(model: nn.Module) -> TimmBody:
    """The cut of a timm model: :class:`TimmBody`."""
    return TimmBody(model)


def resolve_timm(name: str) -> TimmArch | None:
    """A :class:`TimmArch` for a name timm knows, else None (also when timm is not installed)."""
    return TimmArch(name) if is_timm_model_name(name) else None
