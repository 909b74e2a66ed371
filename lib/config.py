"""Runtime configuration: data and model paths, default batch size, workers, device, precision.

Values are read in three layers, each overriding the one before key by key:

1. the built-in defaults (the same values as the project's ``settings.ini``),
2. ``~/.fastlearn/config.ini``,
3. the file named by the ``FASTLEARN_CONFIG`` environment variable.

Paths expand ``~`` and are taken relative to the file that names them.

>>> from fastlearn.config import get_config
>>> cfg = get_config()
>>> cfg.path("data")          # doctest: +SKIP
PosixPath('/home/me/.fastlearn/data')
>>> cfg.get("defaults", "bs")
64
"""
from __future__ import annotations

import configparser
import os
import time
from pathlib import Path

from fastlearn.paths import Path as LsPath

DEFAULTS: dict[str, dict[str, str]] = {
    "paths": {
        "data": "~/.fastlearn/data",
        "archive": "~/.fastlearn/archive",
        "models": "models",
        "storage": "~/.fastlearn",
    },
    "defaults": {"bs": "64", "num_workers": "auto", "prefetch_factor": "2", "device": "auto", "precision": "fp32",
                 "flush_denormal": "true", "keep_freed_memory": "true", "max_image_pixels": "178956970"},
    "downloads": {"base_url": "https://s3.amazonaws.com/fast-ai-"},
}
PATH_KEYS_RELATIVE_TO_LEARNER = {"models"}
PRECISIONS = ("fp32", "fp16", "bf16")
_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def user_config_file() -> Path:
    """The per-user config file, ``~/.fastlearn/config.ini``."""
    return Path("~/.fastlearn/config.ini").expanduser()


class Config:
    """The merged configuration. Use :func:`get_config` rather than building one.

    >>> Config().get("defaults", "precision")
    'fp32'
    """

    def __init__(self, files: list[Path] | None = None):
        self.values: dict[str, dict[str, str]] = {s: dict(v) for s, v in DEFAULTS.items()}
        self.origin: dict[tuple[str, str], Path | None] = {}
        self.files: list[Path] = []
        for file in files if files is not None else default_config_files():
            self._read(Path(file))

    def _read(self, file: Path) -> None:
        if not file.exists():
            if file == user_config_file():
                return
            raise FileNotFoundError(
                f"config file {file} (named by FASTLEARN_CONFIG) does not exist; "
                "create it or unset FASTLEARN_CONFIG")
        parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
        try:
            parser.read(file)
        except configparser.Error as error:
            raise ValueError(f"config file {file} is not valid INI: {error}") from error
        for section in parser.sections():
            if section not in DEFAULTS:
                raise ValueError(
                    f"config file {file} has an unknown section [{section}]; "
                    f"expected one of {sorted(DEFAULTS)}")
            for key, value in parser.items(section):
                if key not in DEFAULTS[section]:
                    raise ValueError(
                        f"config file {file} has an unknown key {key!r} in [{section}]; "
                        f"expected one of {sorted(DEFAULTS[section])}")
                self.values[section][key] = value
                self.origin[(section, key)] = file.parent.resolve()
        self.files.append(file)

    def get(self, section: str, key: str):
        """A value, converted: ints for ``bs``/``num_workers``/``prefetch_factor`` (``"auto"`` stays a string),
        a bool for ``flush_denormal`` and ``keep_freed_memory``, an int or None for ``max_image_pixels``."""
        try:
            value = self.values[section][key]
        except KeyError:
            raise KeyError(f"no config key [{section}] {key}; known: "
                           f"{ {s: sorted(v) for s, v in self.values.items()} }") from None
        if section == "defaults" and key in ("bs", "num_workers", "prefetch_factor") and value != "auto":
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"config [{section}] {key} = {value!r} is not an integer "
                                 f"(from {self.origin.get((section, key), 'defaults')})") from None
        if section == "defaults" and key == "precision" and value not in PRECISIONS:
            raise ValueError(f"config [defaults] precision = {value!r}; expected one of {PRECISIONS}")
        if section == "defaults" and key == "max_image_pixels":
            return _pixel_limit(value, self.origin.get((section, key), "defaults"))
        if section == "defaults" and key in ("flush_denormal", "keep_freed_memory"):
            if value.lower() not in _BOOLEANS:
                raise ValueError(f"config [defaults] {key} = {value!r}; expected true or false "
                                 f"(from {self.origin.get((section, key), 'defaults')})")
            return _BOOLEANS[value.lower()]
        return value

    def path(self, key: str) -> LsPath:
        """A ``[paths]`` entry as an absolute path (``models`` stays relative: it is under learn.path)."""
        raw = self.get("paths", key)
        path = Path(raw).expanduser()
        if key in PATH_KEYS_RELATIVE_TO_LEARNER and not path.is_absolute():
            return LsPath(path)
        if not path.is_absolute():
            base = self.origin.get(("paths", key)) or Path.cwd()
            path = base / path
        return LsPath(path)

    def __repr__(self) -> str:
        return f"Config(files={[str(f) for f in self.files]}, values={self.values})"


MIN_IMAGE_PIXELS_LIMIT = 1_000_000


def _pixel_limit(value: str, origin) -> int | None:
    """``max_image_pixels``: an integer of at least a million pixels, or ``none`` for no limit."""
    if value.strip().lower() == "none":
        return None
    try:
        limit = int(value.replace("_", ""))
    except ValueError:
        limit = 0
    if limit < MIN_IMAGE_PIXELS_LIMIT:
        raise ValueError(f"config [defaults] max_image_pixels = {value!r} (from {origin}); expected a whole number of "
                         f"pixels of at least {MIN_IMAGE_PIXELS_LIMIT:_}, or none for no limit")
    return limit


def default_config_files() -> list[Path]:
    files = [user_config_file()]
    if os.environ.get("FASTLEARN_CONFIG"):
        files.append(Path(os.environ["FASTLEARN_CONFIG"]).expanduser())
    return files


def get_config() -> Config:
    """Read the configuration now (a file changed since the last call is read again, so tests
    can swap them).

    >>> get_config().get("defaults", "device")
    'auto'
    """
    global _last
    key = _signature()
    if _last is not None and key is not None and _last[0] == key:
        return _last[1]
    config = Config(default_config_files())
    _last = (key, config) if key is not None else None
    return config


# the files' identities and times when last read, and what they gave; reused only while no file
# changed: written less than _SETTLE_S before the read, a change in the same timestamp tick could
# go unseen, so such a read is not kept (the next call reads again)
_last: tuple[tuple, Config] | None = None
_SETTLE_S = 2.0


def _signature() -> tuple | None:
    """What identifies the config files' contents now (path, device, inode, size, times), or None
    when one was changed too recently to be told apart from a later change."""
    key, now = [], time.time()
    named = os.environ.get("FASTLEARN_CONFIG")
    for file in (os.path.expanduser("~/.fastlearn/config.ini"), os.path.expanduser(named) if named else None):
        if file is None:
            continue
        try:
            info = os.stat(file)
        except OSError:
            key.append((file, None))
            continue
        if now - max(info.st_mtime, info.st_ctime) < _SETTLE_S:
            return None
        key.append((file, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return tuple(key)
