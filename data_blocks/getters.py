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
import warnings
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


def _sorted_entries(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError:  # unreadable folder: skipped, as os.walk does
        return []


class _Walk:
    """The state of one ``get_files`` call: every folder is walked once (by its real path), a
    file reached by several paths is listed once, non-regular files are set aside."""

    def __init__(self, exts: set[str] | None, recurse: bool, followlinks: bool):
        self.exts, self.recurse, self.followlinks = exts, recurse, followlinks
        self.found: dict[str, tuple[Path, bool]] = {}  # real path -> (path as reached, reached through a link)
        self.duplicates: list[str] = []
        self.not_regular: list[str] = []
        self.walked: set[str] = set()
        self.links: list[tuple[str, str]] = []  # linked folders, walked after every real one

    def _add(self, path: Path, real: str, via_link: bool) -> None:
        if real not in self.found:
            self.found[real] = (path, via_link)
        elif self.found[real][1] and not via_link:  # the plain path wins over a link's
            self.duplicates.append(self.found[real][0])
            self.found[real] = (path, via_link)
        else:
            self.duplicates.append(path)

    def folder(self, top: str, real_top: str, via_link: bool, keep: set[str] | None = None) -> None:
        """Walk ``top`` depth first, files of a folder before its subfolders (as ``os.walk``)."""
        stack, found, exts, sep = [(top, real_top, keep)], self.found, self.exts, os.sep
        while stack:
            folder, real, keep = stack.pop()
            self.walked.add(real)
            folder_path, subfolders = Path(folder), []
            for entry in _sorted_entries(folder):
                name = entry.name
                try:  # a regular file or folder, through links; else a FIFO, socket, device, broken link
                    is_dir = entry.is_dir()
                    is_file = not is_dir and entry.is_file()
                except OSError:
                    is_dir = is_file = False
                if is_dir:
                    if (name not in keep) if keep is not None else name[0] == ".":
                        continue
                    if entry.is_symlink():
                        if self.followlinks:
                            self.links.append((entry.path, os.path.realpath(entry.path)))
                    elif real + sep + name not in self.walked:
                        subfolders.append((entry.path, real + sep + name, None))
                    continue
                if name[0] == "." or (exts is not None and os.path.splitext(name)[1].lower() not in exts):
                    continue
                if not is_file:
                    self.not_regular.append(entry.path)
                    continue
                linked = entry.is_symlink()
                key = os.path.realpath(entry.path) if linked else real + sep + name
                if key in found or linked or via_link:
                    self._add(folder_path / name, key, via_link or linked)
                else:
                    found[key] = (folder_path / name, False)
            if self.recurse:
                stack.extend(reversed(subfolders))

    def linked_folders(self) -> None:
        """Follow each symbolic link to a folder not walked yet (so a loop is walked once)."""
        while self.links:
            pending, self.links = self.links, []
            for path, real in pending:
                if real not in self.walked:
                    self.folder(path, real, via_link=True)


def get_files(path: str | os.PathLike, extensions: Iterable[str] | str | None = None,
              recurse: bool = True, folders: Iterable[str] | str | None = None,
              followlinks: bool = True) -> L:
    """Every file under ``path`` with one of ``extensions`` (any if None), as an ``L`` of Paths.

    Hidden files and folders (starting with ``.``) are skipped; ``folders`` keeps only those
    top-level subfolders; the order is sorted folder by folder, so it is the same on every run.
    Symbolic links to folders are followed once (``followlinks``), after the real folders, so a
    link loop is harmless; a file reached by several paths is listed once (the path without a
    link preferred), and names that are not regular files (a FIFO, a socket, a broken link) are
    skipped. Both are said in a warning.

    >>> get_files("photos", extensions=[".png"])   # doctest: +SKIP
    (#2) [Path('photos/a/1.png'), Path('photos/b/2.png')]
    """
    path = Path(path).expanduser()  # "~/data" is the home folder's data, as in a shell
    if not path.exists():
        raise FileNotFoundError(f"get_files: {path} does not exist; check the path (the data may "
                                "not be downloaded or built yet)")
    if not path.is_dir():
        raise NotADirectoryError(f"get_files: {path} is a file, expected a folder")
    keep = None if folders is None else ({folders} if isinstance(folders, str) else set(folders))
    walk = _Walk(_normalise_extensions(extensions), recurse, followlinks)
    walk.folder(os.fspath(path), os.path.realpath(path), via_link=False, keep=keep)
    if recurse:
        walk.linked_folders()
    _warn_skipped(path, walk)
    return L([found for found, _ in walk.found.values()])


def _warn_skipped(path: Path, walk: "_Walk") -> None:
    if walk.not_regular:
        warnings.warn(f"get_files: skipped {len(walk.not_regular)} path(s) under {path} that are not "
                      f"regular files (a FIFO, socket, device or broken link): {walk.not_regular[:3]}; "
                      "remove them or point them at real files", RuntimeWarning, stacklevel=3)
    if walk.duplicates:
        warnings.warn(f"get_files: {len(walk.duplicates)} path(s) under {path} lead to a file already "
                      f"listed (through symbolic links), e.g. {walk.duplicates[:3]}; each file is listed "
                      "once", RuntimeWarning, stacklevel=3)


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
    ``label_delim``. Integer columns are positions; several columns give a list. A ``pref`` that
    is a folder (ending with a path separator) is not put before a value that is a full path.

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
        if self._joins_folder() and isinstance(value, (str, os.PathLike)) and os.path.isabs(value):
            value = f"{os.fspath(value)}{self.suff}"  # a full path in the table: the folder would be prepended twice
        elif self.pref or self.suff:
            value = f"{self.pref}{value}{self.suff}"
        if self.label_delim is not None:
            if value is None or (isinstance(value, float) and value != value):
                return []
            return [v for v in str(value).split(self.label_delim) if v != ""]
        return value

    def _joins_folder(self) -> bool:
        """Whether ``pref`` is a folder (it ends with a path separator) that values are put under."""
        return bool(self.pref) and str(self.pref)[-1] in (os.path.sep, "/")

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
