"""English word splitting in the style of spaCy's tokenizer (what fastai's ``WordTokenizer`` uses).

A text is cut at single spaces; other whitespace (a newline, a tab, a second space) becomes a
token of its own. Each chunk between spaces is then split, and the result cached (chunks repeat
a lot, so most of a corpus is a dictionary look-up):

1. an exception gives the split directly (``don't`` → ``do n't``, ``Mr.`` stays, ``:)`` stays);
2. otherwise prefixes (opening brackets and quotes, currency signs, ``#``...) come off the
   front and suffixes (punctuation, closing quotes, ``'s``, a unit after a number, a full stop
   after a lower-case letter...) off the back, one at a time, until the rest is an exception
   or nothing more comes off;
3. what is left stays whole if it looks like a URL or an e-mail address, else it is cut at
   infixes (a hyphen between letters, ``-`` between numbers, ``...``, ``/`` between letters).

Exceptions are English: contractions, abbreviations ending in a full stop, times, emoticons.

>>> WordTokenizer()(["The U.S. dollar $1 is $1.00."])
[['The', 'U.S.', 'dollar', '$', '1', 'is', '$', '1.00', '.']]
>>> WordTokenizer()(["I'd've said it's well-known (but don't quote me)."])[0]
['I', "'d", "'ve", 'said', 'it', "'s", 'well', '-', 'known', '(', 'but', 'do', "n't", 'quote', 'me', ')', '.']
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

# --- character classes, built once from the Unicode database --------------------------------

def _ranges(codes: list[int]) -> str:
    """Code points as a regex class body of ranges."""
    ranges, start = [], None
    for i, c in enumerate(codes):
        if start is None:
            start = c
        if i + 1 == len(codes) or codes[i + 1] != c + 1:
            ranges.append(re.escape(chr(start)) + ("" if c == start else "-" + re.escape(chr(c))))
            start = None
    return "".join(ranges)


def _char_classes() -> dict[str, str]:
    """Lower-case letters, upper-case letters, all letters and symbols (``So`` but ``°``) of the
    basic plane, each as a regex class body, in one pass over the Unicode database."""
    found: dict[str, list[int]] = {"lower": [], "upper": [], "alpha": [], "icons": []}
    for code in range(0x10000):
        category = unicodedata.category(chr(code))
        if category[0] == "L":
            found["alpha"].append(code)
            if category == "Ll":
                found["lower"].append(code)
            elif category == "Lu":
                found["upper"].append(code)
        elif category == "So" and code != 0xB0:
            found["icons"].append(code)
    return {name: _ranges(codes) for name, codes in found.items()}


_PUNCT = r"…,:;!?¿؟¡()\[\]{}<>_#*&。？！，、；：～·।،۔؛٪"
_QUOTES = "'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉⟦⟧"
_CURRENCY = "$£€¥฿₽﷼₴₠₡₢₣₤₥₦₧₨₩₪₫₭₮₯₰₱₲₳₵₶₷₸₹₺₻₼₾₿"
_UNITS = ("km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft kg g mg µg t lb oz "
          "m/s km/h kmh mph hPa Pa mbar mb MB kb KB gb GB tb TB T G M K %").split()
_HYPHENS = ["---", "--", "——", "-", "–", "—", "~"]


@functools.lru_cache(maxsize=None)
def _patterns() -> dict[str, re.Pattern]:
    """The prefix, suffix and infix expressions (built on first use: the letter classes take a
    moment to collect)."""
    classes = _char_classes()
    lower, upper, alpha, icons = classes["lower"], classes["upper"], classes["alpha"], classes["icons"]
    quotes = re.escape(_QUOTES)
    units = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    currency = rf"US\$|C\$|A\$|[{re.escape(_CURRENCY)}]"
    hyphens = "|".join(re.escape(h) for h in _HYPHENS)
    prefix = (rf"^(?:§|%|=|—|–|\+(?![0-9])|{currency}|\.\.+|…|[{_PUNCT}]|[{quotes}]|[{icons}])")
    suffix = "|".join(f"(?:{s})$" for s in (
        r"\.\.+", "…", rf"[{_PUNCT}]", rf"[{quotes}]", rf"[{icons}]", "'s", "'S", "’s", "’S", "—", "–",
        r"(?<=[0-9])\+", r"(?<=°[FfCcKk])\.", rf"(?<=[0-9])(?:{currency})", rf"(?<=[0-9])(?:{units})",
        rf"(?<=[0-9{lower}%²\-+{_PUNCT}{quotes}])\.", rf"(?<=[{upper}][{upper}])\."))
    infix = "|".join((
        r"\.\.+", "…", f"[{icons}]", r"(?<=[0-9])[+\-*^](?=[0-9-])", rf"(?<=[{lower}{quotes}])\.(?=[{upper}{quotes}])",
        rf"(?<=[{alpha}]),(?=[{alpha}])", rf"(?<=[{alpha}0-9])(?:{hyphens})(?=[{alpha}])",
        rf"(?<=[{alpha}0-9])[:<>=/](?=[{alpha}])"))
    return {"prefix": re.compile(prefix), "suffix": re.compile(suffix), "infix": re.compile(infix)}


_URL = re.compile(r"""^(?:(?:https?|ftp)://\S+|www\.\w[\w-]*(?:\.[\w-]+)+(?:[/?#]\S*)?
                     |[\w.+-]+@[\w-]+(?:\.[\w-]+)+)$""", re.VERBOSE)

# --- exceptions ------------------------------------------------------------------------------

_PRONOUN_VERBS = {  # pronoun → the clitics it takes ("'s" comes off as a suffix)
    "i": ["'m", "'ll", "'d", "'ve"], "you": ["'re", "'ll", "'d", "'ve"], "he": ["'ll", "'d"],
    "she": ["'ll", "'d"], "it": ["'ll", "'d"], "we": ["'re", "'ll", "'d", "'ve"], "they": ["'re", "'ll", "'d", "'ve"],
    "what": ["'re", "'ve", "'ll", "'d"], "who": ["'re", "'ve", "'ll", "'d"], "how": ["'d", "'ll", "'re"],
    "where": ["'d", "'ll", "'re", "'ve"], "why": ["'d", "'ll", "'re"], "when": ["'d", "'ll", "'re"],
    "that": ["'ll", "'d", "'re", "'ve"], "there": ["'ll", "'d", "'re", "'ve"], "this": ["'ll"],
}
# without the apostrophe too ("youre", "ive"); not where that spells another word ("ill", "well", "its")
_NO_APOSTROPHE = {"im": "i", "ive": "i", "id": "i", "youre": "you", "youll": "you", "youd": "you", "youve": "you",
                  "hed": "he", "itll": "it", "itd": "it", "wed": "we", "weve": "we", "theyre": "they",
                  "theyll": "they", "theyd": "they", "theyve": "they", "whatre": "what", "whatve": "what",
                  "whatll": "what", "whod": "who", "wholl": "who"}
_NOT_VERBS = {"do": "do", "does": "does", "did": "did", "have": "have", "has": "has", "had": "had", "is": "is",
              "are": "are", "was": "was", "were": "were", "could": "could", "would": "would", "should": "should",
              "might": "might", "must": "must", "need": "need", "dare": "dare", "ought": "ought",
              "ca": "can", "wo": "will", "sha": "shall", "ai": "ai"}
_MODALS_HAVE = ["could", "would", "should", "might", "must"]
_WHOLE = ["'s", "'S", "'re", "'ll", "'d", "n't", "’s", "’S", "’re", "’ll", "’d", "n’t", "'em", "’em", "'bout",
          "'cause", "'Cause", "o'clock", "O'clock", "ma'am", "Ma'am", "y'know", "Y'all", "ol'", "doin'", "Doin'",
          "goin'", "Goin'", "nothin'", "Nothin'", "somethin'", "Somethin'", "lovin'", "Lovin'", "havin'",
          "Havin'", "'cuz", "'Cuz", "and/or", "e.g.", "E.g.", "i.e.", "a.m.", "p.m.", "vs.", "v.", "v.s.", "co.",
          "w/", "w/o", "E.G.", "I.E.", "A.M.", "P.M.", "Ph.D.", "U.S.", "U.K.", "N.Y.", "D.C.", "L.A.", "U.N.",
          "E.U.", "Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Mt.", "Jr.", "Gen.", "Gov.", "Rep.", "Sen.", "Rev.", "Prof.",
          "Inc.", "Ltd.", "Co.", "Corp.", "Bros.", "Messrs.", "Jan.", "Feb.", "Mar.", "Apr.", "Jun.", "Jul.",
          "Aug.", "Sep.", "Sept.", "Oct.", "Nov.", "Dec.", "Ala.", "Ariz.", "Ark.", "Calif.", "Colo.", "Conn.",
          "Del.", "Fla.", "Ga.", "Ill.", "Ind.", "Kan.", "Kans.", "Ky.", "La.", "Md.", "Mass.", "Mich.", "Minn.",
          "Miss.", "Mo.", "Mont.", "Neb.", "Nebr.", "Nev.", "N.C.", "N.D.", "N.H.", "N.J.", "N.M.", "Okla.",
          "Ore.", "Pa.", "Tenn.", "Va.", "Wash.", "Wis.", "Wyo.", "rock'n'roll",
          ":)", ":-)", ":))", ":-))", ":(", ":-(", ":((", ":-((", ";)", ";-)", ":D", ":-D", ":P", ":-P", ":p",
          ":-p", ":o", ":O", ":-o", ":-O", ":/", ":-/", ":|", ":-|", ":'(", ":')", ":]", ":-]", ":>", ":->",
          "=)", "=(", "=]", "=D", "=|", "xD", "XD", "xd", "<3", "<33", "<333", "</3", "^^", "^_^", "^__^",
          "-_-", "-__-", "o.o", "O.o", "o.O", "O.O", "o_o", "O_O", "o_O", "O_o", "8)", "8-)", "(:", "):",
          "(-:", ")-:", ">:(", ">:o", ":o)", ":O)", ":-o)", ":-*", ":*", ";D", "\\n", "\\t", "''", "--"]


def _exceptions() -> dict[str, list[str]]:
    """Chunk → its tokens, for the chunks the affix rules would split wrongly."""
    table: dict[str, list[str]] = {w: [w] for w in _WHOLE}
    table.update({f"{c}.": [f"{c}."] for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"})

    def add(parts: list[str]) -> None:
        for apostrophe in ("'", "’"):
            forms = [p.replace("'", apostrophe) for p in parts]
            for cased in (forms, [forms[0][:1].upper() + forms[0][1:]] + forms[1:]):
                table["".join(cased)] = cased

    for pronoun, clitics in _PRONOUN_VERBS.items():
        for clitic in clitics:
            add([pronoun, clitic])
            if clitic in ("'d", "'ll"):
                add([pronoun, clitic, "'ve"])
    table["I'm"], table["I’m"] = ["I", "'m"], ["I", "’m"]
    for verb in _NOT_VERBS:
        add([verb, "n't"])
        add([verb, "n't", "'ve"])
        table[f"{verb}nt"], table[f"{verb.title()}nt"] = [verb, "nt"], [verb.title(), "nt"]
    for modal in _MODALS_HAVE:
        add([modal, "'ve"])
        table[f"{modal}ve"] = [modal, "ve"]
    for word, pronoun in _NO_APOSTROPHE.items():
        rest = word[len(pronoun):]
        table[word] = [pronoun, rest]
        table[word.title()] = ["I" if pronoun == "i" else pronoun.title(), rest]
    for word, parts in {"gonna": ["gon", "na"], "gotta": ["got", "ta"], "cannot": ["can", "not"],
                        "let's": ["let", "'s"], "y'all": ["y'", "all"], "c'mon": ["c'm", "on"],
                        "whats": ["what", "s"], "thats": ["that", "s"], "hes": ["he", "s"], "shes": ["she", "s"]}.items():
        if "'" in word:
            add(parts)
        table[word], table[word.title()] = parts, [parts[0].title()] + parts[1:]
    for hour in range(1, 13):
        for suffix in ("am", "pm", "a.m.", "p.m."):
            table[f"{hour}{suffix}"] = [str(hour), suffix]
    return table


_EXCEPTIONS = _exceptions()


def _split_affixes(chunk: str, exceptions: dict[str, list[str]]) -> list[str]:
    """Steps 2 and 3 of the module docstring, with ``exceptions`` for step 1."""
    special = exceptions.get(chunk)
    if special is not None:
        return list(special)
    patterns = _patterns()
    prefixes, suffixes, rest = [], [], chunk
    while rest and rest not in exceptions:
        before = len(rest)
        found = patterns["prefix"].match(rest)
        if found and found.end() < len(rest) and rest[found.end():] in exceptions:
            prefixes.append(found.group())
            rest = rest[found.end():]
            break
        if found:
            prefixes.append(found.group())
            rest = rest[found.end():]
        found = patterns["suffix"].search(rest) if rest else None
        if found and found.start() > 0 and rest[:found.start()] in exceptions:
            suffixes.append(found.group())
            rest = rest[:found.start()]
            break
        if found:
            suffixes.append(found.group())
            rest = rest[:found.start()]
        if len(rest) == before:
            break
    middle: list[str] = []
    if rest in exceptions:
        middle = list(exceptions[rest])
    elif rest and _URL.match(rest):
        middle = [rest]
    elif rest:
        start = 0
        for infix in patterns["infix"].finditer(rest):
            if infix.start() == 0 or infix.start() < start:
                continue
            middle += [rest[start:infix.start()], infix.group()]
            start = infix.end()
        middle.append(rest[start:])
    return prefixes + [t for t in middle if t] + suffixes[::-1]


@functools.lru_cache(maxsize=None)
def _merges() -> tuple[dict[tuple[str, ...], list[str]], int]:
    """Exceptions the affix rules would split (``:)``, ``and/or``, ``g.``), keyed by the tokens
    they would be split into, so that they are found again inside a longer chunk ("here:)")."""
    merges = {}
    for text, tokens in _EXCEPTIONS.items():
        parts = tuple(_split_affixes(text, {}))
        if len(parts) > 1:
            merges[parts] = tokens
    return merges, max(len(k) for k in merges)


def _merge_exceptions(tokens: list[str]) -> list[str]:
    merges, longest = _merges()
    out, i = [], 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 1, -1):
            found = merges.get(tuple(tokens[i:i + n]))
            if found is not None:
                out += found
                i += n
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def split_chunk(chunk: str) -> list[str]:
    """The tokens of one chunk of text without spaces (see the module docstring).

    >>> split_chunk('("Hello,')
    ['(', '"', 'Hello', ',']
    >>> split_chunk("here:)")
    ['here', ':)']
    """
    tokens = _split_affixes(chunk, _EXCEPTIONS)
    return _merge_exceptions(tokens) if len(tokens) > 1 else tokens


_RE_SPACES = re.compile(r"(\s+)")


class WordTokenizer:
    """Splits English texts into words, clitics (``n't``, ``'s``), numbers and punctuation, as
    spaCy's tokenizer does (see the module docstring); whitespace other than a single space is
    kept as a token (a newline from ``<br />`` stays). Called on a list of texts, returns a list
    of token lists. ``lang`` must be ``"en"``; for other languages use ``SubwordTokenizer``.

    >>> WordTokenizer()(["Don't pay $3.50, it's bad.\\nReally!"])
    [['Do', "n't", 'pay', '$', '3.50', ',', 'it', "'s", 'bad', '.', '\\n', 'Really', '!']]
    """

    cache_size = 200_000

    def __init__(self, lang: str = "en"):
        if lang != "en":
            raise ValueError(f"WordTokenizer(lang={lang!r}): only English rules ('en') are built in; use "
                             "SubwordTokenizer(lang=...) for other languages")
        self.lang = lang
        self.cache: dict[str, list[str]] = {}

    def __getstate__(self) -> dict:
        return {"lang": self.lang, "cache": {}}

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text."""
        out: list[str] = []
        cache = self.cache
        parts = _RE_SPACES.split(text)
        for i, part in enumerate(parts):
            if not part:
                continue
            if i % 2:  # whitespace: a single space after a word only separates
                space = part[1:] if part[0] == " " and (i > 1 or parts[0]) else part
                if space:
                    out.append(space)
                continue
            split = cache.get(part)
            if split is None:
                split = split_chunk(part)
                if len(cache) >= self.cache_size:
                    cache.clear()
                cache[part] = split
            out.extend(split)
        return out

    def __call__(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokens(t) for t in texts]

