"""Image blocks (``ImageBlock``, ``MaskBlock``, ``PointBlock``) and the one-line constructors
``ImageDataLoaders`` (= ``ImageDataBunch``) and ``SegmentationDataLoaders``.

>>> dls = ImageDataLoaders.from_folder(path, valid_pct=0.2, seed=42,
...                                    item_tfms=Resize(64))          # doctest: +SKIP
>>> dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
...                    get_y=parent_label, item_tfms=Resize(64))       # doctest: +SKIP
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

from fastlearn.data.batch_transforms import IntToFloatTensor
from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock, MultiCategoryBlock, TransformBlock, register_block
from fastlearn.data.getters import ColReader, RegexLabeller, get_image_files, parent_label, using_attr
from fastlearn.data.splitters import ColSplitter, GrandparentSplitter, RandomSplitter
from fastlearn.data.pipeline import Pipeline
from fastlearn.data.transforms import Transform, register_transform
from fastlearn.losses import CrossEntropyLossFlat, MSELossFlat
from fastlearn.paths import Path
from fastlearn.vision.image import LoadImage, LoadMask, PILImage, PILImageBW, show_image
from fastlearn.vision.transforms import PointScaler

_IMAGE_CLASSES = {"PILImage": PILImage, "PILImageBW": PILImageBW}


@register_block
class ImageBlock(TransformBlock):
    """Images from files (or PIL images, arrays): uint8 ``(C, H, W)`` per item, float in [0, 1]
    per batch (``IntToFloatTensor``). ``cls=PILImageBW`` gives one grey channel.

    >>> ImageBlock(cls=PILImageBW).type_tfms[0].mode
    'L'
    """

    kind = "image"

    def __init__(self, cls: type = PILImage):
        if cls not in _IMAGE_CLASSES.values():
            raise ValueError(f"ImageBlock(cls={cls!r}); expected PILImage (colour) or PILImageBW (grey)")
        self.cls = cls
        super().__init__(type_tfms=[LoadImage(mode=cls._mode)], batch_tfms=[IntToFloatTensor()])

    def show(self, value, ax) -> None:
        show_image(value, ax=ax)

    def describe_args(self, pipeline: Pipeline) -> dict:
        return {"cls": self.cls.__name__}

    @classmethod
    def from_args(cls, args: dict) -> "ImageBlock":
        name = args.get("cls", "PILImage")
        return cls(cls=_IMAGE_CLASSES[name] if isinstance(name, str) else name)


@register_block
class MaskBlock(TransformBlock):
    """Segmentation masks (one class code per pixel), ``codes`` naming the classes; learnt with
    cross-entropy over the class axis.

    >>> MaskBlock(codes=["background", "object"]).kind
    'mask'
    """

    kind = "mask"

    def __init__(self, codes: Sequence[str] | None = None):
        self.codes = None if codes is None else list(codes)
        load = LoadMask()
        load.vocab = self.codes
        super().__init__(type_tfms=[load], batch_tfms=[IntToFloatTensor()])

    def show(self, value, ax) -> None:
        vmax = len(self.codes) - 1 if self.codes else None
        ax.imshow(torch.as_tensor(value).cpu().numpy(), alpha=0.5, cmap="tab20", vmin=0, vmax=vmax,
                  interpolation="nearest")

    def loss_func(self):
        return CrossEntropyLossFlat(axis=1)

    def n_out(self, pipeline: Pipeline, first_encoded) -> int | None:
        if self.codes:
            return len(self.codes)
        return int(first_encoded.max()) + 1 if first_encoded is not None else None

    def describe_args(self, pipeline: Pipeline) -> dict:
        return {"codes": self.codes}


@register_transform
class ToPoints(Transform):
    """Coordinates ``[[x, y], ...]`` (or one ``[x, y]``) to a float ``(n, 2)`` tensor.

    >>> ToPoints()([3, 4])
    tensor([[3., 4.]])
    """

    output_kind = "points"

    def encodes(self, points) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(points, dtype=np.float32))
        if t.numel() % 2:
            raise ValueError(f"points {points!r} do not form (x, y) pairs; get_y should return "
                             "[x, y] or [[x1, y1], [x2, y2], ...]")
        return t.reshape(-1, 2)

    def describe_args(self) -> dict:
        return {}


@register_block
class PointBlock(TransformBlock):
    """Key points ``(x, y)`` in pixels, scaled to [-1, 1] of the image (learnt with MSE).

    A point outside its image (x not in 0..width or y not in 0..height of the image as read) is
    an error naming the item and the point; ``allow_outside=True`` keeps such points (scaled
    beyond [-1, 1]), for key points annotated outside the frame.

    >>> PointBlock().kind
    'points'
    """

    kind = "points"
    eager = True

    def __init__(self, allow_outside: bool = False):
        super().__init__(type_tfms=[ToPoints()], item_tfms=[PointScaler()])
        self.allow_outside = allow_outside

    def show(self, value, ax) -> None:
        points = torch.as_tensor(value).reshape(-1, 2).cpu()
        ax.scatter(points[:, 0], points[:, 1], s=20, marker="x", c="red")

    def loss_func(self):
        return MSELossFlat()

    def n_out(self, pipeline: Pipeline, first_encoded) -> int | None:
        return int(first_encoded.numel()) if first_encoded is not None else None

    def describe_args(self, pipeline: Pipeline) -> dict:
        return {"allow_outside": self.allow_outside} if self.allow_outside else {}


def _pair_first(pair):
    return pair[0]


def _pair_second(pair):
    return pair[1]


def check_table_files(df, fn_col: int | str, label_col: int | str, folder: str, suff: str = "") -> None:
    """Check the files a table names (column ``fn_col`` under ``folder``, plus ``suff``) before
    anything is loaded or trained: a FileNotFoundError counts the rows whose file does not exist
    (one would otherwise stop an epoch part-way), naming the first ones; a ValueError names a file
    that two rows give different labels (column ``label_col``), which would train on both. A column
    that is not in ``df`` is left to ``ColReader`` (its error lists the columns)."""
    import pandas as pd  # df is a DataFrame: pandas is loaded already (this module does not import it)
    name, label = (df.columns[c] if isinstance(c, int) and 0 <= c < len(df.columns) else c for c in (fn_col, label_col))
    if name not in df.columns:
        return
    reader = ColReader(name, pref=folder, suff=suff)
    paths = pd.Series([reader({name: value}) for value in df[name]], index=df.index)
    missing = [(row, path) for row, path in paths.items() if not os.path.isfile(path)]
    if missing:
        shown = "; ".join(f"row {row!r}: {path}" for row, path in missing[:3])
        raise FileNotFoundError(
            f"{len(missing)} of the {len(df)} files named in column {name!r} do not exist ({shown}"
            f"{'; ...' if len(missing) > 3 else ''}); names are read under {folder}: pass folder= (or path=) the "
            "folder that holds them, fix the names in the table, or drop those rows")
    if label not in df.columns or not paths.duplicated().any():
        return
    labelled = pd.DataFrame({"path": paths, "label": df[label].map(str)})[df[label].notna().to_numpy()]
    counts = labelled.groupby("path", sort=False)["label"].nunique()
    if (counts > 1).any():
        path = counts.index[counts.to_numpy() > 1][0]
        rows = labelled[labelled["path"] == path]
        raise ValueError(
            f"{int((counts > 1).sum())} file(s) have rows with different labels, e.g. {path}: rows "
            f"{rows.index.tolist()[:4]} label it {sorted(set(rows['label']))[:4]}; the model would be trained on each. "
            f"Keep one row per file (df.drop_duplicates(subset={name!r})) after fixing its label")


class ImageDataLoaders:
    """One-line image classification data, as in the course (``ImageDataBunch`` is the same).

    Every constructor returns a ``DataBunch``; ``seed`` fixes the split and the shuffle.
    """

    @staticmethod
    def _build(dblock: DataBlock, source, path, bs, val_bs, shuffle, device, num_workers, seed):
        return dblock.dataloaders(source, path=path, bs=bs, val_bs=val_bs, shuffle=shuffle,
                                  device=device, num_workers=num_workers, seed=seed)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, train: str = "train", valid: str = "valid",
                    valid_pct: float | None = None, seed: int | None = None,
                    vocab: Sequence | None = None, item_tfms=None, batch_tfms=None,
                    img_cls: type = PILImage, bs: int = 64, val_bs: int | None = None,
                    shuffle: bool = True, device=None, num_workers: int | str | None = None):
        """Images in ``path/train/<label>/`` and ``path/valid/<label>/`` (or a random
        ``valid_pct`` of everything under ``path``), labelled by their folder.

        >>> dls = ImageDataLoaders.from_folder(path, item_tfms=Resize(32))   # doctest: +SKIP
        """
        if valid_pct is None:
            for name in (train, valid):
                if not (Path(path) / name).is_dir():
                    raise FileNotFoundError(
                        f"from_folder: {Path(path) / name} is not a folder; the images should be in "
                        f"{path}/{train}/<label>/ and {path}/{valid}/<label>/, or pass valid_pct=0.2 "
                        "to split them at random")
            splitter = GrandparentSplitter(train_name=train, valid_name=valid)
            get_items = functools.partial(get_image_files, folders=[train, valid])
        else:
            splitter, get_items = RandomSplitter(valid_pct, seed=seed), get_image_files
        dblock = DataBlock(blocks=(ImageBlock(img_cls), CategoryBlock(vocab=vocab)), get_items=get_items,
                           splitter=splitter, get_y=parent_label, item_tfms=item_tfms,
                           batch_tfms=batch_tfms)
        return cls._build(dblock, path, path, bs, val_bs, shuffle, device, num_workers, seed)

    @classmethod
    def from_path_func(cls, path: str | os.PathLike, fnames: Sequence, label_func: Callable,
                       valid_pct: float = 0.2, seed: int | None = None, item_tfms=None,
                       batch_tfms=None, img_cls: type = PILImage, bs: int = 64,
                       val_bs: int | None = None, shuffle: bool = True, device=None,
                       num_workers: int | str | None = None):
        """Files ``fnames`` labelled by ``label_func(path)``."""
        dblock = DataBlock(blocks=(ImageBlock(img_cls), CategoryBlock), get_y=label_func,
                           splitter=RandomSplitter(valid_pct, seed=seed), item_tfms=item_tfms,
                           batch_tfms=batch_tfms)
        return cls._build(dblock, fnames, path, bs, val_bs, shuffle, device, num_workers, seed)

    @classmethod
    def from_name_func(cls, path: str | os.PathLike, fnames: Sequence, label_func: Callable,
                       valid_pct: float = 0.2, seed: int | None = None, item_tfms=None,
                       batch_tfms=None, img_cls: type = PILImage, bs: int = 64,
                       val_bs: int | None = None, shuffle: bool = True, device=None,
                       num_workers: int | str | None = None):
        """Files ``fnames`` labelled by ``label_func(file_name)`` (the name without folders).

        >>> dls = ImageDataLoaders.from_name_func(path, files, is_cat, item_tfms=Resize(224))  # doctest: +SKIP
        """
        return cls.from_path_func(path, fnames, using_attr(label_func, "name"), valid_pct=valid_pct,
                                  seed=seed, item_tfms=item_tfms, batch_tfms=batch_tfms,
                                  img_cls=img_cls, bs=bs, val_bs=val_bs, shuffle=shuffle,
                                  device=device, num_workers=num_workers)

    @classmethod
    def from_path_re(cls, path: str | os.PathLike, fnames: Sequence, pat: str,
                     valid_pct: float = 0.2, seed: int | None = None, item_tfms=None,
                     batch_tfms=None, img_cls: type = PILImage, bs: int = 64,
                     val_bs: int | None = None, shuffle: bool = True, device=None,
                     num_workers: int | str | None = None):
        r"""Files labelled by the first group of ``pat`` found in their whole path (folders too).

        >>> dls = ImageDataLoaders.from_path_re(path, files, r"/([^/]+)/[^/]+\.png$")  # doctest: +SKIP
        """
        return cls.from_path_func(path, fnames, RegexLabeller(pat), valid_pct=valid_pct, seed=seed,
                                  item_tfms=item_tfms, batch_tfms=batch_tfms, img_cls=img_cls, bs=bs,
                                  val_bs=val_bs, shuffle=shuffle, device=device, num_workers=num_workers)

    @classmethod
    def from_name_re(cls, path: str | os.PathLike, fnames: Sequence, pat: str,
                     valid_pct: float = 0.2, seed: int | None = None, item_tfms=None,
                     batch_tfms=None, img_cls: type = PILImage, bs: int = 64,
                     val_bs: int | None = None, shuffle: bool = True, device=None,
                     num_workers: int | str | None = None):
        """Files labelled by the first group of ``pat`` matched in their name."""
        return cls.from_name_func(path, fnames, RegexLabeller(pat), valid_pct=valid_pct, seed=seed,
                                  item_tfms=item_tfms, batch_tfms=batch_tfms, img_cls=img_cls, bs=bs,
                                  val_bs=val_bs, shuffle=shuffle, device=device, num_workers=num_workers)

    @classmethod
    def from_df(cls, df, path: str | os.PathLike = ".", valid_pct: float = 0.2, seed: int | None = None,
                fn_col: int | str = 0, folder: str | None = None, suff: str = "",
                label_col: int | str = 1, label_delim: str | None = None, y_block=None,
                valid_col: str | None = None, item_tfms=None, batch_tfms=None,
                img_cls: type = PILImage, bs: int = 64, val_bs: int | None = None,
                shuffle: bool = True, device=None, num_workers: int | str | None = None,
                missing_targets: str = "raise"):
        """File names in column ``fn_col`` (under ``path/folder``, plus ``suff``), labels in
        ``label_col`` (split on ``label_delim`` for several labels); ``valid_col`` flags the
        validation rows, else a random ``valid_pct``. Rows without a label are an error naming
        them, or left out with ``missing_targets="drop"``; rows whose file does not exist, and a
        file two rows label differently, are an error naming them, before anything is loaded."""
        pref = f"{Path(path) if folder is None else Path(path) / folder}{os.path.sep}"
        check_table_files(df, fn_col, label_col, pref, suff)
        if y_block is None:
            y_block = MultiCategoryBlock if label_delim is not None else CategoryBlock
        splitter = RandomSplitter(valid_pct, seed=seed) if valid_col is None else ColSplitter(valid_col)
        dblock = DataBlock(blocks=(ImageBlock(img_cls), y_block),
                           get_x=ColReader(fn_col, pref=pref, suff=suff),
                           get_y=ColReader(label_col, label_delim=label_delim), splitter=splitter,
                           item_tfms=item_tfms, batch_tfms=batch_tfms, missing_targets=missing_targets)
        return cls._build(dblock, df, path, bs, val_bs, shuffle, device, num_workers, seed)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, csv_fname: str = "labels.csv", header: str | int | None = "infer",
                 delimiter: str | None = None, valid_pct: float = 0.2, seed: int | None = None,
                 fn_col: int | str = 0, folder: str | None = None, suff: str = "",
                 label_col: int | str = 1, label_delim: str | None = None, y_block=None,
                 valid_col: str | None = None, item_tfms=None, batch_tfms=None,
                 img_cls: type = PILImage, bs: int = 64, val_bs: int | None = None,
                 shuffle: bool = True, device=None, num_workers: int | str | None = None,
                 missing_targets: str = "raise"):
        """``from_df`` on ``path/csv_fname``."""
        from fastlearn.data.tables import read_csv_file  # pandas, imported when a table is read
        df = read_csv_file(Path(path) / csv_fname, header=header, delimiter=delimiter)
        return cls.from_df(df, path=path, valid_pct=valid_pct, seed=seed, fn_col=fn_col, folder=folder,
                           suff=suff, label_col=label_col, label_delim=label_delim, y_block=y_block,
                           valid_col=valid_col, item_tfms=item_tfms, batch_tfms=batch_tfms,
                           img_cls=img_cls, bs=bs, val_bs=val_bs, shuffle=shuffle, device=device,
                           num_workers=num_workers, missing_targets=missing_targets)

    @classmethod
    def from_lists(cls, path: str | os.PathLike, fnames: Sequence, labels: Sequence,
                   valid_pct: float = 0.2, seed: int | None = None, y_block=CategoryBlock,
                   item_tfms=None, batch_tfms=None, img_cls: type = PILImage, bs: int = 64,
                   val_bs: int | None = None, shuffle: bool = True, device=None,
                   num_workers: int | str | None = None):
        """Files ``fnames`` with the matching ``labels``."""
        if len(fnames) != len(labels):
            raise ValueError(f"from_lists: {len(fnames)} files but {len(labels)} labels; give one label per file")
        dblock = DataBlock(blocks=(ImageBlock(img_cls), y_block), get_x=_pair_first, get_y=_pair_second,
                           splitter=RandomSplitter(valid_pct, seed=seed), item_tfms=item_tfms,
                           batch_tfms=batch_tfms)
        return cls._build(dblock, list(zip(fnames, labels)), path, bs, val_bs, shuffle, device,
                          num_workers, seed)


ImageDataBunch = ImageDataLoaders


class SegmentationDataLoaders:
    """One-line segmentation data: images with masks found by ``label_func``."""

    @classmethod
    def from_label_func(cls, path: str | os.PathLike, fnames: Sequence, label_func: Callable,
                        valid_pct: float = 0.2, seed: int | None = None,
                        codes: Sequence[str] | None = None, item_tfms=None, batch_tfms=None,
                        img_cls: type = PILImage, bs: int = 64, val_bs: int | None = None,
                        shuffle: bool = True, device=None, num_workers: int | str | None = None):
        """Images ``fnames``; ``label_func(image_path)`` gives the mask file; ``codes`` names the
        classes.

        >>> dls = SegmentationDataLoaders.from_label_func(path, files, mask_of, codes=codes)  # doctest: +SKIP
        """
        dblock = DataBlock(blocks=(ImageBlock(img_cls), MaskBlock(codes)), get_y=label_func,
                           splitter=RandomSplitter(valid_pct, seed=seed), item_tfms=item_tfms,
                           batch_tfms=batch_tfms)
        return dblock.dataloaders(fnames, path=path, bs=bs, val_bs=val_bs, shuffle=shuffle,
                                  device=device, num_workers=num_workers, seed=seed)


SegmentationDataBunch = SegmentationDataLoaders
