"""Downloads that would be kept incomplete or spliced from two versions of a file, against a real
HTTP server on 127.0.0.1 (``tests/archive_server.py``)."""
from __future__ import annotations

import pytest
from archive_server import ArchiveServer

from fastlearn.download import download_url

OLD = bytes(range(256)) * 400
NEW = bytes(reversed(range(256))) * 400  # the same length, other bytes


@pytest.fixture
def server():
    archive_server = ArchiveServer()
    yield archive_server
    archive_server.stop()


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_body_without_length_cut_halfway_is_not_kept_and_resumes(server, tmp_path):
    server.files["/data.bin"] = OLD
    server.mode = "no-length-cut"  # no Content-Length: the connection closing is the only end
    dest = tmp_path / "data.bin"
    with pytest.raises(ConnectionError, match="sent no length and has more") as error:
        download_url(server.url("/data.bin"), dest, show_progress=False)
    assert not dest.exists()
    part = tmp_path / "data.bin.part"
    assert str(part) in str(error.value) and 0 < part.stat().st_size < len(OLD)
    kept = part.stat().st_size
    server.mode = "normal"
    assert download_url(server.url("/data.bin"), dest, show_progress=False).read_bytes() == OLD
    assert server.requests[-1][1] == f"bytes={kept}-"
    assert leftovers(tmp_path) == ["data.bin"]


def test_a_complete_body_without_length_is_confirmed_and_kept(server, tmp_path):
    server.files["/data.bin"] = OLD
    server.mode = "no-length"
    dest = download_url(server.url("/data.bin"), tmp_path / "data.bin", show_progress=False)
    assert dest.read_bytes() == OLD
    assert server.requests[-1][1] == f"bytes={len(OLD)}-"  # asked for anything past the end: nothing
    assert leftovers(tmp_path) == ["data.bin"]


@pytest.mark.parametrize("honour_if_range", [True, False], ids=["if-range", "etag-compared"])
def test_a_resume_after_the_file_changed_downloads_the_new_file_whole(server, tmp_path, honour_if_range):
    server.validators, server.honour_if_range = True, honour_if_range
    server.files["/data.bin"] = OLD
    server.mode = "truncate"
    dest = tmp_path / "data.bin"
    with pytest.raises(ConnectionError, match="resume"):
        download_url(server.url("/data.bin"), dest, show_progress=False)
    server.files["/data.bin"], server.mode = NEW, "normal"  # replaced on the server meanwhile
    assert download_url(server.url("/data.bin"), dest, show_progress=False).read_bytes() == NEW
    # the resume request is answered with the whole file (If-Range), or its range is refused by
    # comparing the ETag and the whole file asked for
    assert len(server.requests) == (2 if honour_if_range else 3)
    assert leftovers(tmp_path) == ["data.bin"]


def test_a_resume_without_validators_checks_the_size(server, tmp_path):
    server.files["/data.bin"] = OLD
    server.mode = "truncate"
    dest = tmp_path / "data.bin"
    with pytest.raises(ConnectionError):
        download_url(server.url("/data.bin"), dest, show_progress=False)
    server.files["/data.bin"], server.mode = NEW + b"longer", "normal"
    assert download_url(server.url("/data.bin"), dest, show_progress=False).read_bytes() == NEW + b"longer"


def test_a_resume_of_an_unchanged_file_asks_only_for_the_rest(server, tmp_path):
    server.validators = True
    server.files["/data.bin"] = OLD
    server.mode = "truncate"
    dest = tmp_path / "data.bin"
    with pytest.raises(ConnectionError):
        download_url(server.url("/data.bin"), dest, show_progress=False)
    kept = (tmp_path / "data.bin.part").stat().st_size
    server.mode = "normal"
    assert download_url(server.url("/data.bin"), dest, show_progress=False).read_bytes() == OLD
    assert server.requests[-1][1] == f"bytes={kept}-" and len(server.requests) == 2


def test_a_partial_file_of_unknown_origin_is_not_continued(server, tmp_path):
    server.files["/data.bin"] = OLD
    (tmp_path / "data.bin.part").write_bytes(NEW[:1000])  # no record of where it came from
    dest = download_url(server.url("/data.bin"), tmp_path / "data.bin", show_progress=False)
    assert dest.read_bytes() == OLD and server.requests == [("/data.bin", None)]
