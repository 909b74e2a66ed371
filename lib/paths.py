"""A ``pathlib.Path`` with the ``.ls()`` the course uses, without patching ``pathlib``.

>>> from fastlearn.paths import Path
>>> Path(".").ls()   # doctest: +SKIP
(#3) [Path('a.png'), Path('b.png'), Path('labels.csv')]
"""
from __future__ import annotations

import pathlib

from fastlearn.foundation import L


class Path(type(pathlib.Path())):
    """``pathlib.Path`` plus ``ls(n_max=None, file_type=None, file_exts=None)`` returning an :class:`L`.

    Every path derived from it (``/``, ``.parent``, ``iterdir``) is again a ``fastlearn`` Path.
    """

    BASE_PATH: pathlib.Path | None = None

    def ls(self, n_max: int | None = None, file_type: str | None = None,
           file_exts: str | list[str] | None = None) -> L:
        """The folder's entries, sorted, as an ``L`` (optionally filtered by MIME major type or extension)."""
        if not self.is_dir():
            raise NotADirectoryError(f"{self} is not a folder; ls() lists a folder's contents")
        entries = sorted(self.iterdir())
        if file_exts is not None:
            exts = {file_exts} if isinstance(file_exts, str) else set(file_exts)
            entries = [e for e in entries if e.suffix in exts]
        if file_type is not None:
            import mimetypes
            entries = [e for e in entries
                       if (mimetypes.guess_type(str(e))[0] or "").startswith(file_type)]
        return L(entries[:n_max] if n_max is not None else entries)

    def __repr__(self) -> str:
        if Path.BASE_PATH is not None:
            try:
                return f"Path({str(self.relative_to(Path.BASE_PATH))!r})"
            except ValueError:
                pass
        return f"Path({str(self)!r})"
