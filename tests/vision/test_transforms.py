"""Item transforms for images: Resize, RandomResizedCrop, CropPad, ToTensor, PointScaler."""
import random

import numpy as np
import PIL.Image
import pytest
import torch

from fastlearn.data.transforms import transform_from_description
from fastlearn.vision.transforms import (CropPad, PadMode, PointScaler, RandomResizedCrop, Resize,
                                         ResizeMethod, ToTensor)

KINDS = ("image", "mask", "points")


def ramp(h, w):
    """An image whose pixel (y, x) has value x in channel 0 and y in channel 1."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([xs, ys, xs * 0]).to(torch.uint8)


def test_resize_crop_is_centred_on_validation_and_random_on_training():
    img = ramp(10, 30)
    out = Resize(10).call_sample((img,), ("image",), split_idx=1)[0]
    assert out.shape == (3, 10, 10) and out[0, 0].tolist() == list(range(10, 20))
    crops = {int(Resize(10).call_sample((img,), ("image",), 0, random.Random(s))[0][0, 0, 0]) for s in range(20)}
    assert len(crops) > 3 and min(crops) >= 0 and max(crops) <= 20
    again = Resize(10).call_sample((img,), ("image",), 0, random.Random(5))[0]
    assert torch.equal(again, Resize(10).call_sample((img,), ("image",), 0, random.Random(5))[0])


def test_resize_pad_and_squish():
    img = torch.full((1, 10, 20), 100, dtype=torch.uint8)
    padded = Resize(10, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)(img)
    assert padded.shape == (1, 10, 10)
    assert padded[0, :2].sum() == 0 and padded[0, 3:7].min() == 100 and padded[0, -2:].sum() == 0
    border = Resize(10, method="pad", pad_mode="border")(img)
    assert border.min() == 100
    squished = Resize((5, 40), method="squish")(ramp(10, 20))
    assert squished.shape == (3, 5, 40)
    with pytest.raises(ValueError, match="method='stretch'"):
        Resize(10, method="stretch")


def test_mask_and_points_follow_the_image_crop():
    img = ramp(20, 40)
    mask = (torch.arange(40) // 10).to(torch.uint8).expand(20, 40).clone()  # codes 0..3 by column
    points = torch.tensor([[20.0, 10.0]])  # the centre of the image
    for split_idx, seed in ((1, 0), (0, 1), (0, 2)):
        out_img, out_mask, out_pts = Resize(10).call_sample((img, mask, points), KINDS, split_idx,
                                                            random.Random(seed))
        assert out_mask.shape == (10, 10) and out_mask.dtype == torch.uint8
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, 3}  # nearest: no blended codes
        left = int(out_img[0, 0, 0])  # the x of the crop's first column (scale 2)
        assert out_pts[0].tolist() == pytest.approx([(20 - left) / 2, 5.0], abs=0.6)


def test_random_resized_crop_and_crop_pad():
    img = ramp(40, 50)
    assert RandomResizedCrop(16, min_scale=0.3)(img, split_idx=0).shape == (3, 16, 16)
    centre = RandomResizedCrop(16, val_xtra=0.0).call_sample((img,), ("image",), split_idx=1)[0]
    assert torch.equal(centre, Resize(16).call_sample((img,), ("image",), split_idx=1)[0])
    cropped = CropPad(4)(ramp(2, 6))
    assert cropped.shape == (3, 4, 4) and cropped[0, 0].sum() == 0 and cropped[0, 1].tolist() == [1, 2, 3, 4]


def test_to_tensor_and_point_scaler():
    pil = PIL.Image.new("RGB", (4, 2), color=(10, 20, 30))
    assert ToTensor()(pil)[:, 0, 0].tolist() == [10, 20, 30]
    assert ToTensor().call_sample((PIL.Image.new("L", (3, 3), 2),), ("mask",))[0].shape == (3, 3)
    resized = Resize(4)(pil)  # PIL input becomes a tensor
    assert isinstance(resized, torch.Tensor) and resized.shape == (3, 4, 4)
    img, pts = torch.zeros(3, 10, 20), torch.tensor([[0.0, 0.0], [10.0, 5.0], [20.0, 10.0]])
    _, scaled = PointScaler().call_sample((img, pts), ("image", "points"))
    assert scaled.tolist() == [[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]
    assert torch.allclose(PointScaler().decode_sample((img, scaled), ("image", "points"))[1], pts)
    with pytest.raises(ValueError, match="needs an ImageBlock"):
        PointScaler().call_sample((pts,), ("points",))


def test_item_transforms_are_described_and_rebuilt():
    for tfm in (Resize(32, method="pad", pad_mode="zeros"), RandomResizedCrop((20, 30), min_scale=0.5),
                CropPad(8), ToTensor(), PointScaler()):
        rebuilt = transform_from_description(tfm.describe())
        assert type(rebuilt) is type(tfm) and rebuilt.describe() == tfm.describe()


def test_images_of_different_sizes_in_one_sample_each_get_their_own_crop():
    from fastlearn.data.tuples import fastuple
    from fastlearn.vision.image import PILImage
    small = PILImage.create(np.full((20, 30, 3), 10, dtype=np.uint8))
    large = PILImage.create(np.full((60, 40, 3), 200, dtype=np.uint8))
    pair = fastuple(small, large, True)
    out = Resize(16)(pair)
    assert type(out) is fastuple and out[0].shape == out[1].shape == (3, 16, 16) and out[2] is True
    assert int(out[0].max()) == 10 and int(out[1].min()) == 200   # no padding pulled into either crop
    padded = Resize(16, method="pad")(fastuple(small, large))
    assert padded[0].shape == padded[1].shape == (3, 16, 16)


def reference_resize(img, size, train, rng):
    """What ``Resize(size)`` (crop) must give, written with plain slicing and torchvision: the
    largest square region (drawn from ``rng`` with two ``randint`` on training), resized bilinearly."""
    import torchvision.transforms.v2.functional as tvf
    h, w = img.shape[-2:]
    side = min(h, w)
    top, left = (rng.randint(0, h - side), rng.randint(0, w - side)) if train else ((h - side) // 2, (w - side) // 2)
    region = img[..., top:top + side, left:left + side]
    return region if side == size else tvf.resize(region, [size, size], antialias=True)


@pytest.mark.parametrize("h, w", [(32, 32), (28, 28), (40, 28), (28, 45), (64, 64), (5, 9)])
@pytest.mark.parametrize("split_idx", [0, 1])
def test_resize_gives_the_reference_pixels_on_square_right_sized_and_oblong_images(h, w, split_idx):
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(h * w))
    mask = img[0] // 64
    out, out_mask = Resize(32).call_sample((img, mask), ("image", "mask"), split_idx, random.Random(7))
    expected = reference_resize(img, 32, split_idx == 0, random.Random(7))
    assert out.dtype == torch.uint8 and out.shape == (3, 32, 32) and torch.equal(out, expected)
    assert out_mask.shape == (32, 32) and set(out_mask.unique().tolist()) <= {0, 1, 2, 3}
    if (h, w) == (32, 32):  # already the right size: the pixels pass through unchanged
        assert torch.equal(out, img) and torch.equal(out_mask, mask)
