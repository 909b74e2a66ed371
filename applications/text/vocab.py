"""Tokens to numbers: ``make_vocab`` and ``Numericalize``.

A vocab is a plain list of tokens: the special tokens first (``xxunk`` = 0, ``xxpad`` = 1), then
the tokens seen at least ``min_freq`` times, most frequent first, at most ``max_vocab`` of them,
padded with ``xxfake`` tokens to a multiple of 8 (faster matrix products on GPUs).

>>> num = Numericalize(min_freq=1)
>>> num.setup([["xxbos", "the", "cat"], ["xxbos", "the", "dog"]])
>>> num.vocab[:12], len(num.vocab)
(['xxunk', 'xxpad', 'xxbos', 'xxeos', 'xxfld', 'xxrep', 'xxwrep', 'xxup', 'xxmaj', 'the', 'cat', 'dog'], 16)
>>> num(["the", "bird"]).tolist(), num.decode(num(["the", "bird"]))
([9, 0], ['the', 'xxunk'])
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from fastlearn.data.transforms import Transform, register_transform
from fastlearn.text.rules import SPECIAL_TOKENS


def make_vocab(counter: Counter, min_freq: int = 3, max_vocab: int = 60000,
               special_toks: Sequence[str] | None = None) -> list[str]:
    """The vocab of a token counter (see the module docstring).

    >>> make_vocab(Counter({"a": 5, "b": 1}), min_freq=2)[-8:]
    ['xxmaj', 'a', 'xxfake', 'xxfake', 'xxfake', 'xxfake', 'xxfake', 'xxfake']
    """
    if not isinstance(min_freq, int) or min_freq < 1:
        raise ValueError(f"min_freq={min_freq!r}; expected an int >= 1")
    special = list(SPECIAL_TOKENS if special_toks is None else special_toks)
    frequent = [tok for tok, count in counter.most_common() if count >= min_freq and tok not in special]
    vocab = special + frequent[:max(0, max_vocab - len(special))]
    return vocab + ["xxfake"] * (-len(vocab) % 8)


def numericalize_all(token_lists: Sequence[Sequence[str]], o2i: dict[str, int], unk: int = 0) -> list[torch.Tensor]:
    """Every token list to a LongTensor at once: the tokens are flattened, mapped through ``o2i``
    in one pass (unknown tokens → ``unk``), and split back.

    >>> [t.tolist() for t in numericalize_all([["a", "b"], ["c"]], {"a": 1, "b": 2})]
    [[1, 2], [0]]
    """
    lengths = [len(t) for t in token_lists]
    flat = pd.Series([tok for tokens in token_lists for tok in tokens], dtype=object)
    ids = flat.map(o2i).fillna(unk).to_numpy(dtype=np.int64) if len(flat) else np.zeros(0, dtype=np.int64)
    return list(torch.from_numpy(np.array(ids, dtype=np.int64)).split(lengths))


@register_transform
class Numericalize(Transform):
    """Tokens → a LongTensor of vocab indices; ``decodes`` gives the tokens back.

    ``setup(token_lists)`` builds the vocab from a whole training corpus (skipped when ``vocab``
    is given); a vocab passed in is used as it is.
    """

    output_kind = "text"

    def __init__(self, vocab: Sequence[str] | None = None, min_freq: int = 3, max_vocab: int = 60000,
                 special_toks: Sequence[str] | None = None):
        super().__init__()
        self.min_freq, self.max_vocab = min_freq, max_vocab
        self.special_toks = list(SPECIAL_TOKENS if special_toks is None else special_toks)
        self.vocab: list[str] | None = None
        self.o2i: dict[str, int] = {}
        if vocab is not None:
            self.set_vocab(vocab)

    def set_vocab(self, vocab: Sequence[str]) -> None:
        """Use ``vocab`` (a list of tokens; duplicates such as ``xxfake`` keep their first index)."""
        if isinstance(vocab, str) or not all(isinstance(v, str) for v in vocab):
            raise TypeError(f"vocab should be a list of token strings, got {type(vocab).__name__} "
                            f"{list(vocab)[:5] if not isinstance(vocab, str) else vocab!r:.60}")
        self.vocab = list(vocab)
        self.o2i = {}
        for i, tok in enumerate(self.vocab):
            self.o2i.setdefault(tok, i)

    def setup(self, items: Iterable[Sequence[str]] | None = None) -> None:
        """Build the vocab from token lists (the training corpus), unless one was given."""
        if self.vocab is not None or items is None:
            return
        counter = Counter(tok for tokens in items for tok in tokens)
        self.set_vocab(make_vocab(counter, self.min_freq, self.max_vocab, self.special_toks))

    @property
    def pad_idx(self) -> int:
        return self.o2i.get("xxpad", 1)

    def _check_ready(self) -> None:
        if self.vocab is None:
            raise ValueError("Numericalize has no vocab yet: call num.setup(token_lists) on the training "
                             "tokens, pass vocab=..., or build the data with TextDataLoaders / TextBlock")

    def encode_all(self, token_lists: Sequence[Sequence[str]]) -> list[torch.Tensor]:
        """Numericalize a whole corpus in one pass (see :func:`numericalize_all`)."""
        self._check_ready()
        return numericalize_all(token_lists, self.o2i, self.o2i.get("xxunk", 0))

    def encodes(self, x):
        self._check_ready()
        if isinstance(x, torch.Tensor):
            return x
        return numericalize_all([list(x)], self.o2i, self.o2i.get("xxunk", 0))[0]

    def decodes(self, x) -> list[str]:
        ids = x.tolist() if isinstance(x, torch.Tensor) else list(x)
        return [self.vocab[i] for i in ids]

    def describe_args(self) -> dict:
        self._check_ready()
        return {"vocab": list(self.vocab)}
