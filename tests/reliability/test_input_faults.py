"""New data that used to be read silently wrong or to fail naming nothing: empty and ambiguous
image arrays, float and 16-bit images, oversized images, key points outside their image, unseen
or missing collab ids, several rows or none given to tabular. Each test goes through the public API."""
from __future__ import annotations

import os
import re
import struct
import warnings
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fastlearn.data.datablock import DataBlock
from fastlearn.data.getters import get_image_files
from fastlearn.data.splitters import RandomSplitter
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.vision.data import ImageBlock, PointBlock
from fastlearn.vision.image import PILImage, image2tensor, load_image
from fastlearn.vision.transforms import Resize


def point_learner(folder, get_y=lambda path: [[4, 8]]):
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    dblock = DataBlock(blocks=(ImageBlock, PointBlock), get_items=get_image_files, get_y=get_y,
                       splitter=RandomSplitter(0.5, seed=0), item_tfms=Resize(16))
    dls = dblock.dataloaders(folder, bs=2, device="cpu", num_workers=0)
    return Learner(dls, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 2)),
                   loss_func=MSELossFlat())


# --- images --------------------------------------------------------------------------------------

def test_an_image_with_no_pixels_is_refused_naming_its_shape(tmp_path):
    learn = point_learner(tmp_path)
    with pytest.raises(ValueError, match=r"shape \(0, 20, 3\)\) is 0x20 pixels .*no pixels"):
        learn.predict(np.zeros((0, 20, 3), np.uint8))
    with pytest.raises(ValueError, match=r"tensor of shape \(3, 5, 0\)\) is 5x0 pixels"):
        load_image(torch.zeros(3, 5, 0))
    with pytest.raises(ValueError, match=r"PIL image of mode RGB\) is 4x0 pixels"):
        load_image(Image.new("RGB", (0, 4)))


def test_the_channels_of_an_array_are_told_by_its_shape_or_the_array_is_refused():
    grey_alpha = np.zeros((20, 20, 2), np.uint8)
    grey_alpha[..., 0], grey_alpha[..., 1] = 90, 255  # grey 90, opaque
    colour = load_image(grey_alpha)
    assert colour.shape == (3, 20, 20) and colour.unique().tolist() == [90]
    assert load_image(grey_alpha, mode="L").shape == (1, 20, 20)
    assert load_image(np.zeros((3, 20, 30), np.uint8)).shape == (3, 20, 30)   # (C, H, W)
    assert load_image(torch.zeros(20, 30, 3)).shape == (3, 20, 30)             # (H, W, C) tensor
    assert load_image(torch.zeros(3, 4, 3)).shape == (3, 4, 3)                 # a tensor is (C, H, W)
    for shape, why in [((3, 20, 3), "both its first and last sizes"), ((20, 20, 20), "neither")]:
        with pytest.raises(ValueError, match=re.escape(f"shape {shape})") + f".*{why}.*C, H, W. tensor .* PIL image"):
            load_image(np.zeros(shape, np.uint8))


def test_a_float_image_holding_nan_is_refused():
    with pytest.raises(ValueError, match=r"shape \(20, 20, 3\)\) holds 1200 NaN and 0 infinite"):
        load_image(np.full((20, 20, 3), np.nan))
    array = np.zeros((20, 20, 3), np.float32)
    array[3, 4, 0] = np.inf
    with pytest.raises(ValueError, match=r"0 NaN and 1 infinite"):
        load_image(torch.from_numpy(array).permute(2, 0, 1))


def test_float_and_16_bit_images_become_the_same_8_bit_image_from_a_file_or_an_object(tmp_path):
    rng = np.random.default_rng(0)
    floats = rng.random((16, 16), dtype=np.float32)
    Image.fromarray(floats).save(tmp_path / "f.tiff")
    expected = torch.from_numpy(np.round(floats * 255).astype(np.uint8))
    for source in (tmp_path / "f.tiff", Image.open(tmp_path / "f.tiff"), floats, torch.from_numpy(floats)):
        assert torch.equal(load_image(source, mode="L")[0], expected), source
    assert np.array_equal(np.asarray(PILImage.create(Image.open(tmp_path / "f.tiff")))[..., 0], expected.numpy())
    sixteen = rng.integers(0, 65536, (16, 16)).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "s.png")
    Image.fromarray(sixteen).save(tmp_path / "s.tiff")
    expected = torch.from_numpy((sixteen >> 8).astype(np.uint8))
    for source in (tmp_path / "s.png", tmp_path / "s.tiff", Image.open(tmp_path / "s.png"), sixteen):
        assert torch.equal(load_image(source)[1], expected), source
    assert torch.equal(image2tensor(Image.open(tmp_path / "s.png")), expected[None])
    Image.fromarray(np.linspace(-1, 3, 256, dtype=np.float32).reshape(16, 16)).save(tmp_path / "outside.tiff")
    with pytest.raises(ValueError, match=r"outside\.tiff\) has float32 pixels from -1 to 3; expected \[0, 1\] or \[0, 255\]"):
        load_image(tmp_path / "outside.tiff")


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header says ``width`` x ``height`` (what a decompression bomb shows)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_an_image_above_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    (tmp_path / "bomb.png").write_bytes(png_claiming(20000, 20000))
    with pytest.raises(ValueError, match=r"bomb\.png is 20000x20000 pixels .*400_000_000 pixels, more than "
                                         r"max_image_pixels = 178_956_970.*raise the limit"):
        load_image(tmp_path / "bomb.png")
    bmp_header = struct.pack("<IiiHHIIiiII", 40, 20000, 10000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    (tmp_path / "bomb.bmp").write_bytes(struct.pack("<2sIHHI", b"BM", 54, 0, 0, 54) + bmp_header)  # PIL decodes BMP
    with pytest.raises(ValueError, match=r"bomb\.bmp was refused by PIL: .*200000000 pixels"):
        load_image(tmp_path / "bomb.bmp")
    # the limit is a setting; an image under it loads
    Image.new("L", (1100, 1000), 7).save(tmp_path / "big.png")
    assert load_image(tmp_path / "big.png").shape == (3, 1000, 1100)
    config = tmp_path / "config.ini"
    config.write_text("[defaults]\nmax_image_pixels = 1000000\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(config))
    with pytest.raises(ValueError, match=r"big\.png is 1100x1000 pixels .*max_image_pixels = 1_000_000"):
        load_image(tmp_path / "big.png")
    config.write_text("[defaults]\nmax_image_pixels = none\n")
    os.utime(config, (0, 0))  # the config is read again when the file changed
    assert load_image(tmp_path / "big.png").shape == (3, 1000, 1100)
    config.write_text("[defaults]\nmax_image_pixels = 10\n")
    os.utime(config, (1, 1))
    with pytest.raises(ValueError, match=r"max_image_pixels = '10'.*at least 1_000_000, or none"):
        load_image(tmp_path / "big.png")


def test_a_photo_with_an_exif_orientation_is_turned_as_viewers_show_it(tmp_path):
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:5] = 200  # a bright top edge; orientation 6 (a phone held upright) turns it to the right edge
    photo = Image.fromarray(pixels)
    exif = photo.getexif()
    exif[0x0112] = 6
    for name in ("photo.jpg", "photo.png", "photo.tif"):  # torchvision's decoders and PIL's
        photo.save(tmp_path / name, exif=exif.tobytes())
        for source in (tmp_path / name, (tmp_path / name).read_bytes(), Image.open(tmp_path / name)):
            image = load_image(source)
            assert image.shape == (3, 30, 20), (name, type(source))
            assert image[:, :, -5:].float().mean() > 150 > 50 > image[:, :, :-5].float().mean()
        assert PILImage.create(Image.open(tmp_path / name)).shape == (30, 20)
    from fastlearn.vision.image_folders import resize_image
    copy = resize_image(tmp_path / "photo.jpg", tmp_path / "small", max_size=15)
    assert load_image(copy).shape == (3, 15, 10)  # the copy's pixels are turned (it keeps no EXIF)


# --- key points ----------------------------------------------------------------------------------

def test_a_heic_photo_is_named_as_a_format_not_as_a_damaged_file(tmp_path):
    """An iPhone photo saved as .jpg (HEIC inside) was 'truncated/corrupt; delete it'."""
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    for source, name in ((photo, str(photo)), (photo.read_bytes(), "given as bytes")):
        with pytest.raises(ValueError, match=rf"{re.escape(name)}: it is a HEIF photo \('heic'.*not damaged\. "
                                             r"Convert it to JPEG"):
            load_image(source) if name != "given as bytes" else PILImage.create(source)


def test_a_key_point_outside_its_image_is_refused_naming_the_item_unless_allowed(tmp_path):
    learn = point_learner(tmp_path, get_y=lambda path: [[100, -50]] if path.stem == "2" else [[4, 8]])
    with pytest.raises(ValueError, match=r"item \d: key point\(s\) \(100, -50\) lie outside the image .*2\.png, "
                                         r"which is 16x16 pixels .*PointBlock\(allow_outside=True\)"):
        learn.fit(1)
    dblock = DataBlock(blocks=(ImageBlock, PointBlock(allow_outside=True)), get_items=get_image_files,
                       get_y=lambda path: [[100, -50]], splitter=RandomSplitter(0.5, seed=0), item_tfms=Resize(16))
    dls = dblock.dataloaders(tmp_path, bs=2, device="cpu", num_workers=0)
    assert dls.one_batch()[1][0].reshape(-1).tolist() == pytest.approx([100 * 2 / 16 - 1, -50 * 2 / 16 - 1])


# --- collab and tabular rows ---------------------------------------------------------------------

def collab_learner_on_three_users():
    from fastlearn.collab.data import CollabDataLoaders
    from fastlearn.collab.learner import collab_learner
    ratings = pd.DataFrame({"user": [1, 2, 3, 1, 2, 3] * 4, "item": [1, 2, 3, 2, 3, 1] * 4,
                            "rating": np.arange(24, dtype=float) % 5})
    torch.manual_seed(0)
    return collab_learner(CollabDataLoaders.from_df(ratings, bs=8, seed=0, device="cpu"), n_factors=4), ratings


def test_a_collab_id_never_seen_warns_and_a_missing_one_is_refused(tmp_path):
    """An unseen user was predicted as #na# with no word; a NaN id became the category #na#."""
    from fastlearn.collab.data import CollabDataLoaders
    from fastlearn.loading import load_learner
    learn, ratings = collab_learner_on_three_users()
    loaded = load_learner(learn.export(tmp_path / "collab.pkl"))
    for model in (learn, loaded):
        with pytest.warns(UserWarning, match=r"categorical column 'user' has 1 value\(s\) not seen in training "
                                             r"\(e\.g\. \[999\] in rows \[0\]\).*treated as missing \(#na#"):
            model.predict(pd.Series({"user": 999, "item": 1}))
        with pytest.warns(UserWarning, match=r"column 'item' .*\[77\]"):
            model.predict(pd.Series({"user": 1, "item": 77}))
        with pytest.raises(ValueError, match=r"column 'user' of the new data has a missing id .* rows .*\[0\]"):
            model.predict(pd.Series({"user": np.nan, "item": 1}))
        with pytest.raises(ValueError, match=r"column 'item' of the new data has a missing id .*\[0\]"):
            model.predict(pd.Series({"user": 1, "item": None}))
    bad = ratings.astype({"item": float})
    bad.loc[5, "item"] = np.nan
    with pytest.raises(ValueError, match=r"column 'item' of the ratings has a missing id \(e\.g\. nan\) in 1 of 24 "
                                         r"rows: rows \(index labels of the table\) \[5\]; .*fill or remove"):
        CollabDataLoaders.from_df(bad, bs=8, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a seen pair says nothing
        learn.predict(pd.Series({"user": 1, "item": 2}))


def tabular_learner_on_sizes():
    from fastlearn.tabular.learner import tabular_learner
    from fastlearn.tabular.procs import Categorify, FillMissing
    from fastlearn.tabular.tabular_pandas import TabularDataLoaders
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"color": rng.choice(["red", "green"], 32), "size": rng.normal(size=32)})
    df["label"] = np.where(df["size"] > 0, "big", "small")
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing], cat_names=["color"], cont_names=["size"],
                                     y_names="label", bs=8, device="cpu")
    torch.manual_seed(0)
    return tabular_learner(dls, layers=[8]), df


def test_a_y_range_that_cannot_hold_the_targets_or_is_not_a_range_is_refused_before_training():
    from fastlearn.collab.data import CollabDataLoaders
    from fastlearn.collab.learner import collab_learner
    from fastlearn.tabular.learner import tabular_learner
    from fastlearn.tabular.tabular_pandas import TabularDataLoaders
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({"user": rng.integers(0, 10, 200), "item": rng.integers(0, 12, 200),
                            "rating": rng.integers(1, 11, 200).astype(float)})  # 1 to 10, not 1 to 5
    dls = CollabDataLoaders.from_df(ratings, bs=32, seed=0, device="cpu")
    for use_nn in (False, True):
        with pytest.raises(ValueError, match=r"y_range=\(0, 5.5\) but \d+ training target\(s\) of \['rating'\] lie outside "
                                             r"it \(they go from 1 to 10; row \d+ holds .*could never reach them.*"
                                             r"y_range=\(0, 10.9\)"):
            collab_learner(dls, n_factors=4, use_nn=use_nn, y_range=(0, 5.5))
    assert collab_learner(dls, n_factors=4, y_range=(0, 10.5)).model.y_range == (0, 10.5)
    for bad in [(5.5, 0), (3, 3), (float("nan"), 5), (0, float("inf")), ("low", 5), (5,)]:
        with pytest.raises(ValueError, match=r"y_range=.*; expected \(low, high\)"):
            collab_learner(dls, n_factors=4, y_range=bad)
    table = pd.DataFrame({"size": np.linspace(0, 1, 40), "price": np.linspace(100, 500, 40)})
    tab = TabularDataLoaders.from_df(table, cont_names=["size"], y_names="price", bs=8, device="cpu")
    with pytest.raises(ValueError, match=r"y_range=\[0, 1\] but .* \['price'\] lie outside it"):
        tabular_learner(tab, layers=[4], y_range=[0, 1])
    with pytest.raises(ValueError, match=r"y_range=\(1, 0\); expected"):
        tabular_learner(tab, layers=[4], config={"y_range": (1, 0)})
    classes = TabularDataLoaders.from_df(table.assign(price=np.where(table.price > 300, "high", "low")),
                                         cont_names=["size"], y_names="price", bs=8, device="cpu")
    with pytest.raises(ValueError, match=r"y_range=\(0, 1\) with a class target \(\['price'\]\).*squash the class scores"):
        tabular_learner(classes, layers=[4], y_range=(0, 1))  # was: a sigmoid over the class scores


def test_a_column_named_twice_in_a_table_is_named_in_the_error():
    from fastlearn.tabular.tabular_pandas import TabularDataLoaders
    table = pd.DataFrame({"size": np.linspace(0, 1, 20), "label": ["a", "b"] * 10})
    for name in ("size", "label"):
        twice = pd.concat([table, table[[name]]], axis=1)  # was: "arg must be a list, tuple, 1-d array, or Series"
        with pytest.raises(ValueError, match=rf"names column\(s\) \['{name}'\] that the DataFrame has more than once.*"
                                             r"df.columns.duplicated"):
            TabularDataLoaders.from_df(twice, cont_names=["size"], y_names="label", bs=4, device="cpu")


def test_a_collab_column_name_that_is_not_in_the_ratings_names_the_argument():
    from fastlearn.collab.data import CollabDataLoaders
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({"user": rng.integers(0, 10, 60), "item": rng.integers(0, 12, 60),
                            "rating": rng.uniform(1, 5, 60)})
    for argument, wrong in (("user_name", "usr"), ("item_name", "movie"), ("rating_name", "ratng")):
        # was a KeyError 'usr', or a message about y_names (an argument the caller never passed)
        with pytest.raises(ValueError, match=rf"{argument}='{wrong}' is not a column of the ratings; their columns are "
                                             r"\['user', 'item', 'rating'\]"):
            CollabDataLoaders.from_df(ratings, bs=8, device="cpu", **{argument: wrong})
    with pytest.raises(ValueError, match=r"user_name and item_name both name the column 'user'"):  # was accepted
        CollabDataLoaders.from_df(ratings, user_name="user", item_name="user", bs=8, device="cpu")


def test_an_image_regression_with_a_reversed_y_range_is_refused_when_the_learner_is_built(tmp_path):
    """vision_learner(y_range=(5, 0)) trained, and only export refused the range afterwards."""
    from fastlearn.vision.learner import vision_learner
    dls = point_learner(tmp_path).dls
    for bad in [(5, 0), (1, 1), (float("nan"), 1)]:
        with pytest.raises(ValueError, match=r"y_range=\(.*\); expected \(low, high\): finite numbers with low < high"):
            vision_learner(dls, "resnet18", pretrained=False, n_out=2, y_range=bad)
    assert vision_learner(dls, "resnet18", pretrained=False, n_out=2, y_range=(np.float32(-1), np.float32(1)))


def test_tabular_predict_of_several_rows_says_how_to_predict_them():
    """It said "continuous column 'size' ... holds non-numbers" (the rows were read as one)."""
    learn, df = tabular_learner_on_sizes()
    with pytest.raises(ValueError, match=re.escape(
            "predict takes one row (a Series or a one-row DataFrame), got a DataFrame of 2 rows; for several rows "
            "use learn.predict_batch(rows) or learn.get_preds(dl=learn.dls.test_dl(df))")):
        learn.predict(df.iloc[:2])
    one = learn.predict(df.iloc[:1])  # a one-row DataFrame is one row
    assert one[0] == learn.predict(df.iloc[0])[0]
    several = learn.predict_batch(df.iloc[:2])  # the ways the message names work
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(df.iloc[:2]))
    assert [label for label, _, _ in several][0] == one[0] and preds.shape == (2, 2)


def test_a_table_with_no_rows_or_no_training_rows_is_named():
    """It said "continuous column 'size' has no value in the training rows" (a FillMissing detail)."""
    from fastlearn.tabular.procs import Categorify, FillMissing
    from fastlearn.tabular.tabular_pandas import TabularDataLoaders, TabularPandas
    learn, df = tabular_learner_on_sizes()
    options = dict(procs=[Categorify, FillMissing], cat_names=["color"], cont_names=["size"], y_names="label")
    with pytest.raises(ValueError, match=r"the table has no rows \(columns \['color', 'size', 'label'\]\)"):
        TabularDataLoaders.from_df(df.iloc[:0], bs=8, **options)
    with pytest.raises(ValueError, match=r"the table has no rows"):
        TabularPandas(df.iloc[:0], **options)
    with pytest.raises(ValueError, match=r"the training split is empty: splits\[0\] selects none of the 32 rows"):
        TabularPandas(df, splits=([], list(range(32))), **options)
    for rows in (df.iloc[:0], []):
        with pytest.raises(ValueError, match=r"no rows to predict: test_dl got an empty table or list"):
            learn.dls.test_dl(rows)
