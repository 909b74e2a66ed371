"""Learners for text: ``TextLearner``, ``language_model_learner``, ``text_classifier_learner``.

ULMFiT in three steps: fine-tune a language model on the corpus, save its encoder, and train a
classifier that starts from that encoder.

>>> learn = language_model_learner(dls_lm, AWD_LSTM, pretrained=False)       # doctest: +SKIP
>>> learn.fit_one_cycle(1, 2e-2); learn.save_encoder("finetuned")             # doctest: +SKIP
>>> clas = text_classifier_learner(dls, AWD_LSTM, pretrained=False)           # doctest: +SKIP
>>> clas.load_encoder("finetuned").fit_one_cycle(1, 2e-2)                     # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path as PlainPath

import torch
from torch import nn

from fastlearn.checkpoint import atomic_write_bytes
from fastlearn.config import get_config
from fastlearn.learner import Learner, learner_kwargs
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.metrics import Perplexity, accuracy
from fastlearn.registry import register_code
from fastlearn.text.callbacks import ModelResetter, RNNRegularizer
from fastlearn.text.rules import PAD, UNK, detokenize
from fastlearn.text.data import text_transforms
from fastlearn.text.hf_data import HFTextDataBunch
from fastlearn.text.hf_model import is_transformer_name, transformer_classifier_learner
from fastlearn.text.models.awdlstm import AWD_LSTM
from fastlearn.text.models.core import (SentenceEncoder, awd_lstm_clas_split, awd_lstm_lm_split, get_language_model,
                                        get_text_classifier, resolve_text_arch)


def encoder_of(model: nn.Module) -> nn.Module:
    """The AWD-LSTM inside a language model (``model[0]``) or a classifier (``model[0].module``).

    >>> encoder_of(get_language_model(AWD_LSTM, 16, config=dict(emb_sz=8, n_hid=8, n_layers=1))).emb_sz
    8
    """
    model = getattr(model, "_orig_mod", model)
    first = model[0]
    return first.module if isinstance(first, SentenceEncoder) else first


class TextLearner(Learner):
    """A ``Learner`` for recurrent text models: adds ``ModelResetter`` and
    ``RNNRegularizer(alpha, beta)``, and ``save_encoder`` / ``load_encoder``; for a language
    model ``predict(text, n_words)`` continues the text. Every other argument is ``Learner``'s.

    >>> learn = TextLearner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy)   # doctest: +SKIP
    """

    def __init__(self, dls, model: nn.Module, alpha: float = 2., beta: float = 1., cbs=None,
                 moms: Sequence[float] = (0.8, 0.7, 0.8), **learner_args):
        extra = [ModelResetter(), RNNRegularizer(alpha=alpha, beta=beta)]
        cbs = extra + ([] if cbs is None else list(cbs) if isinstance(cbs, (list, tuple)) else [cbs])
        super().__init__(dls, model, cbs=cbs, moms=moms, **learner_kwargs("TextLearner", learner_args))

    def default_lr_mult(self, epochs: int) -> float:
        """``fine_tune``'s ``lr_mult`` for a recurrent text model: fastai's 100 (the rule for
        pretrained image bodies, ``Learner.default_lr_mult``, was measured on those only)."""
        return 100.0

    def _encoder_file(self, name: str) -> PlainPath:
        return PlainPath(self.path) / self.model_dir / f"{name}.pth"

    def save_encoder(self, name: str) -> PlainPath:
        """Save the encoder's weights (not the decoder or head) to ``path/model_dir/name.pth``.

        >>> learn.save_encoder("finetuned")   # doctest: +SKIP
        """
        import io
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in encoder_of(self.model).state_dict().items()}, buffer)
        file = self._encoder_file(name)
        atomic_write_bytes(file, buffer.getvalue())
        return file

    def load_encoder(self, name: str, device: torch.device | str | None = None) -> "TextLearner":
        """Load weights saved by ``save_encoder`` into this model's encoder, then ``freeze()``
        (only the head trains until ``freeze_to`` / ``unfreeze``); returns the learner.

        >>> learn = learn.load_encoder("finetuned")   # doctest: +SKIP
        """
        file = self._encoder_file(name)
        if not file.is_file():
            raise FileNotFoundError(f"no encoder at {file}; save one with lm_learn.save_encoder({name!r}) using "
                                    "the same path and model_dir")
        state = torch.load(file, map_location=device or self.device, weights_only=True)
        encoder = encoder_of(self.model)
        mine = encoder.encoder.weight.shape
        theirs = state.get("encoder.weight", torch.empty(0)).shape
        if tuple(mine) != tuple(theirs):
            raise ValueError(f"the encoder in {file} has embeddings of shape {tuple(theirs)}, this model "
                             f"{tuple(mine)}: the vocab or emb_sz differ. Build the classifier's data with the "
                             "language model's vocab (text_vocab=dls_lm.vocab) and the same config")
        encoder.load_state_dict(state)
        self.freeze()
        return self

    @property
    def is_lm(self) -> bool:
        """Whether the data are language-model loaders."""
        return bool(getattr(self.dls, "is_lm", False))

    def predict(self, item, n_words: int = 1, no_unk: bool = True, temperature: float = 1.,
                min_p: float | None = None, with_input: bool = False):
        """Classifier: ``(label, label_index, probabilities)`` for one text. Language model: the
        text continued by ``n_words`` tokens sampled at ``temperature`` (``no_unk`` never samples
        ``xxunk``; ``min_p`` drops tokens less likely than it), as readable text.

        >>> learn.predict("The food was", n_words=5, temperature=0.75)   # doctest: +SKIP
        'The food was great and the price'
        """
        if not self.is_lm:
            return super().predict(item, with_input=with_input)
        if not isinstance(item, str):
            raise TypeError(f"a language model's predict takes the start of a text (a str), got {type(item).__name__}")
        if temperature <= 0:
            raise ValueError(f"temperature={temperature!r}; expected a positive number (lower: more likely words)")
        pipeline = self.dls.train_ds.pipelines[0]
        vocab = self.dls.vocab
        banned = [i for i, tok in enumerate(vocab) if tok == PAD or tok.startswith("xxfake") or (no_unk and tok == UNK)]
        ids = pipeline(item).to(self.device)
        model = self.model
        was_training = model.training
        model.eval()
        new_ids: list[int] = []
        try:
            with torch.no_grad():
                model.reset()
                logits = model(ids[None])[0, -1]
                for _ in range(n_words):
                    probs = torch.softmax(logits.float() / temperature, dim=-1)
                    probs[banned] = 0.
                    if min_p is not None:
                        probs[probs < min_p] = 0.
                    if probs.sum() <= 0:
                        break
                    token = int(torch.multinomial(probs, 1))
                    new_ids.append(token)
                    logits = model(torch.tensor([[token]], device=self.device))[0, -1]
        finally:
            model.reset()
            model.train(was_training)
        return detokenize([vocab[i] for i in new_ids], start=item)

    def predict_batch(self, items, with_input: bool = False, bs: int | None = None, n_words: int = 1,
                      no_unk: bool = True, temperature: float = 1., min_p: float | None = None) -> list:
        """Classifier: one ``(label, label_index, probabilities)`` per text, as :meth:`predict`
        gives. Language model: each text continued by ``n_words`` tokens, as :meth:`predict`
        called on each in turn gives (the same random draws, in order).

        >>> learn.predict_batch(["The food was", "The service"], n_words=3)   # doctest: +SKIP
        ['The food was great and cheap', 'The service was slow .']
        """
        if not self.is_lm:
            return super().predict_batch(items, with_input=with_input, bs=bs)
        return [self.predict(item, n_words=n_words, no_unk=no_unk, temperature=temperature, min_p=min_p)
                for item in items]


register_code("learner", TextLearner)  # export files may name it (fastlearn.registry)


def _pretrained_files(arch: type, pretrained_fnames: Sequence[str] | None) -> tuple[PlainPath, PlainPath]:
    if pretrained_fnames is not None:
        weights, vocab = (PlainPath(p) for p in pretrained_fnames)
    else:
        folder = get_config().path("storage") / "pretrained" / "wt103-fwd"
        weights, vocab = PlainPath(folder) / "lstm_fwd.pth", PlainPath(folder) / "lstm_fwd_vocab.json"
    missing = [str(p) for p in (weights, vocab) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"pretrained=True needs {arch.__name__} weights pretrained on WikiText-103, and {missing} do not exist. "
            "They cannot be downloaded here: put the language model's state dict at "
            f"{weights} and its vocab (a JSON list of tokens) at {vocab}, or pass "
            "pretrained_fnames=(weights_file, vocab_file), or pass pretrained=False to train from scratch")
    return weights, vocab


def match_embeddings(state: dict, old_vocab: Sequence[str], new_vocab: Sequence[str]) -> dict:
    """Re-order the embedding and decoder rows of a language model's ``state`` from ``old_vocab``
    to ``new_vocab``; new tokens get the mean row.

    >>> state = {"0.encoder.weight": torch.tensor([[1.], [3.]])}
    >>> match_embeddings(state, ["a", "b"], ["b", "c"])["0.encoder.weight"].tolist()
    [[3.0], [2.0]]
    """
    index = {tok: i for i, tok in enumerate(old_vocab)}
    rows = [index.get(tok, -1) for tok in new_vocab]
    result = dict(state)
    for key, value in state.items():
        if value.shape[:1] == (len(old_vocab),) and ("encoder" in key or "decoder" in key):
            mean = value.float().mean(0).to(value.dtype)
            result[key] = torch.stack([value[r] if r >= 0 else mean for r in rows])
    return result


def _refuse_texts_without_words(train, vocab: Sequence[str]) -> None:
    """Training texts that hold only special tokens (empty or blank texts: each is its ``xxbos``)
    would teach a language model to repeat them, at an accuracy near 1: a ValueError instead."""
    docs = [d for d in getattr(train, "docs", []) if len(d)]
    if not docs:
        return
    special = torch.tensor([str(token).startswith("xx") and token != UNK for token in vocab])  # xxunk: a rare word
    if any(bool((~special[doc]).any()) for doc in docs):
        return
    found = sorted({str(vocab[int(i)]) for doc in docs for i in doc.unique()})
    raise ValueError(
        f"the {len(docs)} training texts of this language model hold no words, only the special tokens {found}: "
        "they are empty or blank, so the model would learn to repeat them and report an accuracy near 1. "
        "Check that text_col names the column with the texts, or that the files are not empty")


def _load_pretrained(model: nn.Module, arch: type, pretrained_fnames, vocab: Sequence[str], encoder_only: bool):
    weights, vocab_file = _pretrained_files(arch, pretrained_fnames)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = match_embeddings(state, json.loads(vocab_file.read_text(encoding="utf-8")), vocab)
    if encoder_only:
        state = {k[2:]: v for k, v in state.items() if k.startswith("0.")}
        encoder_of(model).load_state_dict(state)
    else:
        model.load_state_dict(state)


def language_model_learner(dls, arch: type | str = AWD_LSTM, config: dict | None = None, drop_mult: float = 1.,
                           backwards: bool = False, pretrained: bool = True,
                           pretrained_fnames: Sequence[str] | None = None, loss_func: Callable | None = None,
                           metrics=None, moms: Sequence[float] = (0.8, 0.7, 0.8), alpha: float = 2.,
                           beta: float = 1., **learner_args) -> TextLearner:
    """A ``TextLearner`` training ``get_language_model(arch, len(dls.vocab), config, drop_mult)``
    on language-model loaders; metrics default to ``[accuracy, Perplexity()]``. Every other
    argument (``cbs``, ``lr``, ``wd``, ``path``, ``precision``, ... : any of ``Learner``'s) goes to
    ``Learner`` unchanged.

    ``pretrained=True`` loads WikiText-103 weights from the storage folder (or
    ``pretrained_fnames``) and freezes all but the embeddings and decoder; without those files
    it raises ``FileNotFoundError`` saying where to put them. ``pretrained=False`` starts from
    scratch.

    >>> learn = language_model_learner(dls_lm, AWD_LSTM, drop_mult=0.3, pretrained=False)   # doctest: +SKIP
    """
    arch = resolve_text_arch(arch)
    if not getattr(dls, "is_lm", False):
        raise ValueError("language_model_learner needs language-model loaders; build them with is_lm=True "
                         "(TextDataLoaders.from_folder(path, is_lm=True) or TextBlock(..., is_lm=True))")
    if backwards:
        raise ValueError("backwards=True is not supported; train a forward language model (backwards=False)")
    vocab = dls.vocab
    _refuse_texts_without_words(dls.train, vocab)
    model = get_language_model(arch, len(vocab), config=config, drop_mult=drop_mult)
    if pretrained:
        _load_pretrained(model, arch, pretrained_fnames, vocab, encoder_only=False)
    learner_args = {"splitter": awd_lstm_lm_split, **learner_args}
    learn = TextLearner(dls, model, alpha=alpha, beta=beta, loss_func=loss_func or CrossEntropyLossFlat(),
                        metrics=[accuracy, Perplexity()] if metrics is None else metrics, moms=moms,
                        **learner_kwargs("language_model_learner", learner_args))
    learn.model_spec = {"builder": "fastlearn.text.models.core.get_language_model",
                        "args": {"arch": arch.__name__, "vocab_sz": len(vocab), "config": config,
                                 "drop_mult": drop_mult}}
    if pretrained:
        learn.freeze()
    return learn


def text_classifier_learner(dls, arch: type | str | os.PathLike = AWD_LSTM, seq_len: int = 72,
                            config: dict | None = None, backwards: bool = False, pretrained: bool = True,
                            drop_mult: float = 0.5, n_out: int | None = None, lin_ftrs: Sequence[int] | None = None,
                            ps: Sequence[float] | float | None = None, max_len: int | None = 72 * 20,
                            y_range: Sequence[float] | None = None, pretrained_fnames: Sequence[str] | None = None,
                            moms: Sequence[float] | None = None, alpha: float = 2., beta: float = 1.,
                            **learner_args) -> Learner:
    """A ``TextLearner`` training ``get_text_classifier(arch, ...)`` on classifier loaders, or, when
    ``arch`` names a pretrained transformer (``"all-MiniLM-L6-v2"``, a model folder, a cached hub
    name), a ``TransformerLearner`` fine-tuning it (see
    :func:`fastlearn.text.hf_model.transformer_classifier_learner`; ``ps`` is then its head's
    dropout, 0.1 by default, and ``moms`` default to ``Learner``'s).

    The usual start is a fine-tuned language model's encoder: build the data with
    ``text_vocab=dls_lm.vocab``, then ``learn.load_encoder("finetuned")``. ``pretrained=True``
    loads WikiText-103 encoder weights (see ``language_model_learner``); ``pretrained=False``
    starts from scratch. ``learn.model_spec`` describes the model for ``export``. Every other
    argument (``loss_func``, ``metrics``, ``cbs``, ``lr``, ``precision``, ... : any of ``Learner``'s)
    goes to ``Learner`` unchanged.

    >>> learn = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, metrics=accuracy, pretrained=False)  # doctest: +SKIP
    >>> learn = text_classifier_learner(dls_hf, "all-MiniLM-L6-v2", metrics=accuracy)                      # doctest: +SKIP
    """
    if is_transformer_name(arch) or isinstance(dls, HFTextDataBunch):
        if not is_transformer_name(arch):
            raise ValueError(f"these loaders hold the token ids of {dls.tokenizer_name!r}; pass that model as the "
                             f"architecture: text_classifier_learner(dls, {dls.tokenizer_name!r})")
        unused = {name: value for name, value in (("config", config), ("lin_ftrs", lin_ftrs), ("y_range", y_range),
                                                  ("pretrained_fnames", pretrained_fnames)) if value is not None}
        if unused or backwards:
            raise ValueError(f"{sorted(unused) or ['backwards']} are options of the AWD-LSTM classifier; a "
                             f"pretrained transformer ({os.fspath(arch)!r}) does not take them")
        head_p = 0.1 if ps is None else float(ps if isinstance(ps, (int, float)) else list(ps)[-1])
        if moms is not None:
            learner_args["moms"] = moms
        return transformer_classifier_learner(dls, arch, n_out=n_out, ps=head_p, pretrained=pretrained,
                                              **learner_args)
    arch = resolve_text_arch(arch)
    moms = (0.8, 0.7, 0.8) if moms is None else moms
    if getattr(dls, "is_lm", False):
        raise ValueError("text_classifier_learner got language-model loaders; build classifier loaders "
                         "(is_lm=False, with labels)")
    if backwards:
        raise ValueError("backwards=True is not supported; pass backwards=False")
    vocab = dls.vocab
    text_vocab = vocab[0] if isinstance(vocab, (list, tuple)) and len(vocab) == 2 and \
        isinstance(vocab[0], (list, tuple)) else vocab
    if n_out is None:
        n_out = getattr(dls, "c", None)
        if not n_out:
            raise ValueError("text_classifier_learner could not infer n_out from dls.c; pass n_out=")
    pad_idx = text_transforms(dls.train_ds)[1].pad_idx if hasattr(dls.train_ds, "pipelines") else 1
    model = get_text_classifier(arch, len(text_vocab), n_out, seq_len=seq_len, config=config, drop_mult=drop_mult,
                                lin_ftrs=lin_ftrs, ps=ps, pad_idx=pad_idx, max_len=max_len, y_range=y_range)
    if pretrained:
        _load_pretrained(model, arch, pretrained_fnames, text_vocab, encoder_only=True)
    learner_args = {"splitter": awd_lstm_clas_split, **learner_args}
    learn = TextLearner(dls, model, alpha=alpha, beta=beta, moms=moms,
                        **learner_kwargs("text_classifier_learner", learner_args))
    learn.model_spec = {"builder": "fastlearn.text.models.core.get_text_classifier",
                        "args": {"arch": arch.__name__, "vocab_sz": len(text_vocab), "n_class": n_out,
                                 "seq_len": seq_len, "config": config, "drop_mult": drop_mult,
                                 "lin_ftrs": None if lin_ftrs is None else list(lin_ftrs),
                                 "ps": None if ps is None else list(ps), "pad_idx": pad_idx, "max_len": max_len,
                                 "y_range": None if y_range is None else list(y_range)}}
    if pretrained:
        learn.freeze()
    return learn
