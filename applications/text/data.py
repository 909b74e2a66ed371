"""Text data: ``TextBlock`` and ``TextDataLoaders``.

The whole corpus is tokenized in one batched pass and numericalized in one pass (the ids are kept
in the ``Datasets``' cache); the vocab is built on the training texts only. A language model gets
``LMDataLoader``s, a classifier ``SortedDL``s.

>>> dls_lm = TextDataLoaders.from_folder(path, valid="test", is_lm=True, bs=32, seq_len=40)  # doctest: +SKIP
>>> dls = TextDataLoaders.from_folder(path, valid="test", text_vocab=dls_lm.vocab)          # doctest: +SKIP
>>> dls.vocab[1]                                                                              # doctest: +SKIP
CategoryMap(['great', 'other'])
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import pandas as pd
import torch

from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock, TransformBlock, register_block
from fastlearn.data.databunch import DataBunch
from fastlearn.data.datasets import Datasets
from fastlearn.data.getters import get_text_files, parent_label
from fastlearn.data.splitters import ColSplitter, GrandparentSplitter, RandomSplitter
from fastlearn.data.tables import read_csv_file
from fastlearn.losses import CrossEntropyLossFlat
from fastlearn.registry import register_code
from fastlearn.text.hf_data import HFTextDataBunch
from fastlearn.text.rules import PAD
from fastlearn.text.tokenize import Tokenizer, check_texts_present
from fastlearn.text.loaders import LMDataLoader, PadInput, SortedDL, results_rows, show_table
from fastlearn.text.vocab import Numericalize


@register_block
class TextBlock(TransformBlock):
    """Texts (strings, ``.txt`` paths or DataFrame rows) as token ids: a ``Tokenizer`` then a
    ``Numericalize``. ``vocab`` reuses a vocab (the language model's, for its classifier);
    otherwise one is built on the training texts (``min_freq``, ``max_vocab``). ``is_lm`` and
    ``seq_len`` choose the loaders: ``LMDataLoader(seq_len=seq_len)`` for a language model, else
    padded ``SortedDL``s; ``DataBlock.dataloaders`` builds them (and a ``TextDataBunch``),
    passing on loader arguments such as ``seq_len``.

    >>> block = TextBlock.from_folder("reviews", is_lm=True)
    >>> block.kind, block.is_lm, block.dl_type.__name__
    ('text', True, 'LMDataLoader')
    """

    kind = "text"

    def __init__(self, tok_tfm: Tokenizer | None = None, vocab: Sequence[str] | None = None, is_lm: bool = False,
                 seq_len: int = 72, min_freq: int = 3, max_vocab: int = 60000):
        self.tokenizer = tok_tfm if tok_tfm is not None else Tokenizer()
        if not isinstance(self.tokenizer, Tokenizer):
            raise TypeError(f"tok_tfm={tok_tfm!r}; expected a Tokenizer (e.g. Tokenizer(WordTokenizer()))")
        self.numericalize = Numericalize(vocab=vocab, min_freq=min_freq, max_vocab=max_vocab)
        super().__init__(type_tfms=[self.tokenizer, self.numericalize], dl_type=LMDataLoader if is_lm else SortedDL,
                         dls_kwargs={"seq_len": seq_len} if is_lm else {})
        self.is_lm, self.seq_len = is_lm, seq_len

    @property
    def dls_type(self) -> type:
        return TextDataBunch

    def loader_settings(self, dsets, p: int) -> tuple[type, dict]:
        """Tokenizes and numericalizes every text of part ``p`` in one pass (see
        :func:`numericalize_datasets`), then asks for ``LMDataLoader(seq_len)`` or a ``SortedDL``
        padding with the vocab's ``xxpad``."""
        if p not in dsets.cache:
            numericalize_datasets(dsets, parts=[p])
        if self.is_lm:
            return LMDataLoader, {"seq_len": self.seq_len}
        return SortedDL, {"before_batch": PadInput(text_transforms(dsets, p)[1].pad_idx)}

    @classmethod
    def from_folder(cls, path: str | os.PathLike | None = None, vocab: Sequence[str] | None = None,
                    is_lm: bool = False, seq_len: int = 72, min_freq: int = 3, max_vocab: int = 60000,
                    tok=None, rules: Sequence[Callable] | None = None, n_workers: int = 1) -> "TextBlock":
        """A block for ``.txt`` files (the items are their paths).

        >>> TextBlock.from_folder("reviews", vocab=["xxunk", "xxpad"]).numericalize.vocab
        ['xxunk', 'xxpad']
        """
        return cls(Tokenizer(tok=tok, rules=rules, n_workers=n_workers), vocab=vocab, is_lm=is_lm,
                   seq_len=seq_len, min_freq=min_freq, max_vocab=max_vocab)

    @classmethod
    def from_df(cls, text_cols: str | int | Sequence[str | int], vocab: Sequence[str] | None = None,
                is_lm: bool = False, seq_len: int = 72, min_freq: int = 3, max_vocab: int = 60000,
                tok=None, rules: Sequence[Callable] | None = None, n_workers: int = 1) -> "TextBlock":
        """A block for DataFrame rows: the text is column ``text_cols`` (several columns are joined,
        each after ``xxfld <n>``).

        >>> TextBlock.from_df("text").tokenizer.text_cols
        ['text']
        """
        return cls(Tokenizer(tok=tok, rules=rules, n_workers=n_workers, text_cols=text_cols), vocab=vocab,
                   is_lm=is_lm, seq_len=seq_len, min_freq=min_freq, max_vocab=max_vocab)

    def show(self, value, ax) -> None:
        ax.set_title(str(value)[:60])

    def readable(self, value) -> str:
        """The decoded tokens without padding, joined by spaces."""
        return " ".join(tok for tok in str(value).split(" ") if tok != PAD)

    def describe_args(self, pipeline) -> dict:
        return {"tokenizer": self.tokenizer.describe_args(), "vocab": list(pipeline.vocab),
                "is_lm": self.is_lm, "seq_len": self.seq_len}

    @classmethod
    def from_args(cls, args: dict) -> "TextBlock":
        return cls(Tokenizer.from_args(args["tokenizer"]), vocab=args["vocab"], is_lm=args.get("is_lm", False),
                   seq_len=args.get("seq_len", 72))


def _text_parts(dsets) -> list[int]:
    return [p for p, block in enumerate(dsets.blocks) if isinstance(block, TextBlock)]


def text_transforms(dsets, p: int = 0) -> tuple[Tokenizer, Numericalize]:
    """The ``Tokenizer`` and ``Numericalize`` of part ``p`` of a Datasets (its own copies).

    >>> tok, num = text_transforms(dls.train_ds)   # doctest: +SKIP
    """
    fs = list(dsets.pipelines[p])
    tokenizers = [t for t in fs if isinstance(t, Tokenizer)]
    nums = [t for t in fs if isinstance(t, Numericalize)]
    if not tokenizers or not nums:
        raise TypeError(f"part {p} of {dsets!r} is not text (its transforms are {fs}); the input should be a TextBlock")
    return tokenizers[0], nums[0]


def numericalize_datasets(dsets, parts: Sequence[int] | None = None) -> None:
    """Tokenize every text of ``dsets`` (its text ``parts``, default all) in one batched pass,
    build the vocab on the training texts (unless given) and numericalize them all; the ids go
    into ``dsets.cache`` so items are not tokenized again one by one."""
    items = dsets.all_items
    for p in _text_parts(dsets) if parts is None else parts:
        tokenizer, num = text_transforms(dsets, p)
        getter = dsets.getters[p]
        if isinstance(items, pd.DataFrame) and getter is None:
            texts = tokenizer.texts_of_frame(items)
        elif getter is None:
            texts = list(items)
        else:
            rows = (items.iloc[i] for i in range(len(items))) if isinstance(items, pd.DataFrame) else items
            texts = [getter(row) for row in rows]
        tokens = tokenizer.tokenize(texts)
        num.setup([tokens[i] for i in dsets.splits[0]])
        dsets.cache[p] = num.encode_all(tokens)


class TextDataBunch(DataBunch):
    """``DataBunch`` for texts (alias ``TextDataLoaders``): ``vocab`` is the text vocab for a
    language model and ``[text_vocab, label_vocab]`` for a classifier; ``show_batch`` returns a
    table of texts; ``from_folder``, ``from_df`` and ``from_csv`` build one.
    """

    @property
    def is_lm(self) -> bool:
        """Whether these are language-model loaders (inputs and targets are token streams)."""
        return isinstance(self.train, LMDataLoader)

    @property
    def loss_func(self):
        """Cross-entropy over the vocab for a language model, else the target block's loss."""
        if self._loss_func is None and self.is_lm:
            return CrossEntropyLossFlat()
        return super().loss_func

    @loss_func.setter
    def loss_func(self, value) -> None:
        self._loss_func = value

    @property
    def vocab(self):
        dataset = self.train_ds
        pipelines = getattr(dataset, "pipelines", [])
        if not pipelines:
            return self._vocab
        text_vocab = pipelines[0].vocab
        if self.is_lm or len(pipelines) <= dataset.n_inp:
            return text_vocab
        return [text_vocab, pipelines[dataset.n_inp].vocab]

    @vocab.setter
    def vocab(self, value) -> None:
        self._vocab = value

    @property
    def c(self) -> int | None:
        if self._c is not None:
            return self._c
        return len(self.vocab) if self.is_lm else super().c

    @c.setter
    def c(self, value: int | None) -> None:
        self._c = value

    def show_batch(self, b=None, max_n: int = 9, nrows: int | None = None, ncols: int | None = None,
                   unique: bool = False, figsize: tuple[float, float] | None = None, trunc_at: int = 150):
        """A table of decoded texts (tokens joined by spaces) and labels, returned as a DataFrame.

        >>> dls.show_batch(max_n=3)   # doctest: +SKIP
        """
        if self.is_lm:
            return self.train.show_batch(b, max_n=max_n, trunc_at=trunc_at)
        batch = self.one_batch() if b is None else b
        dataset = self.train_ds
        pad = text_transforms(dataset)[1].pad_idx
        rows = []
        for i in range(min(max_n, len(batch[0]))):
            ids = batch[0][i].cpu()
            text = dataset.pipelines[0].decode(ids[ids != pad])
            rows.append((text, *[dataset.decode_part(p, part[i].cpu()) for p, part in enumerate(batch) if p]))
        columns = ["text"] + ["category" if p == 1 else f"target_{p}" for p in range(1, len(batch))]
        return show_table(rows, columns, trunc_at)

    def show_results(self, learn, max_n: int = 9, figsize: tuple[float, float] | None = None, ds_idx: int = 1,
                     nrows: int | None = None, dl=None, trunc_at: int = 150) -> pd.DataFrame:
        """A table of texts of ``dl`` (default ``self[ds_idx]``) with their targets and ``learn``'s
        predictions (``text``, ``category``, ``category_pred``; a language model's ``text``, ``text_``
        and ``text_pred``), returned as a DataFrame (``learn.show_results`` calls this).

        >>> learn.show_results(max_n=3)   # doctest: +SKIP
        """
        dl = dl if dl is not None else self[ds_idx]
        rows, columns = results_rows(learn, dl, text_transforms(self.train_ds)[1].pad_idx, max_n=max_n)
        return show_table(rows, columns, trunc_at)

    def inference_spec(self) -> dict:
        """What inference needs; a language model's text block records the loaders' ``seq_len``."""
        spec = super().inference_spec()
        vocab = self.vocab
        spec["vocab"] = None if self.is_lm else [str(v) for v in vocab[1]]
        if self.is_lm:
            spec["inputs"][0]["block"]["args"]["seq_len"] = self.valid.seq_len
        return spec

    @classmethod
    def from_inference_spec(cls, spec: dict, device: torch.device | str | None = "cpu") -> "TextDataBunch":
        """Loaders rebuilt from :meth:`inference_spec`: a classifier's ``test_dl(texts)`` pads its
        batches; a language model's cuts the texts into one stream of rows of ``seq_len`` tokens,
        as the original loaders did (``is_lm`` is True and ``predict`` continues a text)."""
        dls = Datasets.from_inference_spec(spec, device, loaders_cls=cls)
        text_block = dls.train_ds.blocks[0]
        if getattr(text_block, "is_lm", False):
            dls.loaders = [LMDataLoader(dl.dataset, bs=dl.bs, seq_len=text_block.seq_len, device=dl.device)
                           for dl in dls.loaders]
        else:
            pad_idx = text_transforms(dls.train_ds)[1].pad_idx
            dls.loaders = [SortedDL(dl.dataset, bs=dl.bs, n_inp=dl.n_inp, kinds=dl.kinds, device=dl.device,
                                    before_batch=PadInput(pad_idx)) for dl in dls.loaders]
        for i, dl in enumerate(dls.loaders):
            dl.split_idx = i
        return dls

    @classmethod
    def from_dblock(cls, dblock: DataBlock, source, path: str | os.PathLike = ".", is_lm: bool = False,
                    bs: int = 64, seq_len: int = 72, seed: int | None = None, device=None,
                    num_workers: int | str | None = 0) -> "TextDataBunch":
        """Loaders for a DataBlock whose input is a ``TextBlock``.

        >>> dblock = DataBlock(blocks=TextBlock.from_folder(path, is_lm=True), get_items=get_text_files)  # doctest: +SKIP
        >>> dls = TextDataLoaders.from_dblock(dblock, path, is_lm=True)                               # doctest: +SKIP
        """
        text = dblock.blocks[0]
        if not isinstance(text, TextBlock) or text.is_lm != is_lm:
            raise ValueError(f"from_dblock(is_lm={is_lm}) needs a DataBlock whose first block is a TextBlock with "
                             f"is_lm={is_lm}, got {text!r}" + (f" with is_lm={text.is_lm}" if isinstance(text, TextBlock)
                                                              else ""))
        return dblock.dataloaders(source, path=path, bs=bs, val_bs=bs, seed=seed, device=device,
                                  num_workers=num_workers, **({"seq_len": seq_len} if is_lm else {}))

    @classmethod
    def from_folder(cls, path: str | os.PathLike, train: str = "train", valid: str = "valid",
                    valid_pct: float | None = None, seed: int | None = None, vocab: Sequence | None = None,
                    text_vocab: Sequence[str] | None = None, is_lm: bool = False, tok_tfm: Tokenizer | None = None,
                    seq_len: int = 72, min_freq: int = 3, max_vocab: int = 60000, bs: int | None = None,
                    device=None, num_workers: int | str | None = 0, tokenizer: str | os.PathLike | None = None,
                    max_len: int | None = None) -> "TextDataBunch":
        """Texts in ``path/<train|valid>/<label>/*.txt`` (labels from the parent folder); with
        ``valid_pct`` a random split of the files in ``train`` and ``valid``. ``vocab`` is the label
        vocab, ``text_vocab`` the token vocab (pass the language model's ``dls_lm.vocab``).
        ``tokenizer`` names a pretrained transformer (``"all-MiniLM-L6-v2"``, a model folder): its
        own tokenizer encodes the texts, cut to ``max_len`` tokens (an ``HFTextDataBunch``). ``bs``
        defaults to 64 texts per batch, 32 with ``tokenizer``.

        >>> dls = TextDataLoaders.from_folder(food_reviews(), valid="test", bs=32)   # doctest: +SKIP
        >>> dls = TextDataLoaders.from_folder(food_reviews(), valid="test", tokenizer="all-MiniLM-L6-v2")  # doctest: +SKIP
        """
        if tokenizer is not None:
            _check_hf_args(is_lm=is_lm, text_vocab=text_vocab, tok_tfm=tok_tfm)
            return HFTextDataBunch.from_folder(path, tokenizer, train=train, valid=valid, valid_pct=valid_pct,
                                               seed=seed, vocab=vocab, max_len=max_len, bs=bs or 32, device=device,
                                               num_workers=num_workers)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"TextDataLoaders.from_folder({str(path)!r}): no such folder")
        text = TextBlock(tok_tfm, vocab=text_vocab, is_lm=is_lm, seq_len=seq_len, min_freq=min_freq,
                         max_vocab=max_vocab)
        splitter = GrandparentSplitter(train_name=train, valid_name=valid) if valid_pct is None \
            else RandomSplitter(valid_pct, seed=seed)
        folders = [train, valid]
        blocks = (text,) if is_lm else (text, CategoryBlock(vocab=vocab))
        dblock = DataBlock(blocks=blocks, get_items=functools.partial(get_text_files, folders=folders),
                           splitter=splitter, get_y=None if is_lm else parent_label, n_inp=1)
        return cls.from_dblock(dblock, path, path=path, is_lm=is_lm, bs=bs or 64, seq_len=seq_len, seed=seed,
                               device=device, num_workers=num_workers)

    @classmethod
    def from_df(cls, df: pd.DataFrame, path: str | os.PathLike = ".", valid_pct: float = 0.2,
                seed: int | None = None, text_col: int | str | Sequence = 0, label_col: int | str = 1,
                valid_col: str | None = None, is_lm: bool = False, vocab: Sequence | None = None,
                text_vocab: Sequence[str] | None = None, tok_tfm: Tokenizer | None = None, seq_len: int = 72,
                min_freq: int = 3, max_vocab: int = 60000, bs: int | None = None, device=None,
                num_workers: int | str | None = 0, missing_targets: str = "raise",
                tokenizer: str | os.PathLike | None = None, max_len: int | None = None) -> "TextDataBunch":
        """Texts in column ``text_col`` of ``df`` and labels in ``label_col``; the split is the
        boolean column ``valid_col`` when given, else random (``valid_pct``, ``seed``). Rows
        without a label are an error naming them, or left out with ``missing_targets="drop"``.
        ``tokenizer`` names a pretrained transformer whose tokenizer encodes the texts (see
        ``from_folder``).

        >>> dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid")  # doctest: +SKIP
        """
        if tokenizer is not None:
            _check_hf_args(is_lm=is_lm, text_vocab=text_vocab, tok_tfm=tok_tfm)
            return HFTextDataBunch.from_df(df, tokenizer, path=path, valid_pct=valid_pct, seed=seed,
                                           text_col=text_col, label_col=label_col, valid_col=valid_col, vocab=vocab,
                                           max_len=max_len, bs=bs or 32, device=device, num_workers=num_workers,
                                           missing_targets=missing_targets)
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_df takes a pandas DataFrame, got {type(df).__name__}")
        cols = [text_col] if isinstance(text_col, (int, str)) else list(text_col)
        names = [df.columns[c] if isinstance(c, int) else c for c in cols]
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise ValueError(f"text_col {missing} not in the DataFrame's columns {list(df.columns)}")
        check_texts_present(df, names)
        tokenizer = tok_tfm if tok_tfm is not None else Tokenizer()
        tokenizer.text_cols = names
        text = TextBlock(tokenizer, vocab=text_vocab, is_lm=is_lm, seq_len=seq_len, min_freq=min_freq,
                         max_vocab=max_vocab)
        label = None if is_lm else df.columns[label_col] if isinstance(label_col, int) else label_col
        splitter = ColSplitter(valid_col) if valid_col is not None else RandomSplitter(valid_pct, seed=seed)
        blocks = (text,) if is_lm else (text, CategoryBlock(vocab=vocab))
        dblock = DataBlock(blocks=blocks, splitter=splitter, n_inp=1, missing_targets=missing_targets,
                           getters=[None] if is_lm else [None, _ColumnGetter(label)])
        return cls.from_dblock(dblock, df.reset_index(drop=True), path=path, is_lm=is_lm, bs=bs or 64,
                               seq_len=seq_len, seed=seed, device=device, num_workers=num_workers)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, csv_fname: str = "labels.csv", header: str | None = "infer",
                 delimiter: str | None = None, valid_pct: float = 0.2, seed: int | None = None,
                 text_col: int | str | Sequence = 0, label_col: int | str = 1, valid_col: str | None = None,
                 is_lm: bool = False, vocab: Sequence | None = None, text_vocab: Sequence[str] | None = None,
                 seq_len: int = 72, min_freq: int = 3, max_vocab: int = 60000, bs: int | None = None,
                 device=None, missing_targets: str = "raise", tokenizer: str | os.PathLike | None = None,
                 max_len: int | None = None) -> "TextDataBunch":
        """``from_df`` on ``path/csv_fname`` (``tokenizer``: a pretrained transformer's, as there).

        >>> dls = TextDataLoaders.from_csv(path, "texts.csv", text_col="text", label_col="label",
        ...                                valid_col="is_valid")   # doctest: +SKIP
        """
        df = read_csv_file(os.path.join(path, csv_fname), header=header, delimiter=delimiter or ",")
        return cls.from_df(df, path=path, valid_pct=valid_pct, seed=seed, text_col=text_col, label_col=label_col,
                           valid_col=valid_col, is_lm=is_lm, vocab=vocab, text_vocab=text_vocab, seq_len=seq_len,
                           min_freq=min_freq, max_vocab=max_vocab, bs=bs, device=device,
                           missing_targets=missing_targets, tokenizer=tokenizer, max_len=max_len)


def _check_hf_args(is_lm: bool, text_vocab, tok_tfm) -> None:
    given = [name for name, value in (("is_lm", is_lm), ("text_vocab", text_vocab), ("tok_tfm", tok_tfm)) if value]
    if given:
        raise ValueError(f"{given} do not go with tokenizer=: a pretrained transformer's loaders classify texts "
                         "with the model's own tokenizer and vocab; leave them out, or leave out tokenizer= for "
                         "the AWD-LSTM path")


class _ColumnGetter:
    """``row[col]`` (a class, so it pickles)."""

    def __init__(self, col):
        self.col = col

    def __call__(self, row):
        return row[self.col]


TextDataLoaders = TextDataBunch


register_code("data", TextDataBunch)  # export files may name it (fastlearn.registry)
