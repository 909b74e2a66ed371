"""Special tokens and the text rules a ``Tokenizer`` runs before splitting words, and their inverse.

The rules are fastai's (``defaults.text_proc_rules``), run in order on the raw text:
``fix_html``, ``replace_rep``, ``replace_wrep``, ``spec_add_spaces``, ``rm_useless_spaces``,
``replace_all_caps``, ``replace_maj``, ``lowercase``. What they lowercase or shorten is marked
with special tokens, so ``detokenize`` can give readable text back.

>>> text = "I LOVE it. Sooooo good, good, good!"
>>> for rule in default_rules: text = rule(text)
>>> text
'i xxup love it. s xxrep 5 o good, good, good!'
>>> detokenize(text.split())
'I LOVE it. sooooo good, good, good!'
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from fastlearn.registry import code_from_name, dotted_path

UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ = (
    "xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj")
SPECIAL_TOKENS: list[str] = [UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ]
"""The special tokens, first in every vocab in this order (so ``xxunk`` is 0 and ``xxpad`` is 1)."""

_RE_BR = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_HTML_LEFTOVERS = [("#39;", "'"), ("amp;", "&"), ("#146;", "'"), ("nbsp;", " "), ("#36;", "$"), ("quot;", "'"),
                   ('\\"', '"'), ("<unk>", UNK), (" @.@ ", "."), (" @-@ ", "-"), (" @,@ ", ","), ("...", " …")]
_RE_REP = re.compile(r"(\S)(\1{2,})")
_RE_WREP = re.compile(r"(?:(?<=\s)|^)(\w+)((?:\s+\1){2,})(?=\W|$)")
_RE_SPEC = re.compile(r"([/#\\])")
_RE_SPACES = re.compile(" {2,}")
_RE_ALL_CAPS = re.compile(r"(?:(?<=\s)|^)([A-Z]+[^a-z\s]*)(?=\s|$)")
_RE_MAJ = re.compile(r"(?:(?<=\s)|^)([A-Z][^A-Z\s]*)(?=\s|$)")


def fix_html(text: str) -> str:
    """HTML entities decoded, ``<br />`` to a newline, ``\\n`` written out to a newline, and what
    scraped corpora leave behind: entities that lost their ``&`` (``quot;``, ``#39;``...), WikiText's
    `` @.@ `` and ``<unk>``; ``...`` becomes `` …``.

    >>> fix_html("Tasty &amp; cheap<br />Buy it... now")
    'Tasty & cheap\\nBuy it … now'
    """
    text = html.unescape(_RE_BR.sub("\n", text.replace("\\n", "\n"))).replace("\xa0", " ")
    for old, new in _HTML_LEFTOVERS:
        text = text.replace(old, new)
    return text


def replace_rep(text: str) -> str:
    """A character repeated 3 or more times becomes ``xxrep <n> <c>``.

    >>> replace_rep("cooool")
    'c xxrep 4 o l'
    """
    return _RE_REP.sub(lambda m: f" {TK_REP} {len(m.group(0))} {m.group(1)} ", text)


def replace_wrep(text: str) -> str:
    """A word repeated 3 or more times in a row becomes ``xxwrep <n> <word>``.

    >>> replace_wrep("so so so good")
    ' xxwrep 3 so  good'
    """
    return _RE_WREP.sub(lambda m: f" {TK_WREP} {len(m.group(2).split()) + 1} {m.group(1)} ", text)


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
    """A word in capitals (between spaces) becomes ``xxup <word in lower case>``; a single
    capital letter is only lowered.

    >>> replace_all_caps("I LOVE IT.")
    'i xxup love xxup it.'
    """
    return _RE_ALL_CAPS.sub(lambda m: f"{TK_UP} {m.group(1).lower()}" if len(m.group(1)) > 1
                            else m.group(1).lower(), text)


def replace_maj(text: str) -> str:
    """A capitalised word (between spaces) becomes ``xxmaj <word in lower case>``; a single
    capital letter is only lowered. Words with a capital inside (``PreProcessor``) are left.

    >>> replace_maj("Emma was Happy, not McHappy")
    'xxmaj emma was xxmaj happy, not McHappy'
    """
    return _RE_MAJ.sub(lambda m: f"{TK_MAJ} {m.group(1).lower()}" if len(m.group(1)) > 1
                       else m.group(1).lower(), text)


def lowercase(text: str) -> str:
    """Everything in lower case, without spaces at either end (capitals are already marked).

    >>> lowercase(" ABC ")
    'abc'
    """
    return text.lower().strip()


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


# --- back to readable text -----------------------------------------------------------------

_NO_SPACE_BEFORE = {".", ",", "!", "?", ";", ":", ")", "]", "}", "%", "…", "n't", "'s", "'re", "'ve", "'ll", "'d",
                    "'m", "n’t", "’s", "’re", "’ve", "’ll", "’d", "’m", "nt"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "/"}
_CLOSING = set(".,!?;:)]}%…")


def decode_spec_tokens(tokens: Sequence[str]) -> list[str]:
    """Undo the rules' special tokens: ``xxmaj w`` → ``W``, ``xxup w`` → ``W`` in capitals,
    ``xxrep n c`` → ``c`` n times, ``xxwrep n w`` → ``w`` n times; ``xxbos``, ``xxpad``... are
    dropped. The rules do not record whether a repetition stood alone, so a repeated letter or
    digit is joined to the word before it when that ends in one (``s xxrep 5 o`` is ``sooooo``,
    which is how repetitions mostly appear); inside a word (``goooood``) the rest of the word
    comes back after a space.

    >>> decode_spec_tokens(["xxbos", "xxmaj", "emma", "xxup", "ok", "s", "xxrep", "5", "o", "xxwrep", "3", "no"])
    ['Emma', 'OK', 'sooooo', 'no', 'no', 'no']
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
            if t == TK_WREP:
                out.extend([what] * count)
            elif out and out[-1][-1:].isalnum() and what.isalnum():
                out[-1] += what * count
            else:
                out.append(what * count)
            i += 3
        elif t in (BOS, EOS, PAD, FLD, TK_MAJ, TK_UP, TK_REP, TK_WREP) or t.startswith("xxfake"):
            i += 1
        else:
            out.append(t)
            i += 1
    return out


def join_words(words: Sequence[str], start: str = "") -> str:
    """Words joined with spaces, except before punctuation, clitics and whitespace tokens and
    after opening brackets; a lone ``i`` is the pronoun ``I`` (the rules lowered it unmarked).

    >>> join_words(["i", "said", "it", "is", "n't", "bad", "!!!"], start="Well,")
    "Well, I said it isn't bad!!!"
    """
    text = start
    previous = start[-1:] if start else ""
    for word in words:
        word = word.replace("▁", " ")
        closing = word in _NO_SPACE_BEFORE or (word and set(word) <= _CLOSING)
        glue = "" if (not text or closing or previous in _NO_SPACE_AFTER or word.isspace()
                      or text[-1].isspace()) else " "
        text += glue + ("I" if word == "i" else word)
        previous = word
    return text


def detokenize(tokens: Sequence[str], start: str = "") -> str:
    """Readable text from tokens (see :func:`decode_spec_tokens` and :func:`join_words`).

    >>> detokenize(["xxbos", "xxmaj", "she", "smiled", ".", "xxmaj", "it", "was", "s", "xxrep", "5", "o", "good", "!"])
    'She smiled. It was sooooo good!'
    """
    return join_words(decode_spec_tokens(tokens), start=start)
