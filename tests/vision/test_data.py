"""Image blocks and ImageDataLoaders / SegmentationDataLoaders on small generated image folders."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import PIL.Image
import pytest
import torch

from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock
from fastlearn.data.datasets import Datasets
from fastlearn.data.getters import get_image_files, parent_label
from fastlearn.data.splitters import GrandparentSplitter, RandomSplitter
from fastlearn.data.batch_transforms import Normalize
from fastlearn.vision.image import PILImage, PILImageBW, imagenet_stats
from fastlearn.vision.data import (ImageBlock, ImageDataLoaders, MaskBlock, PointBlock,
                                   SegmentationDataLoaders)
from fastlearn.vision.transforms import Resize

CLASSES = ("cat", "dog")


def write_png(path, h, w, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    array = np.clip(rng.normal(value, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    PIL.Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path):
    """train/ and valid/ with 6 and 3 images per class; cats dark, dogs bright; varied sizes."""
    for split, n in (("train", 6), ("valid", 3)):
        for c, value in zip(CLASSES, (60, 190)):
            for i in range(n):
                write_png(tmp_path / split / c / f"{c}_{i}.png", 12 + i, 16, value)
    return tmp_path


def test_image_block_datablock(folder):
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       splitter=GrandparentSplitter(), item_tfms=Resize(8),
                       batch_tfms=Normalize.from_stats(*imagenet_stats))
    dsets = dblock.datasets(folder)
    x, y = dsets.train[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 12, 16) and y.item() == 0
    dls = dblock.dataloaders(folder, bs=4, device="cpu", seed=0)
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 3, 8, 8) and xb.dtype == torch.float32 and yb.dtype == torch.long
    assert list(dls.vocab) == list(CLASSES) and dls.c == 2 and dls.n_inp == 1
    assert len(dls.train_ds) == 12 and len(dls.valid_ds) == 6
    image, label = dls.decode_batch((xb, yb), max_n=1)[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 8, 8) and label in CLASSES
    assert dls.show_batch(max_n=4) is None
    assert len([ax for ax in plt.gcf().axes if ax.images]) == 4


def test_from_folder_with_valid_folders_or_random_split(folder):
    dls = ImageDataLoaders.from_folder(folder, item_tfms=Resize(8), bs=4, device="cpu")
    assert len(dls.train_ds) == 12 and len(dls.valid_ds) == 6
    assert all(p.parent.parent.name == "valid" for p in dls.valid_ds.items)
    dls = ImageDataLoaders.from_folder(folder, valid_pct=0.25, seed=1, item_tfms=Resize(8), bs=4, device="cpu")
    assert len(dls.valid_ds) == 4 and len(dls.train_ds) == 14
    grey = ImageDataLoaders.from_folder(folder, img_cls=PILImageBW, item_tfms=Resize(8), bs=4, device="cpu")
    assert grey.one_batch()[0].shape == (4, 1, 8, 8)
    with pytest.raises(FileNotFoundError, match="pass valid_pct=0.2"):
        ImageDataLoaders.from_folder(folder, valid="test")


def test_from_name_func_re_lists_df_csv(folder):
    files = get_image_files(folder)
    by_func = ImageDataLoaders.from_name_func(folder, files, lambda name: name.startswith("cat"),
                                              seed=0, item_tfms=Resize(8), bs=4, device="cpu")
    assert list(by_func.vocab) == [False, True]
    by_re = ImageDataLoaders.from_name_re(folder, files, r"^([a-z]+)_\d+", seed=0, item_tfms=Resize(8),
                                          bs=4, device="cpu")
    assert list(by_re.vocab) == list(CLASSES) and len(by_re.valid_ds) == 3
    by_path = ImageDataLoaders.from_path_re(folder, files, r"/(cat|dog)/[^/]+$", seed=0, item_tfms=Resize(8),
                                            bs=4, device="cpu")
    assert list(by_path.vocab) == list(CLASSES)
    by_lists = ImageDataLoaders.from_lists(folder, files, [parent_label(f) for f in files], seed=0,
                                           item_tfms=Resize(8), bs=4, device="cpu")
    assert list(by_lists.vocab) == list(CLASSES)
    df = pd.DataFrame({"name": [f.relative_to(folder).as_posix() for f in files],
                       "tags": [f"{parent_label(f)} pet" for f in files],
                       "is_valid": [f.parent.parent.name == "valid" for f in files]})
    multi = ImageDataLoaders.from_df(df, folder, label_delim=" ", valid_col="is_valid", item_tfms=Resize(8),
                                     bs=4, device="cpu")
    assert list(multi.vocab) == ["cat", "dog", "pet"] and len(multi.valid_ds) == 6
    assert multi.one_batch()[1].shape == (4, 3) and type(multi.loss_func).__name__ == "BCEWithLogitsLossFlat"
    df[["name", "tags"]].assign(tags=[t.split()[0] for t in df.tags]).to_csv(folder / "labels.csv", index=False)
    from_csv = ImageDataLoaders.from_csv(folder, seed=0, item_tfms=Resize(8), bs=4, device="cpu")
    assert list(from_csv.vocab) == list(CLASSES)


def test_segmentation_from_label_func(tmp_path):
    codes = ["background", "square"]
    for i in range(6):
        image = np.zeros((16, 16, 3), dtype=np.uint8)
        mask = np.zeros((16, 16), dtype=np.uint8)
        image[4:10, i:i + 6] = 255
        mask[4:10, i:i + 6] = 1
        PIL.Image.fromarray(image).save(tmp_path / f"img{i}.png")
        (tmp_path / "masks").mkdir(exist_ok=True)
        PIL.Image.fromarray(mask).save(tmp_path / "masks" / f"img{i}.png")
    files = get_image_files(tmp_path, recurse=False)
    dls = SegmentationDataLoaders.from_label_func(tmp_path, files, lambda p: p.parent / "masks" / p.name,
                                                  codes=codes, seed=0, item_tfms=Resize(8), bs=2, device="cpu")
    xb, yb = dls.one_batch()
    assert xb.shape == (2, 3, 8, 8) and yb.shape == (2, 8, 8) and yb.dtype == torch.long
    # mask and image stay aligned through the random crop: square pixels are white (edges blur)
    agreement = ((yb == 1) == (xb[:, 0] > 0.5)).float().mean()
    assert agreement >= 0.9 and (yb == 1).any()
    assert dls.c == 2 and list(dls.vocab) == codes and dls.loss_func.axis == 1
    dls.show_batch(max_n=2)
    assert len([ax for ax in plt.gcf().axes if ax.images]) == 2


def centre(path):
    """The centre (x, y) of a fixture image: 16 wide, 12 + i high."""
    return [8.0, (12 + int(path.stem.split("_")[1])) / 2]


def test_point_block(folder):
    files = get_image_files(folder / "train")
    dblock = DataBlock(blocks=(ImageBlock, PointBlock), get_items=get_image_files,
                       get_y=centre, splitter=RandomSplitter(0.25, seed=0),
                       item_tfms=Resize(8, method="squish"))
    dls = dblock.dataloaders(folder / "train", bs=4, device="cpu")
    xb, yb = dls.one_batch()
    assert yb.shape == (4, 1, 2) and dls.c == 2 and type(dls.loss_func).__name__ == "MSELossFlat"
    assert torch.allclose(yb, torch.zeros(4, 1, 2), atol=1e-6) and len(files) == 12
    _, points = dls.decode_batch((xb, yb), max_n=1)[0]
    assert points.tolist() == [[4.0, 4.0]]  # the centre of the 8 x 8 image


def test_bad_image_in_folder_is_named_and_empty_folder_fails(folder, tmp_path):
    bad = folder / "train" / "cat" / "broken.png"
    bad.write_bytes((folder / "train" / "cat" / "cat_0.png").read_bytes()[:50])
    dls = ImageDataLoaders.from_folder(folder, item_tfms=Resize(8), bs=4, device="cpu")
    with pytest.raises(ValueError, match=r"broken\.png.*truncated|broken\.png.*corrupt"):
        list(dls.train.new(drop_last=False))  # every item (a dropped last batch may miss it)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no items found: get_image_files\(.*empty"):
        DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
                  get_y=parent_label).datasets(empty)


def test_inference_spec_predicts_like_the_original(folder):
    dls = ImageDataLoaders.from_folder(folder, item_tfms=Resize(8), batch_tfms=Normalize(), bs=4, device="cpu")
    spec = json.loads(json.dumps(dls.inference_spec()))
    assert spec["inputs"][0]["block"]["name"] == "ImageBlock"
    assert spec["item_tfms"][0] == {"name": "Resize", "args": {"size": [8, 8], "method": "crop",
                                                                "pad_mode": "reflection"},
                                    "module": "fastlearn.vision.transforms"}
    assert [t["name"] for t in spec["batch_tfms"]] == ["IntToFloatTensor", "Normalize"]
    assert len(spec["batch_tfms"][1]["args"]["mean"]) == 3
    rebuilt = Datasets.from_inference_spec(spec)
    files = get_image_files(folder / "valid")
    expected = dls.test_dl(files).one_batch()[0]
    got = rebuilt.test_dl(files).one_batch()[0]
    assert torch.allclose(expected, got[:len(expected)])
    assert rebuilt.decode_target(torch.tensor(1)) == "dog"
    assert rebuilt.test_dl([PILImage.create(files[0])]).one_batch()[0].shape == (1, 3, 8, 8)
