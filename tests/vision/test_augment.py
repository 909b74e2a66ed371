"""Batch augmentation: one resample per batch, matching torchvision image by image."""
import random

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torch.nn import functional as F
from torchvision.transforms import InterpolationMode

from fastlearn.vision.augment import (AffineCoordTfm, Dihedral, Flip, FlipPart, RandomResizedCropGPU, Rotate,
                                      RotatePart, Warp, Zoom, ZoomPart, aug_transforms)
from fastlearn.vision.lighting import Brightness, Contrast, LightingTfm


def _batch(n=6, height=24, width=40, seed=0):
    torch.manual_seed(seed)
    return torch.rand(n, 3, height, width)


def _run(tfm, x, seed=1, kinds=("image",)):
    return tfm.call_sample((x,) if kinds == ("image",) else x, kinds, split_idx=0, rng=random.Random(seed))


def test_flip_matches_torchvision_hflip_per_image():
    x = _batch()
    flip = Flip(p=0.5)
    out, = _run(flip, x)
    flipped = flip.parts[0].params["flip"]
    assert 0 < int(flipped.sum()) < len(x)
    reference = torch.stack([TF.hflip(img) if f else img for img, f in zip(x, flipped)])
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=0)


def test_rotate_matches_torchvision_affine_per_image():
    x = _batch()
    rotate = Rotate(max_deg=40., p=1., pad_mode="zeros", align_corners=False)
    out, = _run(rotate, x)
    angles = rotate.parts[0].params["angle"]
    assert float(angles.abs().min()) > 0
    reference = torch.stack([TF.affine(img, angle=float(a), translate=[0., 0.], scale=1., shear=[0., 0.],
                                       interpolation=InterpolationMode.BILINEAR) for img, a in zip(x, angles)])
    torch.testing.assert_close(out, reference, atol=1e-4, rtol=0)


def test_flip_rotate_zoom_in_one_resample_match_torchvision():
    x = _batch(n=8)
    height, width = x.shape[-2:]
    tfm = AffineCoordTfm([FlipPart(0.5), RotatePart(30., 1.), ZoomPart(1.1, 1.5, 1.)], pad_mode="zeros",
                         align_corners=False)
    out, = _run(tfm, x, seed=3)
    flip, angle = tfm.parts[0].params["flip"], tfm.parts[1].params["angle"]
    scale, centre = tfm.parts[2].params["scale"], tfm.parts[2].params["centre"]
    translate = -centre * (1 - 1 / scale)[:, None] * scale[:, None] * torch.tensor([width / 2, height / 2])
    reference = []
    for i, img in enumerate(x):
        img = TF.hflip(img) if flip[i] else img
        reference.append(TF.affine(img, angle=float(angle[i]), translate=translate[i].tolist(), scale=float(scale[i]),
                                   shear=[0., 0.], interpolation=InterpolationMode.BILINEAR))
    torch.testing.assert_close(out, torch.stack(reference), atol=1e-4, rtol=0)


def test_aug_transforms_resample_once_per_batch(monkeypatch):
    calls = []
    grid_sample = F.grid_sample
    monkeypatch.setattr(F, "grid_sample", lambda *a, **k: calls.append(1) or grid_sample(*a, **k))
    tfms = aug_transforms(max_rotate=20., max_zoom=1.3, max_warp=0.3, p_affine=1., size=16, min_scale=0.5)
    affine = tfms[0]
    assert [type(p).__name__ for p in affine.parts] == ["CropPart", "FlipPart", "WarpPart", "RotatePart", "ZoomPart"]
    out, = _run(affine, _batch())
    assert len(calls) == 1 and out.shape == (6, 3, 16, 16)


def test_nothing_is_augmented_in_validation():
    x = _batch()
    for tfm in aug_transforms(max_rotate=30., max_zoom=1.5, max_warp=0.4, flip_vert=True):
        assert tfm.split_idx == 0
        assert tfm.call_sample((x,), ("image",), split_idx=1, rng=random.Random(0))[0] is x
    assert not torch.equal(_run(aug_transforms(p_affine=1.)[0], x)[0], x)


def test_mask_uses_nearest_with_the_same_matrix_and_points_follow():
    torch.manual_seed(0)
    n, size = 4, 32
    mask = torch.zeros(n, size, size, dtype=torch.long)
    mask[:, 8:14, 18:26] = 2
    mask[:, 20:28, 4:10] = 1
    image = mask[:, None].float().expand(-1, 3, -1, -1).contiguous()
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.tensor([21.5, 10.5])  # (x, y) pixel centre of the class-2 block
    points = ((centre / (size - 1)) * 2 - 1).expand(n, 1, 2).clone()
    tfm = AffineCoordTfm([FlipPart(0.5), RotatePart(25., 1.), ZoomPart(1.0, 1.3, 1.)], mode="nearest")
    out_image, out_mask, out_points = tfm.call_sample((image, mask, points), ("image", "mask", "points"),
                                                      split_idx=0, rng=random.Random(5))
    assert out_mask.dtype == torch.long and set(out_mask.unique().tolist()) <= {0, 1, 2}
    assert torch.equal(out_mask, out_image[:, 0].round().long())
    for i in range(n):
        block = out_mask[i] == 2
        moved = torch.stack([xs[block].float().mean(), ys[block].float().mean()]) / (size - 1) * 2 - 1
        torch.testing.assert_close(out_points[i, 0], moved, atol=0.08, rtol=0)


def test_same_seed_same_batch_and_batch_mode_shares_parameters():
    x = _batch()
    tfm = aug_transforms(max_rotate=30., p_affine=1.)[0]
    first, = _run(tfm, x, seed=7)
    second, = _run(tfm, x, seed=7)
    assert torch.equal(first, second)
    shared = Rotate(max_deg=30., p=1., batch=True)
    out, = _run(shared, torch.stack([x[0], x[0]]))
    assert torch.equal(out[0], out[1])
    assert shared.matrices.shape == (2, 3, 3)


def test_uint8_images_stay_uint8_and_sizes_follow():
    x = (torch.rand(2, 3, 20, 20) * 255).to(torch.uint8)
    out, = _run(Zoom(max_zoom=1.5, p=1., size=(12, 16)), x)
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 12, 16)
    assert RandomResizedCropGPU(8, min_scale=0.3)(x.float()).shape == (2, 3, 8, 8)
    assert Warp(0.3, p=1.)(x.float()).shape == x.shape


def test_dihedral_gives_exact_symmetries():
    x = torch.rand(16, 1, 5, 5)
    out, = _run(Dihedral(p=1.), x)
    variants = []
    for img in x:
        syms = []
        for base in (img, img.transpose(-1, -2)):
            syms += [base, base.flip(-1), base.flip(-2), base.flip(-1).flip(-2)]
        variants.append(syms)
    for img, syms in zip(out, variants):
        assert min(float((img - s).abs().max()) for s in syms) < 1e-5


def test_lighting_in_logit_space_stays_in_range():
    x = torch.rand(8, 3, 6, 6)
    same, = _run(Brightness(0.4, p=0.), x)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    both = LightingTfm(Contrast(0.4, p=1.).parts + Brightness(0.4, p=1.).parts)  # parts apply in order
    out, = _run(both, x)
    c = both.parts[0].params["contrast"].view(-1, 1, 1, 1)
    b = both.parts[1].params["brightness"].view(-1, 1, 1, 1)
    logit = torch.logit(x.clamp(1e-7, 1 - 1e-7))
    torch.testing.assert_close(out, torch.sigmoid(logit * c + torch.logit(b)), atol=1e-5, rtol=0)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert ((b > 0.3) & (b < 0.7)).all() and ((c > 0.6) & (c < 1 / 0.6)).all()
    with pytest.raises(TypeError, match="IntToFloatTensor"):
        both(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="pad_mode='mirror'"):
        Rotate(pad_mode="mirror")
    with pytest.raises(ValueError, match="min_scale"):
        aug_transforms(min_scale=0.5)
    with pytest.raises(ValueError, match="p=2"):
        Flip(p=2)


def test_loaders_augment_training_batches_only(fashion_mnist_path):
    from fastlearn.data.datablock import DataBlock
    from fastlearn.data.blocks import CategoryBlock
    from fastlearn.data.getters import get_image_files, parent_label
    from fastlearn.data.splitters import GrandparentSplitter
    from fastlearn.vision.data import ImageBlock
    from fastlearn.vision.transforms import Resize

    def loaders(batch_tfms):
        block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                          splitter=GrandparentSplitter(), item_tfms=Resize(32), batch_tfms=batch_tfms)
        return block.dataloaders(fashion_mnist_path, bs=16, num_workers=0, seed=3)

    plain, augmented = loaders(None), loaders(aug_transforms(max_rotate=30., p_affine=1., p_lighting=1.))
    for plain_batch, augmented_batch in zip(plain.valid, augmented.valid):
        assert torch.equal(plain_batch[0], augmented_batch[0]) and torch.equal(plain_batch[1], augmented_batch[1])
    plain_x, plain_y = plain.train.one_batch()
    augmented_x, augmented_y = augmented.train.one_batch()
    assert torch.equal(plain_y, augmented_y) and plain_x.shape == augmented_x.shape
    assert not torch.allclose(plain_x, augmented_x, atol=1e-3)


def test_points_follow_their_images_through_a_loader():
    import pandas as pd
    from fastlearn.data.datablock import DataBlock
    from fastlearn.data.splitters import ColSplitter
    from fastlearn.datasets import fashion_keypoints
    from fastlearn.vision.data import ImageBlock, PointBlock

    path = fashion_keypoints(n_train=48, n_valid=16)
    df = pd.read_csv(path / "points.csv")
    block = DataBlock(blocks=(ImageBlock, PointBlock), get_x=lambda row: path / "images" / row["fname"],
                      get_y=lambda row: torch.tensor([[row["x"], row["y"]]], dtype=torch.float32),
                      splitter=ColSplitter("is_valid"),
                      batch_tfms=aug_transforms(max_rotate=30., max_zoom=1., max_warp=0.2, p_affine=1.,
                                                max_lighting=0., pad_mode="zeros", align_corners=False))
    dls = block.dataloaders(df, bs=48, num_workers=0, seed=1)
    xb, yb = dls.train.one_batch()
    grey = xb.mean(1)
    size = grey.shape[-1]
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) * 2 / size - 1
    weights = grey / grey.sum((1, 2), keepdim=True)
    centroid = torch.stack([(weights.sum(1) * centres).sum(1), (weights.sum(2) * centres).sum(1)], dim=1)
    inside = (yb[:, 0].abs() < 0.5).all(1)  # items well inside the frame after the transform
    assert int(inside.sum()) >= 10
    distance = (centroid[inside] - yb[inside, 0]).norm(dim=1) * size / 2  # in pixels
    assert float(distance.median()) < 1.5 and float(distance.max()) < 4
