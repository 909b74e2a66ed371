"""Files written whole or not at all: checkpoints, exports, encoders.

:func:`atomic_write` writes through a temporary file in the target's folder, named
``.<name>.<host>.<pid>.<random>.tmp``, flushes it to disk and renames it over the target, so a
reader (or a crash, or ``SIGKILL``) never sees half a file under the real name. The temporary file
is created with the mode the user's umask gives any new file (0o666 minus the umask), or with the
mode of the file it replaces, so a serving process that could read the old file reads the new one.

A writer killed mid-write leaves its temporary file behind. The next write of the same target
removes such leftovers: those whose writer process no longer runs on this machine, and any older
than :data:`STALE_AFTER_S`. A live writer's temporary file (another process saving the same
target right now) is left alone.

>>> atomic_write_bytes(Path(tmp) / "model.pth", b"...")   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

STALE_AFTER_S = 24 * 3600
_HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"


def temp_name(path: Path) -> Path:
    """A fresh temporary file name for ``path``, carrying this host and process id.

    >>> temp_name(Path("m/model.pth")).name.startswith(".model.pth.")
    True
    """
    return path.parent / f".{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _process_runs(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap, harmless liveness check: leave it to the age rule
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _is_stale(temp: Path, target: Path, now: float) -> bool:
    middle = temp.name[len(f".{target.name}."):-len(".tmp")]
    parts = middle.split(".")
    try:
        age = now - temp.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_AFTER_S:
        return True
    if len(parts) != 3 or not parts[1].isdigit():
        return False  # another target's temporary file (".model.pth.bak...") or an unknown writer
    host, pid = parts[0], int(parts[1])
    return host == _HOST and pid != os.getpid() and not _process_runs(pid)


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` left by killed writers; returns the ones removed.

    >>> remove_stale_temp_files(Path(tmp) / "model.pth")   # doctest: +SKIP
    [PosixPath('.../.model.pth.host.4242.9f3a1c2e.tmp')]
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    now, removed = time.time(), []
    for temp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        if _is_stale(temp, path, now):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
                removed.append(temp)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob wildcards escaped.

    >>> glob_escape("model[1].pth")
    'model[[]1].pth'
    """
    return re.sub(r"([*?[])", r"[\1]", name)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _check_target(path: Path) -> None:
    """Refuse, naming it, a target that is a folder or that lies under a file."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"cannot write {path}: it is a folder; pass a file name, such as "
                                              f"{path / 'model.pth'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"cannot write {path}: {parent} is a file, not a folder; "
                                                        "pass a path in a folder, or move that file")
            return


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file, then rename it to ``path``; returns ``path``.

    >>> atomic_write(Path(tmp) / "x.bin", lambda f: f.write(b"data"))   # doctest: +SKIP
    """
    path = Path(path)
    _check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(path)
        temp = temp_name(path)
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise type(error)(error.errno, f"cannot write {path}: {error.strerror} (in {path.parent}); nothing was "
                                       "written: save to a folder you can write (another name, an absolute path or "
                                       "learn.path)") from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temp, stat.S_IMODE(path.stat().st_mode))  # keep the mode of the file it replaces
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_folder(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` with :func:`atomic_write`.

    >>> atomic_write_bytes(Path(tmp) / "x.bin", b"data")   # doctest: +SKIP
    """
    return atomic_write(path, lambda file: file.write(data))
