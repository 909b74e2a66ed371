"""``Tokenizer`` (rules, then words, then ``xxbos``) and ``SubwordTokenizer``.

The rules (:mod:`fastlearn.text.rules`) are compiled regular expressions run on each text; the
word splitter (:mod:`fastlearn.text.words`) caches the split of every distinct chunk, so most of
a corpus is dictionary look-ups. Large corpora are split into chunks of texts and, with
``n_workers > 1``, tokenized in a process pool. The special tokens, the rules and
``detokenize`` are importable from here too.

>>> tok = Tokenizer()
>>> tok("I LOVE this. It is sooooo good!")
['xxbos', 'i', 'xxup', 'love', 'this', '.', 'xxmaj', 'it', 'is', 's', 'xxrep', '5', 'o', 'good', '!']
>>> detokenize(tok("I LOVE this. It is sooooo good!"))
'I LOVE this. It is sooooo good!'
"""
from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path as PlainPath

import pandas as pd

from fastlearn.data.getters import get_text_files
from fastlearn.data.transforms import Transform, register_transform
from fastlearn.text.rules import (BOS, EOS, FLD, PAD, RULES, SPECIAL_TOKENS, TK_MAJ, TK_REP, TK_UP,  # noqa: F401
                                  TK_WREP, UNK, decode_spec_tokens, default_rules, describe_rules, detokenize,
                                  fix_html, join_words, lowercase, replace_all_caps, replace_maj, replace_rep,
                                  replace_wrep, rm_useless_spaces, rules_from_names, spec_add_spaces,
                                  text_proc_rules)
from fastlearn.text.words import WordTokenizer


class SubwordTokenizer:
    """Subword units learnt with SentencePiece (optional: ``pip install sentencepiece``).

    ``setup(texts)`` trains a model of ``vocab_sz`` pieces; then it is called like
    ``WordTokenizer``.

    >>> tok = SubwordTokenizer(vocab_sz=1000)   # doctest: +SKIP
    >>> tok.setup(texts)                         # doctest: +SKIP
    """

    def __init__(self, lang: str = "en", vocab_sz: int | None = None, cache_dir: str | os.PathLike = "tmp",
                 model_type: str = "unigram", char_coverage: float = 0.99997):
        try:
            import sentencepiece
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                "SubwordTokenizer needs the optional package sentencepiece, which is not installed; "
                "install it with `pip install sentencepiece`, or use WordTokenizer()") from error
        self.spm = sentencepiece
        self.lang, self.vocab_sz, self.cache_dir = lang, vocab_sz, PlainPath(cache_dir)
        self.model_type, self.char_coverage = model_type, char_coverage
        self.processor = None

    def setup(self, texts: Iterable[str]) -> None:
        """Train the SentencePiece model on ``texts``."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        raw = self.cache_dir / "texts.out"
        raw.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
        prefix = self.cache_dir / "spm"
        vocab_sz = self.vocab_sz or 2000
        self.spm.SentencePieceTrainer.train(
            input=str(raw), model_prefix=str(prefix), vocab_size=vocab_sz, model_type=self.model_type,
            character_coverage=self.char_coverage, unk_id=len(SPECIAL_TOKENS), pad_id=-1, bos_id=-1,
            eos_id=-1, user_defined_symbols=",".join(SPECIAL_TOKENS), hard_vocab_limit=False)
        self.processor = self.spm.SentencePieceProcessor(model_file=str(prefix) + ".model")

    def __call__(self, texts: Iterable[str]) -> list[list[str]]:
        texts = list(texts)
        if self.processor is None:
            self.setup(texts)
        return [self.processor.encode(t, out_type=str) for t in texts]


# --- Tokenizer -----------------------------------------------------------------------------------

def _no_spaces(tokens: list[str]) -> list[str]:
    """Spaces inside whitespace tokens written as ``▁``, so tokens joined by spaces split back."""
    return [t.replace(" ", "▁") if " " in t else t for t in tokens]


def _tokenize_chunk(args: tuple) -> list[list[str]]:
    tok, rules, add_bos, texts = args
    for rule in rules:
        texts = [rule(t) for t in texts]
    tokens = [_no_spaces(t) for t in tok(texts)]
    return [[BOS] + t for t in tokens] if add_bos else tokens


def read_text_file(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file; another encoding is a ValueError naming the file and the byte."""
    try:
        return PlainPath(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"text file {os.fspath(path)} is not UTF-8: byte {error.object[error.start:error.start + 1]!r} at "
            f"position {error.start} ({error.reason}); convert it to UTF-8 (for a Latin-1 file: "
            "iconv -f latin1 -t utf-8), or remove it from the data") from None


def check_texts_present(df, text_cols) -> None:
    """A ValueError naming the rows (index labels) of ``df`` whose text column holds NaN or None
    (pandas would pass on the number NaN, or the text 'nan'), and the two fixes.

    >>> import pandas as pd
    >>> check_texts_present(pd.DataFrame({"text": ["a", ""]}), ["text"])
    """
    for col in text_cols:
        empty = df[col].isna().to_numpy()
        if empty.any():
            rows = df.index[empty].tolist()
            raise ValueError(
                f"text column {col!r} has no text (NaN or None) in {len(rows)} row(s) {rows[:8]}"
                f"{'...' if len(rows) > 8 else ''}; fill them (df[{col!r}] = df[{col!r}].fillna('') makes them "
                f"empty texts) or drop those rows (df.dropna(subset=[{col!r}]))")


@register_transform
class Tokenizer(Transform):
    """Text (or a ``.txt`` file's path) → list of tokens: the ``rules`` (default
    :data:`default_rules`), then ``tok`` (default :class:`WordTokenizer`), then ``xxbos`` in front.

    ``tokenize(texts)`` does a whole corpus at once, in chunks of ``chunk_size`` texts, in
    ``n_workers`` processes when the corpus is larger than one chunk. ``decodes`` joins tokens
    with spaces (``detokenize`` gives readable text).

    >>> Tokenizer()("Hello World")
    ['xxbos', 'xxmaj', 'hello', 'xxmaj', 'world']
    """

    output_kind = "text"

    def __init__(self, tok=None, rules: Sequence[Callable] | None = None, add_bos: bool = True,
                 n_workers: int = 1, chunk_size: int = 5000, path: str | os.PathLike | None = None,
                 source: str | os.PathLike | None = None, text_cols: str | int | Sequence | None = None):
        super().__init__()
        self.tok = tok if tok is not None else WordTokenizer()
        self.rules = list(default_rules if rules is None else rules)
        for rule in self.rules:
            if not callable(rule):
                raise TypeError(f"Tokenizer(rules=...) got {rule!r}; rules are functions str -> str")
        self.add_bos, self.n_workers, self.chunk_size = add_bos, n_workers, chunk_size
        self.path = PlainPath(path) if path is not None else None       # folder of tokenized files
        self.source = PlainPath(source) if source is not None else None  # the folder they came from
        self.counter: Counter | None = None
        self.text_cols = None if text_cols is None else (
            [text_cols] if isinstance(text_cols, (str, int)) else list(text_cols))

    def texts_of_frame(self, df) -> list[str]:
        """The texts of a DataFrame's ``text_cols`` (several are joined, each after ``xxfld <n>``).

        >>> import pandas as pd
        >>> Tokenizer(text_cols=["a", "b"]).texts_of_frame(pd.DataFrame({"a": ["x"], "b": ["y"]}))
        ['xxfld 1 x xxfld 2 y']
        """
        if not self.text_cols:
            raise ValueError("this Tokenizer has no text_cols, so it cannot read DataFrame rows; use "
                             "TextBlock.from_df(text_cols) or pass get_x=ColReader('text')")
        missing = [c for c in self.text_cols if c not in df.columns]
        if missing:
            raise ValueError(f"text column(s) {missing} not in the DataFrame's columns {list(df.columns)}")
        check_texts_present(df, self.text_cols)
        if len(self.text_cols) == 1:
            return df[self.text_cols[0]].astype(str).tolist()
        joined = pd.Series([""] * len(df), index=df.index)
        for n, col in enumerate(self.text_cols, 1):
            joined = joined + f"{FLD} {n} " + df[col].astype(str) + " "
        return joined.str.rstrip().tolist()

    def tokenize(self, texts: Iterable[str | os.PathLike]) -> list[list[str]]:
        """Tokenize a whole corpus (texts or ``.txt`` paths), keeping its order.

        >>> Tokenizer(add_bos=False).tokenize(["a b", "C"])
        [['a', 'b'], ['c']]
        """
        texts = [self._cached(t) if isinstance(t, os.PathLike) else t for t in texts]
        done = {i: t for i, t in enumerate(texts) if isinstance(t, list)}
        if done:
            rest = self.tokenize([t for t in texts if not isinstance(t, list)])
            fresh = iter(rest)
            return [done[i] if i in done else next(fresh) for i in range(len(texts))]
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is a {type(t).__name__} ({t!r:.60}); Tokenizer takes strings or "
                                "paths of .txt files")
        chunks = [(self.tok, self.rules, self.add_bos, texts[i:i + self.chunk_size])
                  for i in range(0, len(texts), self.chunk_size)]
        if self.n_workers > 1 and len(chunks) > 1:
            with ProcessPoolExecutor(self.n_workers) as pool:
                parts = list(pool.map(_tokenize_chunk, chunks))
        else:
            parts = [_tokenize_chunk(c) for c in chunks]
        return [tokens for part in parts for tokens in part]

    def encodes(self, x):
        if isinstance(x, (list, tuple)):
            return list(x)  # already tokens
        if isinstance(x, pd.Series):
            return self.tokenize(self.texts_of_frame(x.to_frame().T))[0]
        return self.tokenize([x])[0]

    def _cached(self, path: os.PathLike) -> str | list[str]:
        """The tokens ``from_folder`` saved for ``path``, else the file's text."""
        if self.path is not None and self.source is not None:
            try:
                cached = self.path / PlainPath(path).resolve().relative_to(self.source.resolve())
            except ValueError:
                cached = None
            if cached is not None and cached.is_file():
                return cached.read_text(encoding="utf-8").split(" ")
        return read_text_file(path)

    def decodes(self, x) -> str:
        return " ".join(x)

    def describe_args(self) -> dict:
        if not isinstance(self.tok, WordTokenizer):
            raise TypeError(f"a Tokenizer with {type(self.tok).__name__} cannot be exported; use WordTokenizer")
        return {"rules": describe_rules(self.rules), "add_bos": self.add_bos, "text_cols": self.text_cols}

    @classmethod
    def from_args(cls, args: dict) -> "Tokenizer":
        return cls(rules=rules_from_names(args.get("rules", list(RULES))), add_bos=args.get("add_bos", True),
                   text_cols=args.get("text_cols"))

    @classmethod
    def from_folder(cls, path: str | os.PathLike, tok=None, rules: Sequence[Callable] | None = None,
                    output_dir: str | os.PathLike | None = None, n_workers: int = 1,
                    folders: Iterable[str] | None = None) -> "Tokenizer":
        """Tokenize every ``.txt`` file under ``path`` into ``output_dir`` (default ``<path>_tok``),
        same layout, tokens separated by spaces, plus ``counter.json`` (token counts); a file is
        tokenized again only when its source is newer. Returns a Tokenizer that reads them back.

        >>> tkn = Tokenizer.from_folder(path)       # doctest: +SKIP
        >>> tkn.counter.most_common(3)              # doctest: +SKIP
        """
        source = PlainPath(path)
        if not source.is_dir():
            raise FileNotFoundError(f"Tokenizer.from_folder({str(path)!r}): no such folder; pass the folder of .txt files")
        out = PlainPath(output_dir) if output_dir is not None else source.parent / f"{source.name}_tok"
        tokenizer = cls(tok=tok, rules=rules, n_workers=n_workers, path=out, source=source)
        files = [PlainPath(f) for f in get_text_files(source, folders=folders)]
        if not files:
            raise ValueError(f"Tokenizer.from_folder: no .txt files under {source}")
        targets = [out / f.relative_to(source) for f in files]
        stale = [i for i, (f, t) in enumerate(zip(files, targets))
                 if not t.is_file() or t.stat().st_mtime < f.stat().st_mtime]
        for i, tokens in zip(stale, tokenizer.tokenize([files[i] for i in stale])):
            targets[i].parent.mkdir(parents=True, exist_ok=True)
            targets[i].write_text(" ".join(tokens), encoding="utf-8")
        counter_file = out / "counter.json"
        if stale or not counter_file.is_file():
            counter = Counter(tok for t in targets for tok in t.read_text(encoding="utf-8").split(" "))
            counter_file.write_text(json.dumps(counter), encoding="utf-8")
        tokenizer.counter = Counter(json.loads(counter_file.read_text(encoding="utf-8")))
        return tokenizer
