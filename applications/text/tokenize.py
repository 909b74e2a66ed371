"""Tokenization: special tokens, text rules, ``WordTokenizer``, ``SubwordTokenizer`` and ``Tokenizer``.

Texts are tokenized a batch at a time: the rules are compiled regular expressions run on each
text, and the word splitter runs one regular expression over a whole batch joined together.
Large corpora are split into chunks and, with ``n_workers > 1``, tokenized in a process pool.

>>> tok = Tokenizer()
>>> tok("I LOVE this. It is sooooo good!")
['xxbos', 'xxmaj', 'i', 'xxup', 'love', 'this', '.', 'xxmaj', 'it', 'is', 's', 'xxrep', '5', 'o', 'good', '!']
>>> detokenize(tok("I LOVE this. It is sooooo good!"))
'I LOVE this. It is s ooooo good!'
"""
from __future__ import annotations

import html
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path as PlainPath

import pandas as pd

from fastlearn.data.getters import get_text_files
from fastlearn.data.transforms import Transform, register_transform
from fastlearn.registry import code_from_name, dotted_path

UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ = (
    "xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj")
SPECIAL_TOKENS: list[str] = [UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ]
"""The special tokens, first in every vocab in this order (so ``xxunk`` is 0 and ``xxpad`` is 1)."""

# --- rules: str -> str, run in order on every text -------------------------------------------------

_RE_BR = re.compile(r"<\s*br\s*/?>", re.IGNORECASE)
_RE_SPEC = re.compile(r"([/#\\])")
_RE_SPACES = re.compile(r" {2,}")
_RE_REP = re.compile(r"(\S)(\1{3,})")
_RE_WREP = re.compile(r"(?:(?<=\s)|^)(\w+)\b((?:\s+\1\b){3,})")
_RE_ALL_CAPS = re.compile(r"\b([A-Z][A-Z']*[A-Z])\b")
_RE_MAJ = re.compile(r"\b([A-Z][a-z0-9']*)\b")


def fix_html(text: str) -> str:
    """Unescape HTML entities and turn ``<br />`` into a newline.

    >>> fix_html("Tasty&amp;cheap<br />Buy")
    'Tasty&cheap\\nBuy'
    """
    return html.unescape(_RE_BR.sub("\n", text.replace("\\n", "\n")))


def replace_rep(text: str) -> str:
    """A character repeated 4+ times becomes ``xxrep <n> <c>``.

    >>> replace_rep("cooool")
    'c xxrep 4 o l'
    """
    return _RE_REP.sub(lambda m: f" {TK_REP} {len(m.group(0))} {m.group(1)} ", text)


def replace_wrep(text: str) -> str:
    """A word repeated 4+ times becomes ``xxwrep <n> <word>``.

    >>> replace_wrep("so so so so good")
    ' xxwrep 4 so good'
    """
    return _RE_WREP.sub(lambda m: f" {TK_WREP} {len(m.group(0).split())} {m.group(1)}", text)


def spec_add_spaces(text: str) -> str:
    """Spaces around ``/``, ``#`` and ``\\``.

    >>> spec_add_spaces("a/b#c")
    'a / b # c'
    """
    return _RE_SPEC.sub(r" \1 ", text)


def rm_useless_spaces(text: str) -> str:
    """Runs of spaces become one space.

    >>> rm_useless_spaces("a   b")
    'a b'
    """
    return _RE_SPACES.sub(" ", text)


def replace_all_caps(text: str) -> str:
    """An all-capital word (2+ letters) becomes ``xxup <word in lower case>``.

    >>> replace_all_caps("I LOVE it")
    'I xxup love it'
    """
    return _RE_ALL_CAPS.sub(lambda m: f"{TK_UP} {m.group(1).lower()}", text)


def replace_maj(text: str) -> str:
    """A capitalised word becomes ``xxmaj <word in lower case>``.

    >>> replace_maj("Emma was Happy")
    'xxmaj emma was xxmaj happy'
    """
    return _RE_MAJ.sub(lambda m: f"{TK_MAJ} {m.group(1).lower()}", text)


def lowercase(text: str) -> str:
    """Everything in lower case (the capitals are already marked by the rules before).

    >>> lowercase("ABC")
    'abc'
    """
    return text.lower()


default_rules: list[Callable[[str], str]] = [fix_html, replace_rep, replace_wrep, spec_add_spaces,
                                             rm_useless_spaces, replace_all_caps, replace_maj, lowercase]
"""The rules a ``Tokenizer`` runs by default, in order (fastai's ``defaults.text_proc_rules``)."""
text_proc_rules = default_rules
RULES: dict[str, Callable[[str], str]] = {f.__name__: f for f in default_rules}


def describe_rules(rules: Sequence[Callable]) -> list[str]:
    """Rules as JSON: the name of a built-in rule, else the dotted path of an importable function.

    >>> describe_rules([fix_html, lowercase])
    ['fix_html', 'lowercase']
    """
    names = []
    for rule in rules:
        if RULES.get(getattr(rule, "__name__", None)) is rule:
            names.append(rule.__name__)
            continue
        path = dotted_path(rule)
        if path is None:
            raise ValueError(f"the tokenizer rule {rule!r} has no importable name, so an export could not "
                             "rebuild the tokenizer; define it at the top level of a module (not a lambda)")
        names.append(path)
    return names


def rules_from_names(names: Sequence[str]) -> list[Callable[[str], str]]:
    """The inverse of :func:`describe_rules`.

    >>> rules_from_names(["lowercase"])[0]("A")
    'a'
    """
    return [RULES[name] if name in RULES else code_from_name(name, "rule") for name in names]


# --- word splitting ------------------------------------------------------------------------------

_SEPARATOR = "\ue000"  # a private-use character: neither a word character nor a space
_RE_WORDS = re.compile(r"""
      \w+(?=n't\b)                 # "do" of "don't"
    | n't\b                        # and its "n't"
    | '(?:s|re|ve|ll|d|m)\b        # clitics: 's 're 've 'll 'd 'm
    | \d+(?:[.,]\d+)*              # numbers: 3.5, 1,000
    | \w+(?:-\w+)*                 # words, hyphenated words
    | \S                           # any other character: punctuation, symbols
""", re.VERBOSE | re.IGNORECASE)


class WordTokenizer:
    """Splits texts into words, numbers, clitics (``n't``, ``'s``) and punctuation with one regular
    expression over a whole batch of texts. Called on a list of texts, returns a list of token lists.

    >>> WordTokenizer()(["Don't stop, it's 3.5 stars!"])
    [['Do', "n't", 'stop', ',', 'it', "'s", '3.5', 'stars', '!']]
    """

    def __init__(self, lang: str = "en"):
        self.lang = lang

    def __call__(self, texts: Iterable[str]) -> list[list[str]]:
        texts = list(texts)
        if not texts:
            return []
        joined = f" {_SEPARATOR} ".join(t.replace(_SEPARATOR, " ") for t in texts)
        result: list[list[str]] = [[]]
        for token in _RE_WORDS.findall(joined):
            if token == _SEPARATOR:
                result.append([])
            else:
                result[-1].append(token)
        return result


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

def _tokenize_chunk(args: tuple) -> list[list[str]]:
    tok, rules, add_bos, texts = args
    for rule in rules:
        texts = [rule(t) for t in texts]
    tokens = tok(texts)
    return [[BOS] + t for t in tokens] if add_bos else tokens


def _read(path: str | os.PathLike) -> str:
    return PlainPath(path).read_text(encoding="utf-8")


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
        if len(self.text_cols) == 1:
            return df[self.text_cols[0]].astype(str).tolist()
        joined = pd.Series([""] * len(df), index=df.index)
        for n, col in enumerate(self.text_cols, 1):
            joined = joined + f"{FLD} {n} " + df[col].astype(str) + " "
        return joined.str.rstrip().tolist()

    def tokenize(self, texts: Iterable[str | os.PathLike]) -> list[list[str]]:
        """Tokenize a whole corpus (texts or ``.txt`` paths), keeping its order.

        >>> Tokenizer(add_bos=False).tokenize(["a b", "C"])
        [['a', 'b'], ['xxmaj', 'c']]
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
        return _read(path)

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


# --- back to readable text -----------------------------------------------------------------------

_NO_SPACE_BEFORE = {".", ",", "!", "?", ";", ":", ")", "]", "}", "%", "n't", "'s", "'re", "'ve", "'ll", "'d", "'m"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "/"}


def decode_spec_tokens(tokens: Sequence[str]) -> list[str]:
    """Undo the rules' special tokens: ``xxmaj w`` → ``W``, ``xxup w`` → ``W`` in capitals,
    ``xxrep n c`` → ``c`` n times, ``xxwrep n w`` → ``w`` n times; ``xxbos``/``xxpad``... dropped.

    >>> decode_spec_tokens(["xxbos", "xxmaj", "emma", "xxup", "ok", "xxwrep", "3", "no"])
    ['Emma', 'OK', 'no', 'no', 'no']
    """
    out: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t in (TK_MAJ, TK_UP) and i + 1 < n:
            nxt = tokens[i + 1]
            out.append(nxt.upper() if t == TK_UP else nxt[:1].upper() + nxt[1:])
            i += 2
        elif t in (TK_REP, TK_WREP) and i + 2 < n and tokens[i + 1].isdigit():
            count, what = int(tokens[i + 1]), tokens[i + 2]
            out.extend([what * count] if t == TK_REP else [what] * count)
            i += 3
        elif t in (BOS, EOS, PAD, FLD, TK_MAJ, TK_UP, TK_REP, TK_WREP) or t.startswith("xxfake"):
            i += 1
        else:
            out.append(t)
            i += 1
    return out


def join_words(words: Sequence[str], start: str = "") -> str:
    """Words joined with spaces, except before punctuation and clitics and after opening brackets.

    >>> join_words(["it", "is", "n't", "bad", "."], start="Well,")
    "Well, it isn't bad."
    """
    text = start
    previous = start[-1:] if start else ""
    for word in words:
        glue = "" if (not text or word in _NO_SPACE_BEFORE or previous in _NO_SPACE_AFTER
                      or text.endswith(("\n", " "))) else " "
        text += glue + word
        previous = word
    return text


def detokenize(tokens: Sequence[str], start: str = "") -> str:
    """Readable text from tokens (see :func:`decode_spec_tokens` and :func:`join_words`).

    >>> detokenize(["xxbos", "xxmaj", "she", "smiled", "."])
    'She smiled.'
    """
    return join_words(decode_spec_tokens(tokens), start=start)
