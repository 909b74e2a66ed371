"""Text for pretrained transformers: ``HFTokenizer``, ``HFTextBlock`` and ``HFTextDataBunch``.

The texts are encoded with the model's own Hugging Face tokenizer (the Rust ``tokenizers``
library, the whole corpus in one batched call) and truncated to ``max_len`` tokens. Batches are
padding-aware: the training loader puts texts of similar length together (``SortedDL``) and each
batch is padded only to its longest text, with the tokenizer's pad id, which the model masks.

``TextDataLoaders.from_folder / from_df / from_csv(..., tokenizer="all-MiniLM-L6-v2")`` build
these loaders; a ``DataBlock`` takes ``HFTextBlock.from_pretrained(name)`` as its input block.

>>> dls = TextDataLoaders.from_folder(food_reviews(), valid="test", tokenizer="all-MiniLM-L6-v2")  # doctest: +SKIP
>>> dls.tokenizer_name, dls.vocab                                                                  # doctest: +SKIP
('all-MiniLM-L6-v2', ['great', 'other'])
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import pandas as pd
import torch

from fastlearn.data.blocks import CategoryBlock, TransformBlock, register_block
from fastlearn.data.databunch import DataBunch
from fastlearn.data.datablock import DataBlock
from fastlearn.data.datasets import Datasets
from fastlearn.data.getters import ColReader, get_text_files, parent_label
from fastlearn.data.splitters import ColSplitter, GrandparentSplitter, RandomSplitter
from fastlearn.data.tables import read_csv_file
from fastlearn.data.transforms import Transform, register_transform
from fastlearn.registry import register_code
from fastlearn.text.hf_hub import load_tokenizer, require_transformers
from fastlearn.text.loaders import PadInput, SortedDL, show_table
from fastlearn.text.tokenize import check_texts_present, read_text_file

MAX_LEN = 256
"""Tokens kept per text by default (the start of longer texts): most food reviews fit whole."""


@register_transform
class HFTokenizer(Transform):
    """Text (or a ``.txt`` path) → a LongTensor of a Hugging Face tokenizer's ids, with the
    model's special tokens (``[CLS] ... [SEP]``), cut to ``max_len``; ``decodes`` gives the text
    back (lower-cased for an uncased model). ``tokenizer`` is a ``tokenizers.Tokenizer`` or its
    JSON (what an export stores: data, not code). ``from_pretrained(name)`` reads a model's.

    >>> tok = HFTokenizer.from_pretrained("all-MiniLM-L6-v2", max_len=16)   # doctest: +SKIP
    >>> tok("Great food!").tolist(), tok.decode(tok("Great food!"))          # doctest: +SKIP
    ([101, 2307, 2833, 999, 102], 'great food!')
    """

    output_kind = "text"

    def __init__(self, tokenizer, max_len: int = MAX_LEN, pad_id: int = 0, name: str | None = None,
                 text_cols: Sequence[str] | None = None):
        super().__init__()
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
            raise ValueError(f"max_len={max_len!r}; expected an int >= 2 (tokens kept per text, special "
                             "tokens included)")
        if isinstance(tokenizer, str):
            require_transformers()
            from tokenizers import Tokenizer as RustTokenizer
            try:
                tokenizer = RustTokenizer.from_str(tokenizer)
            except Exception as error:  # noqa: BLE001  (the library raises its own exception type)
                raise ValueError(f"the tokenizer description is not a valid tokenizer.json ({error}); "
                                 "export the model again") from error
        if not hasattr(tokenizer, "encode_batch"):
            raise TypeError(f"tokenizer={tokenizer!r}; expected a Hugging Face tokenizers.Tokenizer (or its "
                            "JSON); use HFTokenizer.from_pretrained(name) for a model's")
        self.tokenizer, self.max_len, self.pad_id, self.model_name = tokenizer, max_len, int(pad_id), name
        self.text_cols = None if text_cols is None else [str(c) for c in text_cols]
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_len)

    @classmethod
    def from_pretrained(cls, name: str | os.PathLike, max_len: int | None = None) -> "HFTokenizer":
        """The tokenizer of a model name or folder (see :func:`fastlearn.text.hf_hub.resolve_pretrained`);
        ``max_len`` defaults to :data:`MAX_LEN`, at most the model's own limit."""
        tokenizer, pad_id, model_max = load_tokenizer(name)
        chosen = min(MAX_LEN, model_max) if max_len is None else max_len
        if chosen > model_max:
            raise ValueError(f"max_len={chosen} is longer than {name!r} reads ({model_max} tokens); pass "
                             f"max_len <= {model_max}")
        return cls(tokenizer, max_len=chosen, pad_id=pad_id, name=os.fspath(name))

    def __repr__(self) -> str:
        return f"HFTokenizer({self.model_name!r}, max_len={self.max_len})"

    def _text(self, x, i: int = 0) -> str:
        if isinstance(x, os.PathLike):
            return read_text_file(x)
        if self.text_cols and (isinstance(x, (pd.Series, dict)) or hasattr(x, "_fields")):  # a table's row
            values = ColReader(self.text_cols)(x)
            return " ".join(str(v) for v in values) if isinstance(values, list) else str(values)
        if isinstance(x, pd.Series) and len(x) == 1:
            x = x.iloc[0]
        if isinstance(x, (pd.Series, dict)):
            raise TypeError(f"text {i} is a table row ({type(x).__name__}) and this HFTokenizer has no text_cols; "
                            "build the loaders with from_df(text_col=...), or pass the texts as strings")
        if not isinstance(x, str):
            raise TypeError(f"text {i} is a {type(x).__name__} ({x!r:.60}); HFTokenizer takes strings or "
                            "paths of .txt files")
        return x

    def encode_all(self, texts: Sequence) -> list[torch.Tensor]:
        """Every text (or ``.txt`` path) to ids in one batched call of the Rust tokenizer.

        >>> [t.shape for t in tok.encode_all(["a b", "c"])]   # doctest: +SKIP
        [torch.Size([4]), torch.Size([3])]
        """
        strings = [self._text(t, i) for i, t in enumerate(texts)]
        return [torch.tensor(e.ids, dtype=torch.long) for e in self.tokenizer.encode_batch(strings)]

    def encodes(self, x):
        if isinstance(x, torch.Tensor):
            return x
        return self.encode_all([x])[0]

    def decodes(self, x) -> str:
        ids = x.tolist() if isinstance(x, torch.Tensor) else list(x)
        return self.tokenizer.decode([i for i in ids if i != self.pad_id], skip_special_tokens=True)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def describe_args(self) -> dict:
        return {"tokenizer": self.tokenizer.to_str(), "max_len": self.max_len, "pad_id": self.pad_id,
                "name": self.model_name, "text_cols": self.text_cols}


@register_block
class HFTextBlock(TransformBlock):
    """Texts (strings, ``.txt`` paths, or DataFrame rows through a getter) as a pretrained
    model's token ids (an :class:`HFTokenizer`). Its loaders are ``SortedDL``s padding with the
    tokenizer's pad id, asked for like ``TextBlock``'s (``loader_settings``), and the whole
    corpus is tokenized once, in one batched call, before they are built.

    >>> block = HFTextBlock.from_pretrained("all-MiniLM-L6-v2", max_len=128)   # doctest: +SKIP
    >>> DataBlock(blocks=(block, CategoryBlock), get_x=ColReader("text"), get_y=ColReader("label"))  # doctest: +SKIP
    """

    kind = "text"

    def __init__(self, tokenizer: HFTokenizer):
        if not isinstance(tokenizer, HFTokenizer):
            raise TypeError(f"HFTextBlock(tokenizer={tokenizer!r}); expected an HFTokenizer "
                            "(HFTextBlock.from_pretrained(name) makes one)")
        self.tokenizer = tokenizer
        super().__init__(type_tfms=[tokenizer], dl_type=SortedDL)

    @classmethod
    def from_pretrained(cls, name: str | os.PathLike, max_len: int | None = None) -> "HFTextBlock":
        """The block for a model name or folder (``"all-MiniLM-L6-v2"``)."""
        return cls(HFTokenizer.from_pretrained(name, max_len=max_len))

    @property
    def dls_type(self) -> type:
        return HFTextDataBunch

    def loader_settings(self, dsets, p: int) -> tuple[type, dict]:
        """Tokenizes every text of part ``p`` in one batched call (ids kept in ``dsets.cache``),
        then asks for ``SortedDL``s padding with the tokenizer's pad id."""
        if p not in dsets.cache and len(dsets.all_items):
            tokenizer = _hf_tokenizer(dsets, p)
            getter = dsets.getters[p]
            items = dsets.all_items
            rows = (items.iloc[i] for i in range(len(items))) if isinstance(items, pd.DataFrame) else items
            texts = [getter(row) if getter is not None else row for row in rows]
            dsets.cache[p] = tokenizer.encode_all(texts)
        return SortedDL, {"before_batch": PadInput(_hf_tokenizer(dsets, p).pad_id)}

    def show(self, value, ax) -> None:
        ax.set_title(str(value)[:60])

    def describe_args(self, pipeline) -> dict:
        return {"tokenizer": self.tokenizer.describe_args()}

    @classmethod
    def from_args(cls, args: dict) -> "HFTextBlock":
        return cls(HFTokenizer.from_args(args["tokenizer"]))


def _hf_tokenizer(dsets, p: int = 0) -> HFTokenizer:
    found = [t for t in dsets.pipelines[p] if isinstance(t, HFTokenizer)]
    if not found:
        raise TypeError(f"part {p} of {dsets!r} is not tokenized by an HFTokenizer; use HFTextBlock")
    return found[0]


class HFTextDataBunch(DataBunch):
    """Loaders of texts for a pretrained transformer: ``vocab`` is the label vocab,
    ``tokenizer`` the :class:`HFTokenizer`, ``show_batch`` a table of texts and labels.
    ``from_folder``, ``from_df`` and ``from_csv`` build one (``TextDataLoaders``'s methods with a
    ``tokenizer=`` name call them).

    >>> dls = HFTextDataBunch.from_df(df, "all-MiniLM-L6-v2", text_col="text", label_col="label")  # doctest: +SKIP
    """

    @property
    def is_lm(self) -> bool:
        return False

    @property
    def tokenizer(self) -> HFTokenizer:
        return _hf_tokenizer(self.train_ds)

    @property
    def tokenizer_name(self) -> str | None:
        """The model name or folder the tokenizer came from."""
        return self.tokenizer.model_name

    def show_batch(self, b=None, max_n: int = 9, nrows: int | None = None, ncols: int | None = None,
                   unique: bool = False, figsize: tuple[float, float] | None = None, trunc_at: int = 150):
        """A table of decoded texts and labels, returned as a DataFrame.

        >>> dls.show_batch(max_n=3)   # doctest: +SKIP
        """
        rows = self.train.decode_batch(self.one_batch() if b is None else b, max_n=max_n)
        columns = ["text"] + ["category" if p == 1 else f"target_{p}" for p in range(1, len(rows[0]) if rows else 1)]
        return show_table(rows, columns, trunc_at)

    @classmethod
    def from_inference_spec(cls, spec: dict, device: torch.device | str | None = "cpu") -> "HFTextDataBunch":
        """Loaders rebuilt from ``inference_spec()``; ``test_dl(texts)`` pads its batches."""
        dls = Datasets.from_inference_spec(spec, device, loaders_cls=cls)
        pad = PadInput(_hf_tokenizer(dls.train_ds).pad_id)
        dls.loaders = [SortedDL(dl.dataset, bs=dl.bs, n_inp=dl.n_inp, kinds=dl.kinds, device=dl.device,
                                before_batch=pad) for dl in dls.loaders]
        for i, dl in enumerate(dls.loaders):
            dl.split_idx = i
        return dls

    @classmethod
    def from_folder(cls, path: str | os.PathLike, tokenizer: str | os.PathLike, train: str = "train",
                    valid: str = "valid", valid_pct: float | None = None, seed: int | None = None,
                    vocab: Sequence | None = None, max_len: int | None = None, bs: int = 32, device=None,
                    num_workers: int | str | None = 0) -> "HFTextDataBunch":
        """Texts in ``path/<train|valid>/<label>/*.txt`` (labels from the parent folder), or a
        random ``valid_pct`` of them; ``vocab`` is the label vocab.

        >>> dls = HFTextDataBunch.from_folder(food_reviews(), "all-MiniLM-L6-v2", valid="test")  # doctest: +SKIP
        """
        if not os.path.isdir(path):
            raise FileNotFoundError(f"TextDataLoaders.from_folder({str(path)!r}): no such folder")
        splitter = GrandparentSplitter(train_name=train, valid_name=valid) if valid_pct is None \
            else RandomSplitter(valid_pct, seed=seed)
        dblock = DataBlock(blocks=(HFTextBlock.from_pretrained(tokenizer, max_len), CategoryBlock(vocab=vocab)),
                           get_items=functools.partial(get_text_files, folders=[train, valid]),
                           splitter=splitter, get_y=parent_label, n_inp=1)
        return dblock.dataloaders(path, path=path, bs=bs, val_bs=2 * bs, seed=seed, device=device,
                                  num_workers=num_workers)

    @classmethod
    def from_df(cls, df: pd.DataFrame, tokenizer: str | os.PathLike, path: str | os.PathLike = ".",
                valid_pct: float = 0.2, seed: int | None = None, text_col: int | str | Sequence = 0,
                label_col: int | str = 1, valid_col: str | None = None, vocab: Sequence | None = None,
                max_len: int | None = None, bs: int = 32, device=None, num_workers: int | str | None = 0,
                missing_targets: str = "raise") -> "HFTextDataBunch":
        """Texts in column ``text_col`` (several are joined by spaces) and labels in ``label_col``;
        the split is the boolean column ``valid_col`` when given, else random.

        >>> dls = HFTextDataBunch.from_df(df, "all-MiniLM-L6-v2", text_col="text", label_col="label")  # doctest: +SKIP
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_df takes a pandas DataFrame, got {type(df).__name__}")
        cols = [text_col] if isinstance(text_col, (int, str)) else list(text_col)
        names = [df.columns[c] if isinstance(c, int) else c for c in cols]
        label = df.columns[label_col] if isinstance(label_col, int) else label_col
        missing = [c for c in names + [label] if c not in df.columns]
        if missing:
            raise ValueError(f"column(s) {missing} not in the DataFrame's columns {list(df.columns)}")
        check_texts_present(df, names)
        splitter = ColSplitter(valid_col) if valid_col is not None else RandomSplitter(valid_pct, seed=seed)
        text = HFTextBlock.from_pretrained(tokenizer, max_len)
        text.tokenizer.text_cols = [str(c) for c in names]  # reads rows itself, so test_dl(df) works after export
        dblock = DataBlock(blocks=(text, CategoryBlock(vocab=vocab)), splitter=splitter, n_inp=1,
                           missing_targets=missing_targets, getters=[None, ColReader(label)])
        return dblock.dataloaders(df.reset_index(drop=True), path=path, bs=bs, val_bs=2 * bs, seed=seed,
                                  device=device, num_workers=num_workers)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, tokenizer: str | os.PathLike, csv_fname: str = "labels.csv",
                 header: str | None = "infer", delimiter: str | None = None, valid_pct: float = 0.2,
                 seed: int | None = None, text_col: int | str | Sequence = 0, label_col: int | str = 1,
                 valid_col: str | None = None, vocab: Sequence | None = None, max_len: int | None = None,
                 bs: int = 32, device=None, missing_targets: str = "raise") -> "HFTextDataBunch":
        """``from_df`` on ``path/csv_fname``.

        >>> dls = HFTextDataBunch.from_csv(path, "all-MiniLM-L6-v2", "texts.csv", valid_col="is_valid")  # doctest: +SKIP
        """
        df = read_csv_file(os.path.join(path, csv_fname), header=header, delimiter=delimiter or ",")
        return cls.from_df(df, tokenizer, path=path, valid_pct=valid_pct, seed=seed, text_col=text_col,
                           label_col=label_col, valid_col=valid_col, vocab=vocab, max_len=max_len, bs=bs,
                           device=device, missing_targets=missing_targets)


register_code("data", HFTextDataBunch)  # export files may name it (fastlearn.registry)
