"""The course's dataset URLs and ``untar_data``: download, check, extract, reuse.

``untar_data(URLs.MNIST_SAMPLE)`` downloads the archive into the ``[paths] archive`` folder of
the config (with a progress bar, into a ``.part`` file that a later call resumes), checks its
size and, when given, its SHA-256, extracts it into the ``[paths] data`` folder atomically and
returns that folder. A second call finds the folder and touches no network.

The URLs under the default base (``URLs.URL``) follow ``[downloads] base_url`` in the config,
read at download time, so a company mirror needs one line in ``~/.fastlearn/config.ini``::

    [downloads]
    base_url = https://mirror.example.com/fast-ai-

Without a network, place the archive by hand at ``URLs.path(url)`` (the error message prints
the exact path), or use the built-in datasets of ``fastlearn.datasets``
(``builtin_path(URLs.MNIST_SAMPLE)``), which have the same layout but other data;
``untar_data`` itself never substitutes other data for the URL it is given.

>>> from fastlearn.external import URLs, untar_data
>>> path = untar_data(URLs.MNIST_SAMPLE)   # doctest: +SKIP
>>> path.ls()                              # doctest: +SKIP
(#3) [Path('labels.csv'), Path('train'), Path('valid')]
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile
import urllib.parse

from fastlearn.archive import archive_stem, extract_archive
from fastlearn.config import get_config
from fastlearn.download import download_url, file_sha256
from fastlearn.paths import Path


class URLs:
    """The course's dataset URLs, as plain strings, and :meth:`path` for their local archive.

    >>> URLs.MNIST_SAMPLE
    'https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz'
    >>> URLs.path(URLs.MNIST_SAMPLE).name
    'mnist_sample.tgz'
    """

    URL = "https://s3.amazonaws.com/fast-ai-"
    S3_IMAGE = f"{URL}imageclas/"
    S3_IMAGELOC = f"{URL}imagelocal/"
    S3_NLP = f"{URL}nlp/"
    S3_COCO = f"{URL}coco/"
    S3_MODEL = f"{URL}modelzoo/"
    SAMPLE = f"{URL}sample/"

    # samples used throughout the course
    ADULT_SAMPLE = f"{SAMPLE}adult_sample.tgz"
    BIWI_SAMPLE = f"{SAMPLE}biwi_sample.tgz"
    CIFAR = f"{SAMPLE}cifar10.tgz"
    HUMAN_NUMBERS = f"{SAMPLE}human_numbers.tgz"
    IMDB_SAMPLE = f"{SAMPLE}imdb_sample.tgz"
    ML_SAMPLE = f"{SAMPLE}movie_lens_sample.tgz"
    MNIST_SAMPLE = f"{SAMPLE}mnist_sample.tgz"
    MNIST_TINY = f"{SAMPLE}mnist_tiny.tgz"
    PLANET_SAMPLE = f"{SAMPLE}planet_sample.tgz"
    PLANET_TINY = f"{SAMPLE}planet_tiny.tgz"
    CAMVID_TINY = f"{URL}camvid_tiny.tgz"
    # image classification
    MNIST = f"{S3_IMAGE}mnist_png.tgz"
    MNIST_VAR_SIZE_TINY = f"{S3_IMAGE}mnist_var_size_tiny.tgz"
    PETS = f"{S3_IMAGE}oxford-iiit-pet.tgz"
    IMAGENETTE = f"{S3_IMAGE}imagenette2.tgz"
    IMAGENETTE_160 = f"{S3_IMAGE}imagenette2-160.tgz"
    IMAGENETTE_320 = f"{S3_IMAGE}imagenette2-320.tgz"
    IMAGEWOOF = f"{S3_IMAGE}imagewoof2.tgz"
    IMAGEWOOF_160 = f"{S3_IMAGE}imagewoof2-160.tgz"
    IMAGEWOOF_320 = f"{S3_IMAGE}imagewoof2-320.tgz"
    CIFAR_100 = f"{S3_IMAGE}cifar100.tgz"
    FLOWERS = f"{S3_IMAGE}oxford-102-flowers.tgz"
    FOOD = f"{S3_IMAGE}food-101.tgz"
    CARS = f"{S3_IMAGE}stanford-cars.tgz"
    CALTECH_101 = f"{S3_IMAGE}caltech_101.tgz"
    # localization, segmentation, multi-label
    BIWI_HEAD_POSE = f"{S3_IMAGELOC}biwi_head_pose.tgz"
    CAMVID = f"{S3_IMAGELOC}camvid.tgz"
    PASCAL_2007 = f"{S3_IMAGELOC}pascal_2007.tgz"
    PASCAL_2012 = f"{S3_IMAGELOC}pascal_2012.tgz"
    COCO_SAMPLE = f"{S3_COCO}coco_sample.tgz"
    COCO_TINY = f"{S3_COCO}coco_tiny.tgz"
    # text
    IMDB = f"{S3_NLP}imdb.tgz"
    WIKITEXT = f"{S3_NLP}wikitext-103.tgz"
    WIKITEXT_TINY = f"{S3_NLP}wikitext-2.tgz"
    AG_NEWS = f"{S3_NLP}ag_news_csv.tgz"
    YELP_REVIEWS_POLARITY = f"{S3_NLP}yelp_review_polarity_csv.tgz"
    # collaborative filtering (hosted by GroupLens, not under the base URL)
    ML_100k = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"

    @staticmethod
    def path(url: str = ".", c_key: str = "archive") -> Path:
        """Where ``url`` lives locally: its archive file (``c_key='archive'``), or the folder it
        extracts to under another ``[paths]`` key (``c_key='data'``). Without a URL: the folder.

        >>> URLs.path(URLs.PETS).name
        'oxford-iiit-pet.tgz'
        >>> URLs.path(URLs.PETS, c_key="data").name
        'oxford-iiit-pet'
        """
        folder = get_config().path(c_key)
        if url in (".", ""):
            return Path(folder)
        name = url_file_name(url)
        return Path(folder / name) if c_key == "archive" else Path(folder / archive_stem(name))


def url_file_name(url: str) -> str:
    """The last path component of ``url``: the archive's file name.

    >>> url_file_name("https://example.com/a/mnist_sample.tgz?x=1")
    'mnist_sample.tgz'
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a string like URLs.MNIST_SAMPLE, got {type(url).__name__} {url!r}")
    name = urllib.parse.urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise ValueError(f"url {url!r} names no file; expected a URL ending in an archive name "
                         "such as .../mnist_sample.tgz")
    return name


def resolve_url(url: str) -> str:
    """``url`` with the default base (``URLs.URL``) replaced by ``[downloads] base_url``.

    >>> resolve_url(URLs.MNIST_SAMPLE)   # with the default config
    'https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz'
    """
    base = get_config().get("downloads", "base_url")
    if url.startswith(URLs.URL) and base != URLs.URL:
        return base + url[len(URLs.URL):]
    return url


def untar_data(url: str, archive: str | os.PathLike | None = None,
               data: str | os.PathLike | None = None, c_key: str = "data",
               force_download: bool = False, base: str | os.PathLike | None = None,
               *, sha256: str | None = None) -> Path:
    """Download ``url`` (once), extract it (once) and return the extracted folder.

    - ``archive``: folder for the downloaded archive (default: ``[paths] archive``);
    - ``data``: folder to extract into (default: the ``[paths]`` entry named by ``c_key``);
    - ``base``: a root folder used instead of the config: archives in ``base/archive``, data in
      ``base/<c_key>``;
    - ``force_download``: download and extract again, replacing what is there;
    - ``sha256``: the archive's expected SHA-256; a mismatch deletes the download and raises.

    An archive whose content is one folder becomes ``<data>/<archive name without extension>``;
    otherwise its members go into that folder. A folder already there is returned without any
    network access. An archive placed by hand at ``URLs.path(url)`` is extracted, not downloaded.

    >>> path = untar_data(URLs.MNIST_SAMPLE)   # doctest: +SKIP
    >>> sorted(p.name for p in path.ls())      # doctest: +SKIP
    ['labels.csv', 'train', 'valid']
    """
    name = url_file_name(url)
    config = get_config()
    if base is not None:
        base_folder = pathlib.Path(base).expanduser()
        archive_folder = pathlib.Path(archive) if archive is not None else base_folder / "archive"
        data_folder = pathlib.Path(data) if data is not None else base_folder / c_key
    else:
        archive_folder = pathlib.Path(archive) if archive is not None else config.path("archive")
        data_folder = pathlib.Path(data) if data is not None else config.path(c_key)
    archive_file = archive_folder.expanduser() / name
    dest = data_folder.expanduser() / archive_stem(name)
    if dest.is_dir() and not force_download:
        return Path(dest)
    archive_file.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(archive_file.with_name(f".{name}.lock")):
        if dest.is_dir() and not force_download:  # another process finished meanwhile
            return Path(dest)
        if force_download or not archive_file.is_file():
            download_url(resolve_url(url), archive_file, sha256=sha256)
        elif sha256 is not None and file_sha256(archive_file) != sha256.lower():
            raise ValueError(
                f"the archive {archive_file} has SHA-256 {file_sha256(archive_file)}, expected "
                f"{sha256}; delete it or call untar_data({url!r}, force_download=True)")
        replace_folder(archive_file, dest)
    return Path(dest)


@contextlib.contextmanager
def exclusive(lock_file: pathlib.Path):
    """Hold an exclusive lock on ``lock_file`` (POSIX ``flock``) so that processes sharing a
    data folder, such as the ranks of a distributed run, download and extract one at a time.
    Where ``fcntl`` does not exist (Windows) it does not lock.

    >>> with exclusive(pathlib.Path("/tmp/.example.lock")):   # doctest: +SKIP
    ...     pass
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_folder(archive_file: pathlib.Path, dest: pathlib.Path) -> None:
    """Extract ``archive_file`` into a hidden temporary folder beside ``dest`` and rename it to
    ``dest`` (replacing an older ``dest``), so that ``dest`` exists only when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.extracting-", dir=dest.parent))
    try:
        extract_archive(archive_file, work)
        entries = list(work.iterdir())
        content = entries[0] if len(entries) == 1 and entries[0].is_dir() else work
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            os.rename(dest, old)
        try:
            os.rename(content, dest)
        except OSError:
            if old is not None:
                os.rename(old, dest)
            if not dest.is_dir():
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
