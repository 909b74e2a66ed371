"""untar_data / download_url / URLs against a real HTTP server on 127.0.0.1 serving generated
archives (``tests/archive_server.py``)."""
from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile

import pytest
from archive_server import ArchiveServer

import fastlearn.external as external
from fastlearn.download import download_url
from fastlearn.external import URLs, untar_data
from fastlearn.paths import Path


def make_tgz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, content in members.items():
            zipped.writestr(name, content)
    return buffer.getvalue()


SAMPLE = {
    "mnist_sample/labels.csv": b"name,label\ntrain/3/1.png,0\ntrain/7/2.png,1\n",
    "mnist_sample/train/3/1.png": b"three" * 5000,
    "mnist_sample/train/7/2.png": bytes(range(256)) * 400,
    "mnist_sample/valid/3/9.png": b"nine",
}


@pytest.fixture
def server():
    archive_server = ArchiveServer()
    yield archive_server
    archive_server.stop()


def hidden_leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.exists() else []


def test_untar_data_downloads_extracts_and_returns_the_folder(config_tmp, server):
    server.files["/sample/mnist_sample.tgz"] = make_tgz(SAMPLE)
    url = server.url("/sample/mnist_sample.tgz")
    path = untar_data(url, force_download=False)
    data = config_tmp.path("data")
    assert path == data / "mnist_sample" and isinstance(path, Path)
    assert [p.name for p in path.ls()] == ["labels.csv", "train", "valid"]
    assert (path / "train" / "7" / "2.png").read_bytes() == SAMPLE["mnist_sample/train/7/2.png"]
    archive = URLs.path(url)
    assert archive == config_tmp.path("archive") / "mnist_sample.tgz"
    assert archive.read_bytes() == server.files["/sample/mnist_sample.tgz"]
    assert not archive.with_name("mnist_sample.tgz.part").exists()
    assert hidden_leftovers(data) == []
    assert URLs.path(url, c_key="data") == path


def test_download_shows_a_progress_bar_only_when_asked(config_tmp, server, capsys, tmp_path):
    server.files["/f.bin"] = b"x" * 300_000
    download_url(server.url("/f.bin"), tmp_path / "a.bin", show_progress=True)
    shown = capsys.readouterr().out
    assert "100.00% [300000/300000" in shown
    download_url(server.url("/f.bin"), tmp_path / "b.bin", show_progress=False)
    assert capsys.readouterr().out == ""
    assert (tmp_path / "b.bin").read_bytes() == b"x" * 300_000


def test_download_url_into_a_folder_uses_the_url_file_name(server, tmp_path):
    server.files["/img/cat.jpg"] = b"meow"
    path = download_url(server.url("/img/cat.jpg"), tmp_path, show_progress=False)
    assert path == tmp_path / "cat.jpg" and path.read_bytes() == b"meow"


def test_second_call_reuses_the_folder_without_network(config_tmp, server):
    server.files["/mnist_sample.tgz"] = make_tgz(SAMPLE)
    url = server.url("/mnist_sample.tgz")
    first = untar_data(url)
    (first / "train" / "3" / "1.png").write_bytes(b"edited")  # a rebuild would undo this
    server.stop()
    second = untar_data(url)
    assert second == first
    assert (second / "train" / "3" / "1.png").read_bytes() == b"edited"
    assert len(server.requests) == 1


def test_archive_placed_by_hand_is_extracted_without_network(config_tmp, server):
    url = server.url("/mnist_sample.tgz")
    server.stop()
    archive = URLs.path(url)
    archive.parent.mkdir(parents=True)
    archive.write_bytes(make_tgz(SAMPLE))
    path = untar_data(url)
    assert (path / "valid" / "3" / "9.png").read_bytes() == b"nine"


def test_network_failure_names_the_url_and_where_to_place_the_archive(config_tmp, server):
    url = server.url("/mnist_sample.tgz")
    server.stop()
    with pytest.raises(ConnectionError) as error:
        untar_data(url)
    message = str(error.value)
    assert url in message and str(URLs.path(url)) in message and "place it at" in message
    assert not (config_tmp.path("data") / "mnist_sample").exists()


def test_missing_file_on_server_reports_the_http_status(config_tmp, server):
    with pytest.raises(ConnectionError, match="HTTP 404"):
        untar_data(server.url("/nothing.tgz"))


def test_checksum_mismatch_deletes_the_download(config_tmp, server):
    archive_bytes = make_tgz(SAMPLE)
    server.files["/mnist_sample.tgz"] = archive_bytes
    url = server.url("/mnist_sample.tgz")
    with pytest.raises(ValueError, match="SHA-256"):
        untar_data(url, sha256="0" * 64)
    assert not URLs.path(url).exists()
    assert not URLs.path(url).with_name("mnist_sample.tgz.part").exists()
    assert not (config_tmp.path("data") / "mnist_sample").exists()
    path = untar_data(url, sha256=hashlib.sha256(archive_bytes).hexdigest())
    assert (path / "labels.csv").exists()


def test_truncated_transfer_keeps_the_part_and_the_next_call_resumes(config_tmp, server):
    archive_bytes = make_tgz(SAMPLE)
    server.files["/mnist_sample.tgz"] = archive_bytes
    url = server.url("/mnist_sample.tgz")
    server.mode = "truncate"
    with pytest.raises(ConnectionError, match="resume") as error:
        untar_data(url)
    part = URLs.path(url).with_name("mnist_sample.tgz.part")
    assert str(part) in str(error.value)
    assert 0 < part.stat().st_size < len(archive_bytes)
    assert not URLs.path(url).exists() and not (config_tmp.path("data") / "mnist_sample").exists()
    kept = part.stat().st_size
    server.mode = "normal"
    path = untar_data(url)
    assert server.requests[-1][1] == f"bytes={kept}-"
    assert URLs.path(url).read_bytes() == archive_bytes
    assert (path / "train" / "7" / "2.png").read_bytes() == SAMPLE["mnist_sample/train/7/2.png"]


def test_resume_against_a_server_without_ranges_downloads_everything_again(config_tmp, server):
    archive_bytes = make_tgz(SAMPLE)
    server.files["/mnist_sample.tgz"] = archive_bytes
    url = server.url("/mnist_sample.tgz")
    part = URLs.path(url).with_name("mnist_sample.tgz.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage that is not a prefix")
    server.mode = "no-range"
    untar_data(url)
    assert URLs.path(url).read_bytes() == archive_bytes


def test_corrupt_archive_raises_and_leaves_no_folder(config_tmp, server):
    server.files["/broken.tgz"] = b"\x1f\x8b\x08\x00" + b"not really gzip" * 50
    server.files["/cut.tgz"] = make_tgz(SAMPLE)[:400]
    for name in ("broken", "cut"):
        with pytest.raises(ValueError, match="corrupt") as error:
            untar_data(server.url(f"/{name}.tgz"))
        assert "force_download=True" in str(error.value)
        assert not (config_tmp.path("data") / name).exists()
    assert hidden_leftovers(config_tmp.path("data")) == []


def test_crash_during_extraction_leaves_nothing_that_counts_as_done(config_tmp, server, monkeypatch):
    server.files["/mnist_sample.tgz"] = make_tgz(SAMPLE)
    url = server.url("/mnist_sample.tgz")
    real_extract = external.extract_archive

    def extract_then_crash(archive, dest):
        real_extract(archive, dest)
        raise KeyboardInterrupt

    monkeypatch.setattr(external, "extract_archive", extract_then_crash)
    with pytest.raises(KeyboardInterrupt):
        untar_data(url)
    data = config_tmp.path("data")
    assert not (data / "mnist_sample").exists() and hidden_leftovers(data) == []
    monkeypatch.setattr(external, "extract_archive", real_extract)
    server.stop()  # the archive is kept, so no second download is needed
    assert [p.name for p in untar_data(url).ls()] == ["labels.csv", "train", "valid"]


@pytest.mark.parametrize("archive_bytes", [
    make_tgz({"ok/a.txt": b"a", "../escaped.txt": b"evil"}),
    make_tgz({"ok/a.txt": b"a"}, links={"ok/link": "../../../escaped.txt"}),
    make_tgz({"/tmp/escaped.txt": b"evil"}),
    make_zip({"ok/a.txt": b"a", "../escaped.txt": b"evil"}),
], ids=["dotdot", "symlink", "absolute", "zip-dotdot"])
def test_members_escaping_the_destination_are_refused(config_tmp, server, archive_bytes):
    suffix = "zip" if archive_bytes[:2] == b"PK" else "tgz"
    server.files[f"/evil.{suffix}"] = archive_bytes
    with pytest.raises(ValueError, match="outside the destination"):
        untar_data(server.url(f"/evil.{suffix}"))
    data = config_tmp.path("data")
    assert not (data / "evil").exists() and not (data.parent / "escaped.txt").exists()
    assert hidden_leftovers(data) == []


def test_zip_with_several_top_level_entries_extracts_into_a_named_folder(config_tmp, server):
    server.files["/ml-100k.zip"] = make_zip({"u.data": b"1\t2\t3\t4\n", "u.item": b"2|Film|"})
    path = untar_data(server.url("/ml-100k.zip"))
    assert path == config_tmp.path("data") / "ml-100k"
    assert sorted(p.name for p in path.ls()) == ["u.data", "u.item"]


def test_concurrent_calls_download_and_extract_once(config_tmp, server):
    server.files["/mnist_sample.tgz"] = make_tgz(SAMPLE)
    url = server.url("/mnist_sample.tgz")
    results = []
    threads = [threading.Thread(target=lambda: results.append(untar_data(url))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert len(server.requests) == 1
    assert [p.name for p in results[0].ls()] == ["labels.csv", "train", "valid"]


def test_force_download_replaces_the_folder(config_tmp, server):
    server.files["/mnist_sample.tgz"] = make_tgz(SAMPLE)
    url = server.url("/mnist_sample.tgz")
    untar_data(url)
    server.files["/mnist_sample.tgz"] = make_tgz({"mnist_sample/new.txt": b"v2"})
    path = untar_data(url, force_download=True)
    assert [p.name for p in path.ls()] == ["new.txt"]
    assert hidden_leftovers(config_tmp.path("data")) == []


def test_base_url_in_the_config_redirects_the_course_urls(tmp_path, monkeypatch, server):
    server.files["/fast-ai-sample/mnist_sample.tgz"] = make_tgz(SAMPLE)
    config = tmp_path / "config.ini"
    config.write_text(f"[paths]\ndata = {tmp_path / 'data'}\narchive = {tmp_path / 'archive'}\n"
                      f"[downloads]\nbase_url = {server.url('/fast-ai-')}\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(config))
    path = untar_data(URLs.MNIST_SAMPLE)
    assert path == tmp_path / "data" / "mnist_sample"
    assert server.requests == [("/fast-ai-sample/mnist_sample.tgz", None)]


def test_base_argument_puts_archive_and_data_under_it(config_tmp, server, tmp_path):
    server.files["/mnist_sample.tgz"] = make_tgz(SAMPLE)
    path = untar_data(server.url("/mnist_sample.tgz"), base=tmp_path / "root")
    assert path == tmp_path / "root" / "data" / "mnist_sample"
    assert (tmp_path / "root" / "archive" / "mnist_sample.tgz").is_file()


def test_urls_are_the_course_urls_and_path_follows_the_config(config_tmp):
    assert URLs.MNIST_SAMPLE == URLs.URL + "sample/mnist_sample.tgz"
    assert URLs.PETS.endswith("imageclas/oxford-iiit-pet.tgz")
    assert URLs.IMAGENETTE_160.endswith("imagenette2-160.tgz")
    assert URLs.ML_100k.endswith("ml-100k.zip")
    assert URLs.path(URLs.IMDB) == config_tmp.path("archive") / "imdb.tgz"
    assert URLs.path(URLs.IMDB, c_key="data") == config_tmp.path("data") / "imdb"
    assert URLs.path() == config_tmp.path("archive")
    with pytest.raises(TypeError, match="url must be a string"):
        untar_data(42)


def test_data_external_reexports_the_same_objects():
    import fastlearn.data.external as data_external
    assert data_external.untar_data is untar_data and data_external.URLs is URLs
    assert data_external.download_url is download_url
