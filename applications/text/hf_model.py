"""A pretrained transformer encoder as a text classifier: ``TransformerClassifier``,
``transformer_split`` and ``transformer_classifier_learner``.

The model is the encoder Hugging Face ``transformers.AutoModel`` loads (BERT, MiniLM, RoBERTa,
DistilBERT...), its last hidden states averaged over the real tokens (the padding is masked), then
a classification head. Its parameter groups are the embeddings, each encoder layer, and the head,
so ``freeze`` trains only the head, ``freeze_to(-3)`` the last two layers and the head, and
``lr=slice(lo, hi)`` spreads the rates from the embeddings to the head.

An export stores the encoder's configuration (JSON) and weights, not its code: ``load_learner``
rebuilds the model with ``AutoModel.from_config``, which only builds the model types
``transformers`` itself defines.

>>> dls = TextDataLoaders.from_folder(path, valid="test", tokenizer="all-MiniLM-L6-v2")   # doctest: +SKIP
>>> learn = text_classifier_learner(dls, "all-MiniLM-L6-v2", metrics=accuracy)           # doctest: +SKIP
>>> learn.fine_tune(2)                                                                    # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence

import torch
from torch import nn

from fastlearn.learner import Learner, learner_kwargs
from fastlearn.registry import register_code
from fastlearn.text.hf_data import HFTextDataBunch
from fastlearn.text.hf_hub import load_encoder, require_transformers

FINE_TUNE = {"base_lr": 2e-4, "freeze_epochs": 0, "lr_mult": 1}
"""``fine_tune``'s defaults for a transformer: every group at ``base_lr / 2`` from the first step, no
frozen epoch (a CNN's ``2e-3`` and ``lr_mult=100`` are too high for the top layers, and a frozen epoch
of the head alone added time and no accuracy; ``docs/text_transformers.md``)."""


class TransformerClassifier(nn.Module):
    """``encoder`` (a ``transformers`` model returning ``last_hidden_state``) → the mean of the
    hidden states of the tokens that are not ``pad_id`` → dropout ``ps`` → a linear layer to
    ``n_class`` logits. The input is a batch of token ids, ``(bs, seq_len)``.

    >>> model = get_transformer_classifier(TINY_CONFIG, n_class=2)   # doctest: +SKIP
    >>> model(torch.tensor([[101, 2307, 102, 0]])).shape            # doctest: +SKIP
    torch.Size([1, 2])
    """

    def __init__(self, encoder: nn.Module, n_class: int, pad_id: int = 0, ps: float = 0.1):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # the [CLS] pooler is not used: the hidden states are averaged
        self.encoder, self.pad_id = encoder, pad_id
        hidden = encoder.config.hidden_size
        self.head = nn.Sequential(nn.Dropout(ps), nn.Linear(hidden, n_class))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = input_ids != self.pad_id
        hidden = self.encoder(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.head(pooled)


def _clean_config(config: dict) -> dict:
    """A ``transformers`` config as plain JSON values, without the fields that name code."""
    plain = json.loads(json.dumps(config, default=str))
    for key in ("auto_map", "_name_or_path", "architectures", "transformers_version", "id2label", "label2id"):
        plain.pop(key, None)
    return plain


def get_transformer_classifier(config: dict, n_class: int, pad_id: int = 0, ps: float = 0.1) -> TransformerClassifier:
    """A :class:`TransformerClassifier` whose encoder is built (untrained) from a ``transformers``
    config dict: only model types ``transformers`` defines (``config["model_type"]``), never code
    named by the config. ``load_learner`` calls this, then loads the exported weights.

    >>> cfg = dict(model_type="bert", vocab_size=50, hidden_size=8, num_hidden_layers=1,
    ...            num_attention_heads=2, intermediate_size=16)
    >>> get_transformer_classifier(cfg, n_class=3)(torch.tensor([[2, 5, 7, 0]])).shape   # doctest: +SKIP
    torch.Size([1, 3])
    """
    transformers = require_transformers()
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ValueError(f"config={str(config)[:100]}; expected a transformers config dict with a model_type")
    known = transformers.CONFIG_MAPPING
    if config["model_type"] not in known:
        raise ValueError(f"model_type {config['model_type']!r} is not one transformers "
                         f"{transformers.__version__} defines; upgrade transformers to the version the model "
                         "was exported with")
    args = _clean_config(config)
    model_type = args.pop("model_type")
    hf_config = transformers.AutoConfig.for_model(model_type, **args)
    encoder = transformers.AutoModel.from_config(hf_config)
    return TransformerClassifier(encoder, n_class=n_class, pad_id=pad_id, ps=ps)


def _layer_list(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's list of transformer layers (its largest ``ModuleList``)."""
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        raise ValueError(f"{type(encoder).__name__} has no list of layers to split into groups; pass "
                         "splitter=trainable_params to train it as one group")
    return max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))


def transformer_split(model: TransformerClassifier) -> list[list[nn.Parameter]]:
    """Parameter groups: the embeddings, each encoder layer, then the head (with any encoder
    parameters after the layers, such as a final norm).

    >>> groups = transformer_split(get_transformer_classifier(TINY_CONFIG, 2))   # doctest: +SKIP
    >>> len(groups)                                                              # doctest: +SKIP
    3
    """
    model = getattr(model, "_orig_mod", model)
    layers = _layer_list(model.encoder)
    in_layers = {id(p) for p in layers.parameters()}
    rest = [(name, p) for name, p in model.encoder.named_parameters() if id(p) not in in_layers]
    embeddings = [p for name, p in rest if "embed" in name]
    after = [p for name, p in rest if "embed" not in name]
    return [embeddings] + [list(layer.parameters()) for layer in layers] + [after + list(model.head.parameters())]


class TransformerLearner(Learner):
    """A ``Learner`` for a pretrained transformer classifier; ``fine_tune``'s defaults are
    :data:`FINE_TUNE`. Every argument is ``Learner``'s.

    >>> learn = TransformerLearner(dls, model, splitter=transformer_split)   # doctest: +SKIP
    """

    def fine_tune(self, epochs: int, base_lr: float = FINE_TUNE["base_lr"],
                  freeze_epochs: int = FINE_TUNE["freeze_epochs"], lr_mult: float = FINE_TUNE["lr_mult"],
                  pct_start: float = 0.3, div: float = 5.0, wd: float | None = None, cbs=None) -> None:
        """``Learner.fine_tune`` with a transformer's defaults: every group with
        ``slice(base_lr/2/lr_mult, base_lr/2)`` from the start (``freeze_epochs=1`` trains the head
        alone first, as a CNN's ``fine_tune`` does).

        >>> learn.fine_tune(2)   # doctest: +SKIP
        """
        super().fine_tune(epochs, base_lr=base_lr, freeze_epochs=freeze_epochs, lr_mult=lr_mult,
                          pct_start=pct_start, div=div, wd=wd, cbs=cbs)


def is_transformer_name(arch) -> bool:
    """Whether ``text_classifier_learner`` should read ``arch`` as a pretrained transformer (a
    name or folder rather than ``AWD_LSTM``).

    >>> is_transformer_name("all-MiniLM-L6-v2"), is_transformer_name("AWD_LSTM")
    (True, False)
    """
    return isinstance(arch, (str, os.PathLike)) and os.fspath(arch) != "AWD_LSTM"


def transformer_classifier_learner(dls, arch: str | os.PathLike, n_out: int | None = None, ps: float = 0.1,
                                   pretrained: bool = True, **learner_args) -> TransformerLearner:
    """A :class:`TransformerLearner` fine-tuning the pretrained encoder ``arch`` (a name such as
    ``"all-MiniLM-L6-v2"``, a folder, or a cached hub name) with a new head, frozen (only the head
    trains until ``unfreeze``). ``pretrained=False`` builds the same network untrained.
    ``dls`` are loaders from the same model's tokenizer (``tokenizer=arch``). ``train_bn`` defaults
    to False: while frozen, the encoder's LayerNorms are frozen too, so the frozen epoch runs no
    backward pass through the encoder. Every other argument (``metrics``, ``cbs``, ``lr``,
    ``precision``, ... : any of ``Learner``'s) goes to ``Learner``.

    >>> learn = transformer_classifier_learner(dls, "all-MiniLM-L6-v2", metrics=accuracy)   # doctest: +SKIP
    """
    if not isinstance(dls, HFTextDataBunch):
        raise ValueError(f"a pretrained transformer reads its own tokenizer's ids; these loaders "
                         f"({type(dls).__name__}) were not made with one. Build them with "
                         f"TextDataLoaders.from_folder(path, tokenizer={os.fspath(arch)!r}) (or from_df / "
                         "from_csv with tokenizer=)")
    if n_out is None:
        n_out = dls.c
        if not n_out:
            raise ValueError("could not infer n_out from dls.c; pass n_out=")
    encoder = load_encoder(arch)
    config = _clean_config(encoder.config.to_dict())
    tokenizer = dls.tokenizer
    if tokenizer.vocab_size > config.get("vocab_size", tokenizer.vocab_size):
        raise ValueError(f"the loaders' tokenizer ({tokenizer.model_name!r}) has {tokenizer.vocab_size} tokens but "
                         f"{os.fspath(arch)!r} embeds only {config['vocab_size']}; tokenize with the model's own "
                         f"tokenizer (tokenizer={os.fspath(arch)!r})")
    if pretrained:
        model = TransformerClassifier(encoder, n_class=n_out, pad_id=tokenizer.pad_id, ps=ps)
    else:
        model = get_transformer_classifier(config, n_class=n_out, pad_id=tokenizer.pad_id, ps=ps)
    # train_bn=False: while frozen, no LayerNorm of the encoder trains, so the frozen epoch needs no backward
    # pass through the encoder (about three times faster on a CPU); the head learns from fixed features
    learner_args = {"splitter": transformer_split, "train_bn": False, **learner_args}
    learn = TransformerLearner(dls, model, **learner_kwargs("text_classifier_learner", learner_args))
    learn.model_spec = {"builder": "fastlearn.text.hf_model.get_transformer_classifier",
                        "args": {"config": config, "n_class": n_out, "pad_id": tokenizer.pad_id, "ps": ps}}
    if pretrained:
        learn.freeze()
    return learn


register_code("model", get_transformer_classifier)  # export files may name it (fastlearn.registry)
register_code("learner", TransformerLearner)
