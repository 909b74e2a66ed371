"""New data that used to be read silently wrong or to fail naming nothing: empty and ambiguous
image arrays, float and 16-bit images, oversized images, key points outside their image, unseen
or missing collab ids, several rows or none given to tabular. Each test goes through the public API."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fastlearn.data.datablock import DataBlock
from fastlearn.data.getters import get_image_files
from fastlearn.data.splitters import RandomSplitter
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat
from fastlearn.vision.data import ImageBlock, PointBlock
from fastlearn.vision.image import load_image
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
    with pytest.raises(ValueError, match=r"Image\) is 4x0 pixels"):
        load_image(Image.new("RGB", (0, 4)))
