"""Finding items and labelling them: ``get_files``, ``get_image_files``, ``parent_label``, ...

Getters return an ``L`` of :class:`fastlearn.paths.Path` (which has ``.ls()``). Labellers are
plain picklable callables, so loaders with worker processes can use them.

>>> parent_label("data/train/cat/001.png")
'cat'
>>> RegexLabeller(r"^(.+)_\\d+\\.png$")("great_pyrenees_12.png")
'great_pyrenees'
"""
from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Callable, Iterable, Sequence

from fastlearn.foundation import L
from fastlearn.paths import Path

image_extensions: set[str] = {ext for ext, kind in mimetypes.types_map.items()
                              if kind.startswith("image/")} | {".webp", ".avif", ".heic"}
text_extensions: set[str] = {".txt"}


def _normalise_extensions(extensions) -> set[str] | None:
    if extensions is None:
        return None
    extensions = [extensions] if isinstance(extensions, str) else list(extensions)
    return {(e if e.startswith(".") else "." + e).lower() for e in extensions}


def get_files(path: str | os.PathLike, extensions: Iterable[str] | str | None = None,
              recurse: bool = True, folders: Iterable[str] | str | None = None,
              followlinks: bool = True) -> L:
    """Every file under ``path`` with one of ``extensions`` (any if None), as an ``L`` of Paths.

    Hidden files and folders (starting with ``.``) are skipped; ``folders`` keeps only those
    top-level subfolders; the order is sorted folder by folder, so it is the same on every run.

    >>> get_files("photos", extensions=[".png"])   # doctest: +SKIP
    (#2) [Path('photos/a/1.png'), Path('photos/b/2.png')]
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"get_files: {path} does not exist; check the path (the data may "
                                "not be downloaded or built yet)")
    if not path.is_dir():
        raise NotADirectoryError(f"get_files: {path} is a file, expected a folder")
    exts = _normalise_extensions(extensions)
    keep_folders = None if folders is None else ({folders} if isinstance(folders, str) else set(folders))
    found: list[Path] = []
    for depth, (root, dirs, files) in enumerate(os.walk(path, followlinks=followlinks)):
        if depth == 0 and keep_folders is not None:
            dirs[:] = sorted(d for d in dirs if d in keep_folders)
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        root_path = Path(root)
        for name in sorted(files):
            if name.startswith("."):
                continue
            if exts is None or os.path.splitext(name)[1].lower() in exts:
                found.append(root_path / name)
        if not recurse:
            break
    return L(found)


def get_image_files(path: str | os.PathLike, recurse: bool = True,
                    folders: Iterable[str] | str | None = None) -> L:
    """Image files under ``path`` (by extension: .png, .jpg, .jpeg, .gif, .bmp, .webp, ...).

    >>> files = get_image_files("data/fashion")   # doctest: +SKIP
    """
    return get_files(path, extensions=image_extensions, recurse=recurse, folders=folders)


def get_text_files(path: str | os.PathLike, recurse: bool = True,
                   folders: Iterable[str] | str | None = None) -> L:
    """``.txt`` files under ``path``.

    >>> files = get_text_files("data/reviews", folders=["train", "test"])   # doctest: +SKIP
    """
    return get_files(path, extensions=text_extensions, recurse=recurse, folders=folders)


def parent_label(item: str | os.PathLike) -> str:
    """The name of the folder holding the file: ``train/cat/1.png`` → ``"cat"``.

    >>> parent_label("train/dog/7.jpg")
    'dog'
    """
    return Path(item).parent.name


def grandparent_label(item: str | os.PathLike) -> str:
    """The name of the folder two levels up: ``train/cat/1.png`` → ``"train"``."""
    return Path(item).parent.parent.name


class RegexLabeller:
    """The first group of ``pat`` matched in the item's path (``match=True``: from the start).

    A name that does not match raises a ValueError naming the item and the pattern.

    >>> RegexLabeller(r"/([a-z]+)_\\d+\\.jpg$")("pets/beagle_3.jpg")
    'beagle'
    """

    def __init__(self, pat: str, match: bool = False):
        try:
            self.regex = re.compile(pat)
        except re.error as error:
            raise ValueError(f"RegexLabeller: {pat!r} is not a valid regular expression: {error}") from None
        if self.regex.groups < 1:
            raise ValueError(f"RegexLabeller: pattern {pat!r} has no group; put the label in "
                             "parentheses, e.g. r'(.+)_\\d+.jpg$'")
        self.pat, self.match = pat, match

    def __call__(self, item) -> str:
        text = item.as_posix() if isinstance(item, os.PathLike) else str(item)
        found = (self.regex.match if self.match else self.regex.search)(text)
        if found is None:
            raise ValueError(f"RegexLabeller: pattern {self.pat!r} does not match {text!r}; fix the "
                             "pattern or remove the file")
        return found.group(1)

    def __repr__(self) -> str:
        return f"RegexLabeller({self.pat!r}, match={self.match})"


class ColReader:
    """Read ``cols`` from a DataFrame row, with ``pref``/``suff`` added and labels split on
    ``label_delim``. Integer columns are positions; several columns give a list.

    >>> import pandas as pd
    >>> row = pd.Series({"fname": "a.png", "labels": "cat dog"})
    >>> ColReader("fname", pref="imgs/")(row), ColReader("labels", label_delim=" ")(row)
    ('imgs/a.png', ['cat', 'dog'])
    """

    def __init__(self, cols: int | str | Sequence[int | str], pref: str | os.PathLike = "",
                 suff: str = "", label_delim: str | None = None):
        self.cols = [cols] if isinstance(cols, (int, str)) else list(cols)
        self.pref = str(pref) + os.path.sep if isinstance(pref, os.PathLike) else pref
        self.suff, self.label_delim = suff, label_delim

    def _read(self, row, col):
        try:
            if isinstance(col, int) and hasattr(row, "iloc"):
                return row.iloc[col]
            if hasattr(row, "_fields") and isinstance(col, str):
                return getattr(row, col)
            return row[col]
        except (KeyError, IndexError, AttributeError):
            available = list(getattr(row, "index", getattr(row, "_fields", [])))
            raise ValueError(f"ColReader: column {col!r} is not in the row (columns: {available}); "
                             "fix the column name") from None

    def _one(self, row, col):
        value = self._read(row, col)
        if self.pref or self.suff:
            value = f"{self.pref}{value}{self.suff}"
        if self.label_delim is not None:
            if value is None or (isinstance(value, float) and value != value):
                return []
            return [v for v in str(value).split(self.label_delim) if v != ""]
        return value

    def __call__(self, row):
        values = [self._one(row, c) for c in self.cols]
        return values[0] if len(values) == 1 else values

    def __repr__(self) -> str:
        return f"ColReader({self.cols}, pref={self.pref!r}, suff={self.suff!r}, label_delim={self.label_delim!r})"


class using_attr:
    """``f`` applied to ``getattr(item, attr)``: ``using_attr(labeller, "name")`` labels by file name.

    >>> using_attr(str.upper, "name")(Path("pets/cat_1.jpg"))
    'CAT_1.JPG'
    """

    def __init__(self, f: Callable, attr: str):
        if not callable(f):
            raise TypeError(f"using_attr: f={f!r} is not callable")
        self.f, self.attr = f, attr

    def __call__(self, item):
        return self.f(getattr(item, self.attr))

    def __repr__(self) -> str:
        return f"using_attr({self.f!r}, {self.attr!r})"
