"""Images: PILImage / PILImageBW, decoding to tensors, bad files named, show_image."""
import io
import os

import numpy as np
import PIL.Image
import pytest
import torch

from fastlearn.vision.image import (LoadMask, PILImage, PILImageBW, image2tensor, imagenet_stats, load_image,
                                    show_image, verify_images)


@pytest.fixture
def png(tmp_path):
    array = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    path = tmp_path / "img.png"
    PIL.Image.fromarray(array).save(path)
    return path, array


def test_pil_image_create_from_every_source(png):
    path, array = png
    from_path = PILImage.create(path)
    assert isinstance(from_path, PILImage) and from_path.shape == (6, 8) and from_path.mode == "RGB"
    assert np.array_equal(np.asarray(from_path), array)
    assert np.array_equal(np.asarray(PILImage.create(path.read_bytes())), array)
    assert np.array_equal(np.asarray(PILImage.create(array)), array)
    assert np.array_equal(np.asarray(PILImage.create(torch.from_numpy(array).permute(2, 0, 1))), array)
    grey = PILImageBW.create(path)
    assert grey.mode == "L" and image2tensor(grey).shape == (1, 6, 8)
    thumb = from_path.to_thumb(4)
    assert isinstance(thumb, PILImage) and max(thumb.size) == 4
    with pytest.raises(TypeError, match="cannot open int"):
        PILImage.create(3)


def test_load_image_decodes_to_uint8_chw(png, tmp_path):
    path, array = png
    t = load_image(path)
    assert t.dtype == torch.uint8 and t.shape == (3, 6, 8)
    assert torch.equal(t, torch.from_numpy(array).permute(2, 0, 1))
    assert load_image(path, mode="L").shape == (1, 6, 8)
    bmp = tmp_path / "img.bmp"  # a format decoded by PIL
    PIL.Image.fromarray(array).save(bmp)
    assert torch.equal(load_image(bmp), t)
    assert torch.equal(load_image(PIL.Image.fromarray(array)), t)
    assert load_image(np.zeros((2, 3), dtype=np.uint8)).shape == (3, 2, 3)


def test_bad_image_files_are_named(png, tmp_path):
    path, _ = png
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(path.read_bytes()[:60])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for bad in (truncated, text):
        with pytest.raises(ValueError, match=f"cannot decode image {bad}.*verify_images"):
            load_image(bad)
        with pytest.raises(ValueError, match=str(bad)):
            PILImage.create(bad)
    with pytest.raises(FileNotFoundError, match="missing.png does not exist"):
        load_image(tmp_path / "missing.png")
    assert verify_images([path, truncated, text]) == [truncated, text]


def test_masks_and_show_image(tmp_path):
    codes = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    PIL.Image.fromarray(codes).save(tmp_path / "mask.png")
    assert LoadMask()(tmp_path / "mask.png").tolist() == codes.tolist()
    buffer = io.BytesIO()
    PIL.Image.fromarray(codes).save(buffer, format="PNG")
    assert LoadMask()(buffer.getvalue()).tolist() == codes.tolist()
    ax = show_image(torch.rand(3, 4, 4), title="noise")
    assert ax.get_title() == "noise" and len(ax.images) == 1
    assert len(imagenet_stats) == 2 and imagenet_stats[0][0] == pytest.approx(0.485)


def test_pil_image_create_from_an_upload_file_like_or_memoryview(png):
    path, array = png
    for source in (io.BytesIO(path.read_bytes()), memoryview(path.read_bytes()), open(path, "rb")):
        img = PILImage.create(source)
        assert isinstance(img, PILImage) and np.array_equal(np.asarray(img), array)
    with pytest.raises(ValueError, match="cannot decode image given as bytes"):
        PILImage.create(io.BytesIO(b"not an image"))


def test_tensor_image_shows_itself_and_stays_out_of_the_model():
    from fastlearn.vision.image import TensorImage
    t = TensorImage(torch.zeros(3, 4, 5, dtype=torch.uint8))
    assert isinstance(t, torch.Tensor) and t.shape == (3, 4, 5)
    ax = t.show(title="decoded")
    assert ax.get_title() == "decoded" and ax.images[0].get_array().shape[:2] == (4, 5)
    assert type(t.float() / 255) is torch.Tensor                # operations give plain tensors
    assert type(torch.nn.Conv2d(3, 1, 1)(TensorImage(torch.zeros(1, 3, 4, 4)))) is torch.Tensor


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("shape", [(6, 8, 3), (9, 5, 3), (7, 7)])
def test_load_image_gives_torchvisions_pixels_for_files_bytes_and_bytearrays(tmp_path, suffix, shape):
    from torchvision.io import ImageReadMode, decode_image
    array = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / f"img{suffix}"
    PIL.Image.fromarray(array).save(path)
    raw = path.read_bytes()
    for mode, read_mode in (("RGB", ImageReadMode.RGB), ("L", ImageReadMode.GRAY)):
        expected = decode_image(str(path), mode=read_mode)
        assert expected.shape[0] == (3 if mode == "RGB" else 1)
        for source in (path, str(path), raw, bytearray(raw)):
            got = load_image(source, mode=mode)
            assert got.dtype == torch.uint8 and torch.equal(got, expected)
    given = bytearray(raw)
    load_image(given)
    assert given == raw  # decoded where it lies, not changed


def test_empty_files_and_folders_are_refused_naming_them(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=f"cannot decode image {empty}: ValueError: the file is empty"):
        load_image(empty)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(ValueError, match=f"cannot read image {folder}: it is a folder"):
        load_image(folder)


def test_a_file_read_in_pieces_or_grown_since_its_size_was_taken_is_read_whole(png, monkeypatch):
    from fastlearn.vision import decode as image_module
    path, array = png
    expected = torch.from_numpy(array).permute(2, 0, 1)
    monkeypatch.setattr(image_module, "_READV", lambda fd, buffers: os.readv(fd, [memoryview(buffers[0])[:10]]))
    assert torch.equal(load_image(path), expected)  # a first read of 10 bytes: the rest follows
    class SmallerSize:  # the module's os, whose fstat says the file has 5 bytes (it grew since)
        def __getattr__(self, name):
            return getattr(os, name)

        def fstat(self, fd):
            info = os.fstat(fd)
            return os.stat_result((*info[:6], 5, *info[7:]))

    monkeypatch.setattr(image_module, "os", SmallerSize())
    monkeypatch.setattr(image_module, "_READV", os.readv)
    assert torch.equal(load_image(path), expected)  # fstat said 5 bytes: read on to the end
