"""Built-in text sets: labelled food reviews (classification) and Jane Austen's six novels
(language modelling), as folders of ``.txt`` files plus a CSV, read from the R data packages
``r-cran-modeldata`` and ``r-cran-janeaustenr`` (see :mod:`fastlearn.datasets.sources`); and the
human-numbers corpus, generated.

Each folder is built once under ``[paths] data`` and reused.

>>> from fastlearn.datasets.text import food_reviews
>>> path = food_reviews()              # doctest: +SKIP
>>> [p.name for p in path.ls()]        # doctest: +SKIP
['test', 'texts.csv', 'train']
"""
from __future__ import annotations

import os
import pathlib
import re

import pandas as pd

from fastlearn.paths import Path
from fastlearn.datasets.sources import build_once, check_count, r_dataset

AUSTEN_BOOKS = {
    "sensesensibility": "sense_and_sensibility", "prideprejudice": "pride_and_prejudice",
    "mansfieldpark": "mansfield_park", "emma": "emma",
    "northangerabbey": "northanger_abbey", "persuasion": "persuasion",
}
"""The R object names of the novels and the folder names used for them, in publication order."""
CHAPTER_HEADING = re.compile(r"^chapter\s+[0-9ivxlc]+\.?$", re.IGNORECASE)


def food_reviews(n_train: int = 4000, n_test: int = 1000,
                 data: str | os.PathLike | None = None) -> Path:
    """Amazon fine-food reviews labelled ``great`` or ``other``, in the layout of the course's
    ``URLs.IMDB``: ``train/<label>/<nnnn>.txt`` and ``test/<label>/<nnnn>.txt`` (one review
    per file), plus ``texts.csv`` like ``URLs.IMDB_SAMPLE``'s (``label,text,is_valid``, the test
    reviews being the valid ones).

    The first ``n_train`` of the 4,000 training and ``n_test`` of the 1,000 test reviews are
    used; ``<nnnn>`` is the review's row in its split. Built once in
    ``food_reviews_<n_train>-<n_test>`` under ``data`` (default ``[paths] data``).

    Source: ``small_fine_foods`` (``training_data``, ``testing_data``) in the Debian package
    ``r-cran-modeldata`` (install: ``make sources``), MIT licence; reviews from the Stanford SNAP
    Amazon Fine Food set. Size: 5,000 reviews, about 2.5 MB.

    >>> path = food_reviews(n_train=100, n_test=20)      # doctest: +SKIP
    >>> sorted(p.name for p in (path / "train").ls())    # doctest: +SKIP
    ['great', 'other']
    """
    n_train = check_count("n_train", n_train, 1, 4000)
    n_test = check_count("n_test", n_test, 0, 1000)

    def build(folder: pathlib.Path) -> None:
        frames = []
        for split, name, count in (("train", "training_data", n_train), ("test", "testing_data", n_test)):
            frame = r_dataset("modeldata", name).iloc[:count]
            labels = frame["score"].astype(str).tolist()
            texts = frame["review"].astype(str).tolist()
            for label in sorted(set(labels)):
                (folder / split / label).mkdir(parents=True)
            for number, (label, text) in enumerate(zip(labels, texts)):
                (folder / split / label / f"{number:04d}.txt").write_text(text, encoding="utf-8")
            frames.append(pd.DataFrame({"label": labels, "text": texts, "is_valid": split == "test"}))
        pd.concat(frames).to_csv(folder / "texts.csv", index=False)

    return build_once(f"food_reviews_{n_train}-{n_test}", build, data)


def austen_chapters(lines) -> list[list[str]]:
    """Split a novel's lines into chapters, each a list of paragraphs (wrapped lines joined);
    the title matter before the first chapter heading is dropped.

    >>> austen_chapters(["EMMA", "", "CHAPTER I", "", "Emma Woodhouse,", "handsome.", "", "Next."])
    [['Emma Woodhouse, handsome.', 'Next.']]
    """
    chapters: list[list[str]] = []
    paragraph: list[str] = []

    def end_paragraph() -> None:
        if paragraph and chapters:
            chapters[-1].append(" ".join(paragraph))
        paragraph.clear()

    for line in lines:
        line = str(line).strip()
        if CHAPTER_HEADING.match(line):
            end_paragraph()
            chapters.append([])
        elif not line:
            end_paragraph()
        else:
            paragraph.append(line)
    end_paragraph()
    return chapters


def jane_austen(data: str | os.PathLike | None = None) -> Path:
    """Jane Austen's six novels, chapter by chapter, for language models and text classification:
    ``train/<novel>/<nn>.txt`` and ``test/<novel>/<nn>.txt`` (every fifth chapter is in
    ``test``; one paragraph per line), ``train.txt`` and ``valid.txt`` (the same chapters run
    together, one paragraph per line, like ``URLs.HUMAN_NUMBERS``), and ``austen.csv``
    (``novel,chapter,text,is_valid``). Novel folders are :data:`AUSTEN_BOOKS`' values.

    Built once in ``jane_austen`` under ``data`` (default ``[paths] data``).

    Source: Debian package ``r-cran-janeaustenr`` (install: ``make sources``), texts from
    Project Gutenberg, public domain (package MIT). Size: 269 chapters, 717k words, about 4 MB.

    >>> path = jane_austen()                                            # doctest: +SKIP
    >>> (path / "train" / "emma" / "01.txt").read_text()[:14]           # doctest: +SKIP
    'Emma Woodhouse'
    """
    def build(folder: pathlib.Path) -> None:
        rows = []
        for r_name, novel in AUSTEN_BOOKS.items():
            for split in ("train", "test"):
                (folder / split / novel).mkdir(parents=True)
            for number, paragraphs in enumerate(austen_chapters(r_dataset("janeaustenr", r_name)), 1):
                text = "\n".join(paragraphs) + "\n"
                split = "test" if number % 5 == 0 else "train"
                (folder / split / novel / f"{number:02d}.txt").write_text(text, encoding="utf-8")
                rows.append({"novel": novel, "chapter": number, "text": text, "is_valid": split == "test"})
        frame = pd.DataFrame(rows)
        frame.to_csv(folder / "austen.csv", index=False)
        for file, chosen in (("train.txt", ~frame["is_valid"]), ("valid.txt", frame["is_valid"])):
            (folder / file).write_text("".join(frame.loc[chosen, "text"]), encoding="utf-8")

    return build_once("jane_austen", build, data)


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """``n`` (0 to 999,999) in English words, as the human-numbers corpus writes them.

    >>> number_words(8001), number_words(342)
    ('eight thousand one', 'three hundred forty two')
    """
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_words({n!r}): expected 0 to 999999")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))


def human_numbers(data: str | os.PathLike | None = None) -> Path:
    """The numbers 1 to 9,999 written in words, one per line: ``train.txt`` (1 to 8,000) and
    ``valid.txt`` (8,001 to 9,999), the corpus of the course's ``URLs.HUMAN_NUMBERS`` (chapter 12
    trains language models from scratch on it: a 30-word vocabulary with a regular grammar).

    Generated, not read from a package, so it needs no source. Built once in ``human_numbers``
    under ``data`` (default ``[paths] data``).

    >>> (human_numbers() / "valid.txt").read_text().splitlines()[0]    # doctest: +SKIP
    'eight thousand one '
    """
    def build(folder: pathlib.Path) -> None:
        for file, numbers in (("train.txt", range(1, 8001)), ("valid.txt", range(8001, 10000))):
            (folder / file).write_text("".join(number_words(n) + " \n" for n in numbers), encoding="utf-8")

    return build_once("human_numbers", build, data)
