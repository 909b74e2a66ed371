"""``download_url``: an HTTP(S) download with a progress bar that survives interruptions.

The bytes go to ``<dest>.part``; only a complete transfer (its size checked against the
server's ``Content-Length``, its SHA-256 against ``sha256=`` when given) is renamed to ``dest``.
After an interruption the ``.part`` file stays, and the next call asks the server for the rest
(an HTTP ``Range`` request); a server that ignores ranges sends the whole file again.

>>> from fastlearn.download import download_url
>>> download_url("https://example.com/cat.jpg", "images/cat.jpg")   # doctest: +SKIP
Path('images/cat.jpg')
"""
from __future__ import annotations

import hashlib
import http.client
import os
import pathlib
import re
import urllib.error
import urllib.parse
import urllib.request

from fastprogress.fastprogress import progress_bar

from fastlearn.paths import Path

CHUNK_SIZE = 1 << 16


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file, read in chunks.

    >>> len(file_sha256(__file__))
    64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _by_hand(url: str, dest: pathlib.Path) -> str:
    return (f"to work without a network, fetch {url} elsewhere and place it at {dest} "
            "(the exact path), then call again")


def _open(url: str, start: int, timeout: float, dest: pathlib.Path):
    headers = {"User-Agent": "fastlearn"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:
            return None
        raise ConnectionError(f"downloading {url} failed: the server answered HTTP {error.code} "
                              f"{error.reason}; check the URL (and [downloads] base_url in the "
                              f"config), or {_by_hand(url, dest)}") from error
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConnectionError(f"downloading {url} failed: {reason}; check the network or proxy, "
                              f"or {_by_hand(url, dest)}") from error


def _total_and_offset(response, start: int) -> tuple[int | None, int]:
    """The full size and the offset the response body starts at (0 unless a range was served)."""
    if start and response.status == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == start:
            return (None if match.group(2) == "*" else int(match.group(2))), start
        return None, -1
    length = response.headers.get("Content-Length")
    return (int(length) if length and length.isdigit() else None), 0


def download_url(url: str, dest: str | os.PathLike | None = None, show_progress: bool = True,
                 *, timeout: float = 30.0, sha256: str | None = None) -> Path:
    """Download ``url`` to the file ``dest`` (a folder gets the URL's file name) and return it.

    ``dest=None`` puts the file in ``[paths] archive`` of the config. A failure raises
    ``ConnectionError`` naming the URL, what went wrong and the path to place the file at by
    hand; a wrong ``sha256`` deletes the download and raises ``ValueError``.

    >>> download_url("https://example.com/data/a.tgz", "/tmp/archives")   # doctest: +SKIP
    Path('/tmp/archives/a.tgz')
    """
    name = urllib.parse.urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
    if dest is None:
        from fastlearn.config import get_config
        dest = get_config().path("archive")
    dest = pathlib.Path(dest).expanduser()
    if dest.is_dir():
        if not name:
            raise ValueError(f"url {url!r} names no file, so dest must be a file path, got the "
                             f"folder {dest}")
        dest = dest / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    response = _open(url, start, timeout, dest)
    if response is None:  # 416: the partial file is no prefix of what the server has
        part.unlink()
        start, response = 0, _open(url, 0, timeout, dest)
    with response:
        total, offset = _total_and_offset(response, start)
        if offset < 0:
            part.unlink()
            raise ConnectionError(f"downloading {url}: the server answered the resume request "
                                  f"with an unexpected range; the partial file {part} was "
                                  "deleted, call again to download from the start")
        done = offset
        bar = None
        if show_progress:
            bar = progress_bar(range(total) if total else [],
                               total=None if total else "noinfer", leave=False)
            bar.update(0)
            if done:
                bar.update(done)
        try:
            with open(part, "ab" if offset else "wb") as file:
                while chunk := response.read(CHUNK_SIZE):
                    file.write(chunk)
                    done += len(chunk)
                    if bar is not None:
                        bar.update(done)
        except (http.client.HTTPException, OSError) as error:
            if isinstance(error, OSError) and error.errno is not None and not isinstance(
                    error, (ConnectionError, TimeoutError)):
                raise
            raise ConnectionError(f"downloading {url} was interrupted after {done} bytes "
                                  f"({error}); call again to resume from {part}, or "
                                  f"{_by_hand(url, dest)}") from error
        finally:
            if bar is not None and total is None:
                bar.on_iter_end()
    if total is not None and done != total:
        raise ConnectionError(f"downloading {url} stopped after {done} of {total} bytes; call "
                              f"again to resume from {part}, or {_by_hand(url, dest)}")
    if sha256 is not None:
        actual = file_sha256(part)
        if actual != sha256.lower():
            part.unlink()
            raise ValueError(f"the file downloaded from {url} has SHA-256 {actual}, expected "
                             f"{sha256}; the download was deleted. Check the URL and checksum "
                             "(a mirror may serve another version), then call again")
    os.replace(part, dest)
    return Path(dest)
