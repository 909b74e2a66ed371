"""Safe extraction of downloaded archives (``.tgz``, ``.tar.gz``, ``.tar``, ``.tar.bz2``,
``.tar.xz``, ``.zip``) for :func:`fastlearn.external.untar_data`.

Every member is checked before anything is written: an absolute name, a ``..`` that climbs out,
a link pointing outside the destination or a device file is refused with a ``ValueError`` that
names the member. A corrupt or truncated archive raises a ``ValueError`` naming the file.

>>> from fastlearn.archive import archive_stem
>>> archive_stem("imagenette2-160.tgz")
'imagenette2-160'
"""
from __future__ import annotations

import lzma
import os
import pathlib
import tarfile
import zipfile
import zlib

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
# what a damaged archive raises; a bad gzip/bzip2 stream is an OSError without an errno
# (a full disk or a permission problem has one, and is not reported as a corrupt archive)
CORRUPT_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError)


def archive_stem(name: str) -> str:
    """The archive's file name without its archive suffix: the folder it extracts to.

    >>> archive_stem("mnist_sample.tgz"), archive_stem("ml-100k.zip"), archive_stem("a.tar.xz")
    ('mnist_sample', 'ml-100k', 'a')
    """
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return pathlib.PurePath(name).stem or name


def _inside(root: pathlib.Path, target: pathlib.Path) -> bool:
    try:
        target.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def check_member_path(root: pathlib.Path, name: str, archive: pathlib.Path) -> None:
    """Raise ``ValueError`` if the member ``name`` would land outside ``root``.

    >>> check_member_path(pathlib.Path("/tmp/x"), "a/b.png", pathlib.Path("a.tgz"))
    """
    root = root.resolve()
    if pathlib.PurePosixPath(name).is_absolute() or pathlib.PureWindowsPath(name).drive \
            or not _inside(root, root / name):
        raise ValueError(
            f"archive {archive} has a member {name!r} that would be written outside the "
            f"destination {root}; refusing to extract it. Only use archives from a source "
            "you trust, and delete this one")


def _check_tar(tar: tarfile.TarFile, root: pathlib.Path, archive: pathlib.Path) -> None:
    for member in tar.getmembers():
        check_member_path(root, member.name, archive)
        if member.issym():
            link_target = (root / member.name).parent / member.linkname
            if os.path.isabs(member.linkname) or not _inside(root.resolve(), link_target):
                raise ValueError(
                    f"archive {archive} has a symbolic link {member.name!r} -> "
                    f"{member.linkname!r} that points outside the destination; refusing to "
                    "extract it")
        elif member.islnk():
            check_member_path(root, member.linkname, archive)
        elif not (member.isfile() or member.isdir()):
            raise ValueError(
                f"archive {archive} has a member {member.name!r} that is neither a file, a "
                "folder nor a link (a device or pipe); refusing to extract it")


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> pathlib.Path:
    """Extract ``archive`` (tar in any compression, or zip) into the existing folder ``dest``.

    >>> extract_archive("mnist_sample.tgz", "/tmp/out")   # doctest: +SKIP
    PosixPath('/tmp/out')
    """
    archive, dest = pathlib.Path(archive), pathlib.Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist; download it first")
    hint = (f"delete {archive} and call untar_data again (or pass force_download=True) to "
            "download a fresh copy")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                for name in zipped.namelist():
                    check_member_path(dest, name, archive)
                bad = zipped.testzip()
                if bad is not None:
                    raise zipfile.BadZipFile(f"member {bad!r} fails its CRC check")
                zipped.extractall(dest)
            return dest
        with tarfile.open(archive, "r:*") as tar:
            _check_tar(tar, dest, archive)
            tar.extractall(dest, filter="data")
    except (*CORRUPT_ERRORS, OSError) as error:
        if isinstance(error, OSError) and error.errno is not None:
            raise
        raise ValueError(f"archive {archive} is corrupt, truncated or not a tar/zip archive "
                         f"({type(error).__name__}: {error}); {hint}") from error
    return dest

