"""Housekeeping for folders of images: download them, shrink big ones (``verify_images`` lives in
``fastlearn.vision.image``).

>>> resize_images(path / "raw", max_size=400, dest=path / "small", recurse=True)   # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from fastlearn.data.getters import get_image_files
from fastlearn.foundation import L
from fastlearn.vision.decode import upright

RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
              "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


def resize_image(file: str | os.PathLike, dest: str | os.PathLike, src: str | os.PathLike | None = None,
                 max_size: int | None = None, n_channels: int = 3, ext: str | None = None,
                 img_format: str | None = None, resample: str = "bilinear") -> Path:
    """Write ``file`` into ``dest`` (keeping its path relative to ``src``), no side above ``max_size``.

    ``n_channels=3`` converts to RGB (1: greyscale); ``ext`` changes the extension and
    ``img_format`` the format PIL writes. Returns the written path.
    """
    file = Path(file)
    relative = file.relative_to(src) if src is not None else Path(file.name)
    target = Path(dest) / relative
    if ext is not None:
        target = target.with_suffix(ext if ext.startswith(".") else f".{ext}")
    if resample not in RESAMPLING:
        raise ValueError(f"resample={resample!r}; expected one of {sorted(RESAMPLING)}")
    with Image.open(file) as opened:
        image = upright(opened)  # the copy has no EXIF orientation: its pixels are turned instead
        mode = {3: "RGB", 1: "L"}.get(n_channels)
        if mode is not None and image.mode != mode:
            image = image.convert(mode)
        if max_size is not None and max(image.size) > max_size:
            ratio = max_size / max(image.size)
            size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
            image = image.resize(size, RESAMPLING[resample])
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, format=img_format)
    return target


def resize_images(path: str | os.PathLike, max_size: int | None = None, dest: str | os.PathLike = ".",
                  recurse: bool = False, n_channels: int = 3, ext: str | None = None,
                  img_format: str | None = None, resample: str = "bilinear") -> L:
    """Copy every image under ``path`` into ``dest``, shrunk so no side exceeds ``max_size``.

    With ``recurse`` the subfolders are walked and their layout kept under ``dest``. Files that
    cannot be read are skipped and listed in the error raised at the end. Returns the written paths.

    >>> resize_images(path / "raw", max_size=400, dest=path / "small", recurse=True)   # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"resize_images: {path} is not a folder; pass the folder holding the images")
    dest = Path(dest)
    written, failed = L(), []
    for file in get_image_files(path, recurse=recurse):
        try:
            written.append(resize_image(file, dest, src=path, max_size=max_size, n_channels=n_channels, ext=ext,
                                        img_format=img_format, resample=resample))
        except (OSError, ValueError, SyntaxError) as error:
            failed.append(f"{file} ({type(error).__name__})")
    if failed:
        raise ValueError(f"resize_images could not read {len(failed)} file(s): {failed[:5]}; find them with "
                         "verify_images(get_image_files(path)) and remove them")
    return written


def download_images(dest: str | os.PathLike, url_file: str | os.PathLike | None = None, urls=None,
                    max_pics: int = 1000, n_workers: int = 8, timeout: float = 4.0,
                    preserve_filename: bool = False) -> L:
    """Download images from ``urls`` (or the lines of ``url_file``) into the folder ``dest``, at
    most ``max_pics``, on ``n_workers`` threads (chapter 2 gathers its bears this way).

    Files are named ``00000000.jpg``, ``00000001.png``... (the URL's extension, ``.jpg`` when it
    has none), or keep the URL's name with ``preserve_filename``. URLs that fail (missing,
    timed out) are skipped with one warning naming them, as web searches give some dead links;
    run ``verify_images`` afterwards to find files that are not images. Returns the written paths.

    >>> download_images(path/"grizzly", urls=results.attrgot("contentUrl"))   # doctest: +SKIP
    """
    import urllib.parse
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from fastlearn.download import download_url
    if urls is None:
        if url_file is None:
            raise ValueError("download_images needs urls= (a list of URLs) or url_file= (a file of one URL per line)")
        urls = [line.strip() for line in Path(url_file).read_text().splitlines() if line.strip()]
    urls = list(urls)[:max_pics]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)

    def name_for(i: int, url: str) -> str:
        name = Path(urllib.parse.urlparse(url).path).name
        suffix = Path(name).suffix.lower()
        if preserve_filename and name:
            return name
        return f"{i:08d}{suffix if suffix in ('.jpg', '.jpeg', '.png', '.gif', '.bmp', '.webp') else '.jpg'}"

    def fetch(i_url: tuple[int, str]):
        i, url = i_url
        try:
            return download_url(url, dest / name_for(i, url), show_progress=False, timeout=timeout)
        except (ConnectionError, OSError, ValueError) as error:
            return f"{url} ({type(error).__name__})"
    with ThreadPoolExecutor(max(1, n_workers)) as pool:
        results = list(pool.map(fetch, enumerate(urls)))
    failed = [r for r in results if isinstance(r, str)]
    if failed:
        warnings.warn(f"download_images: {len(failed)} of {len(urls)} URL(s) could not be downloaded and were "
                      f"skipped: {failed[:3]}{'...' if len(failed) > 3 else ''}", stacklevel=2)
    return L([Path(r) for r in results if not isinstance(r, str)])
