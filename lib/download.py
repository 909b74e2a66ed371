"""``download_url``: an HTTP(S) download with a progress bar that survives interruptions.

The bytes go to ``<dest>.part``; only a complete transfer is renamed to ``dest``: its size is
checked against the server's ``Content-Length`` (a response without one, which ends when the
connection closes whether complete or not, is confirmed by asking the server for anything past
its end), its SHA-256 against ``sha256=`` when given. After an interruption the ``.part`` file
stays, with the server's validators (``ETag``, ``Last-Modified``) and size beside it in
``<dest>.part.json``; the next call asks for the rest (an HTTP ``Range`` request with
``If-Range``), so a file that changed on the server meanwhile is downloaded again from the start
instead of being spliced, half old and half new. A server that ignores ranges sends the whole
file again. (A server that sends no validators is checked by the file's size only: pass
``sha256=`` to be sure.)

>>> from fastlearn.download import download_url
>>> download_url("https://example.com/cat.jpg", "images/cat.jpg")   # doctest: +SKIP
Path('images/cat.jpg')
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import pathlib
import re
import urllib.error
import urllib.parse
import urllib.request

from fastprogress.fastprogress import progress_bar

from fastlearn.config import get_config
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


def _validators(response) -> dict:
    """The response's ``ETag`` (a strong one: weak ones cannot guard a range) and ``Last-Modified``."""
    etag = response.headers.get("ETag")
    return {"etag": etag if etag and not etag.startswith("W/") else None,
            "last_modified": response.headers.get("Last-Modified")}


def _read_state(meta: pathlib.Path, url: str) -> dict | None:
    """What was recorded when the partial download of ``url`` began; None if nothing usable."""
    try:
        state = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("url") == url else None


def _same_file(response, state: dict) -> bool:
    """Whether a ranged answer comes from the file the partial download started from."""
    now = _validators(response)
    return all(not (state.get(key) and now[key]) or state[key] == now[key] for key in ("etag", "last_modified"))


def _forget(*files: pathlib.Path) -> None:
    for file in files:
        file.unlink(missing_ok=True)


def _open(url: str, start: int, timeout: float, dest: pathlib.Path, state: dict | None = None):
    """The server's answer for ``url`` from byte ``start`` on (None: 416, nothing there).
    ``state``'s validators make the range conditional (``If-Range``): a changed file comes whole."""
    headers = {"User-Agent": "fastlearn"}
    if start:
        headers["Range"] = f"bytes={start}-"
        validator = (state or {}).get("etag") or (state or {}).get("last_modified")
        if validator:
            headers["If-Range"] = validator
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


def _resume(url: str, part: pathlib.Path, meta: pathlib.Path, timeout: float, dest: pathlib.Path):
    """``(response, total, offset)``: continuing ``part`` when the server still has the file it
    was started from, else the whole file from byte 0 (the partial file and its record deleted)."""
    state = _read_state(meta, url) if part.is_file() else None
    if state is not None:
        start = part.stat().st_size
        response = _open(url, start, timeout, dest, state)
        if response is not None:  # None: 416, the partial file is no prefix of the server's
            total, offset = _total_and_offset(response, start)
            recorded = state.get("total")
            if offset == start and _same_file(response, state) and (recorded is None or total in (None, recorded)):
                return response, total, offset
            if offset < 0:
                response.close()
                _forget(part, meta)
                raise ConnectionError(f"downloading {url}: the server answered the resume request "
                                      f"with an unexpected range; the partial file {part} was "
                                      "deleted, call again to download from the start")
            if offset == 0:  # the whole file: it changed (If-Range), or the server ignores ranges
                _forget(part, meta)
                return _started(url, response, meta)
            response.close()  # a range of a file that changed: start again
    _forget(part, meta)  # a partial file of unknown origin cannot be continued safely
    return _started(url, _open(url, 0, timeout, dest), meta)


def _started(url: str, response, meta: pathlib.Path):
    """Record the validators and size of a download starting at byte 0, for a later resume."""
    total, _ = _total_and_offset(response, 0)
    meta.write_text(json.dumps({"url": url, "total": total, **_validators(response)}))
    return response, total, 0


def _confirm_length(url: str, size: int, timeout: float, dest: pathlib.Path, part: pathlib.Path,
                    state: dict) -> None:
    """A body without a declared length ends when the connection closes, complete or not: ask the
    server for what lies past ``size`` (nothing: complete), or for its length."""
    response = _open(url, size, timeout, dest, state)
    if response is None:  # 416: nothing past the end
        return
    with response:
        total, offset = _total_and_offset(response, size)
        if offset == size and size:
            raise ConnectionError(f"downloading {url} stopped after {size} bytes (the server sent no length "
                                  f"and has more); call again to resume from {part}, or {_by_hand(url, dest)}")
        if total is None:  # the server ignores ranges and sends no length: count a second transfer
            total = sum(len(chunk) for chunk in iter(lambda: response.read(CHUNK_SIZE), b""))
    if total != size:
        raise ConnectionError(f"downloading {url} gave {size} bytes but the server's file has {total}; "
                              f"the transfer was cut short: call again to resume from {part}, or {_by_hand(url, dest)}")


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
        dest = get_config().path("archive")
    dest = pathlib.Path(dest).expanduser()
    if dest.is_dir():
        if not name:
            raise ValueError(f"url {url!r} names no file, so dest must be a file path, got the "
                             f"folder {dest}")
        dest = dest / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")
    response, total, offset = _resume(url, part, meta, timeout, dest)
    with response:
        chunked = bool(getattr(response, "chunked", False))  # chunked framing detects a cut itself
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
    if total is None and not chunked and sha256 is None:
        _confirm_length(url, done, timeout, dest, part, _read_state(meta, url) or {})
    if sha256 is not None:
        actual = file_sha256(part)
        if actual != sha256.lower():
            _forget(part, meta)
            raise ValueError(f"the file downloaded from {url} has SHA-256 {actual}, expected "
                             f"{sha256}; the download was deleted. Check the URL and checksum "
                             "(a mirror may serve another version), then call again")
    os.replace(part, dest)
    _forget(meta)
    return Path(dest)
