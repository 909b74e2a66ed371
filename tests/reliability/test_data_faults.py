"""Data that used to be silently wrong: link loops, one file on both sides of a split, missing
targets, animated GIFs, FIFOs, empty CSV files. Each test builds the fault and goes through the
public API."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fastlearn.collab.data import CollabDataLoaders
from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from fastlearn.data.getters import ColReader, get_image_files, parent_label
from fastlearn.data.splitters import FuncSplitter, IndexSplitter, RandomSplitter
from fastlearn.tabular.procs import Categorify
from fastlearn.tabular.tabular_pandas import TabularDataLoaders
from fastlearn.text.data import TextDataLoaders
from fastlearn.vision.image import load_image
from fastlearn.vision.data import ImageBlock, ImageDataLoaders, SegmentationDataLoaders
from fastlearn.vision.transforms import Resize


def make_images(folder, names, size=8):
    rng = np.random.default_rng(0)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def twelve(tmp_path):
    """12 images, 6 per class, with a link loop inside (a/loop -> the folder itself)."""
    root = tmp_path / "imgs"
    make_images(root, [f"{c}/{i}.png" for c in "ab" for i in range(6)])
    os.symlink("..", root / "a" / "loop")
    return root


# --- links -------------------------------------------------------------------------------------

def test_a_link_loop_lists_each_image_once_and_splits_stay_apart(twelve):
    files = get_image_files(twelve)
    assert len(files) == 12 and len({os.path.realpath(f) for f in files}) == 12
    assert all("loop" not in f.parts for f in files)  # the real paths, not the looped ones
    dls = ImageDataLoaders.from_folder(twelve, valid_pct=0.25, seed=0, item_tfms=Resize(8), bs=4, num_workers=0)
    train = {os.path.realpath(p) for p in dls.train_ds.items}
    valid = {os.path.realpath(p) for p in dls.valid_ds.items}
    assert len(train) + len(valid) == 12 and not train & valid


def test_a_linked_folder_is_followed_once_and_a_linked_file_listed_once(tmp_path):
    outside = tmp_path / "outside"
    make_images(outside, ["c/1.png", "c/2.png"])
    root = tmp_path / "data"
    make_images(root, ["a/1.png"])
    os.symlink(outside / "c", root / "c")               # a link to a folder elsewhere: followed
    os.symlink(outside / "c", root / "c_again")         # the same folder again: not walked twice
    os.symlink(root / "a" / "1.png", root / "a" / "0_link.png")  # a link to a listed file
    with pytest.warns(RuntimeWarning, match="lead to a file already listed"):
        files = get_image_files(root)
    assert sorted(f.relative_to(root).as_posix() for f in files) == ["a/1.png", "c/1.png", "c/2.png"]


def test_a_split_with_one_file_on_both_sides_is_refused(tmp_path):
    make_images(tmp_path, ["a/1.png", "a/2.png", "b/3.png"])
    os.symlink(tmp_path / "a" / "1.png", tmp_path / "b" / "copy_of_1.png")
    items = [tmp_path / "a/1.png", tmp_path / "a/2.png", tmp_path / "b/3.png", tmp_path / "b/copy_of_1.png"]
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_y=parent_label, splitter=IndexSplitter([3]))
    with pytest.raises(ValueError, match=r"same file is in the training set as .*1\.png.* validation set as "
                                         r".*copy_of_1\.png"):
        dblock.datasets(items)
    # the same items with both paths on one side are fine
    assert len(DataBlock(blocks=(ImageBlock, CategoryBlock), get_y=parent_label,
                         splitter=IndexSplitter([2])).datasets(items).train) == 3


def test_a_table_naming_one_file_twice_cannot_split_it_apart(tmp_path):
    make_images(tmp_path, ["1.png", "2.png", "3.png"])
    df = pd.DataFrame({"name": ["1.png", "2.png", "3.png", "1.png"], "label": list("abaa"),
                       "is_valid": [False, False, False, True]})
    with pytest.raises(ValueError, match="same file"):
        ImageDataLoaders.from_df(df, path=tmp_path, valid_col="is_valid", item_tfms=Resize(8), bs=2,
                                 num_workers=0)


# --- missing targets ---------------------------------------------------------------------------

@pytest.fixture
def labelled(tmp_path):
    make_images(tmp_path, [f"{i}.png" for i in range(8)])
    labels = ["a", "b", "", "b", "a", "  ", "a", None]  # an empty cell, a blank one, a missing one
    pd.DataFrame({"name": [f"{i}.png" for i in range(8)], "label": labels}).to_csv(tmp_path / "labels.csv",
                                                                                    index=False)
    return tmp_path


def test_an_empty_label_in_a_csv_is_refused_naming_the_rows(labelled):
    with pytest.raises(ValueError, match=r"3 of 8 items have a missing or empty target.*\[2, 5, 7\]"):
        ImageDataLoaders.from_csv(labelled, item_tfms=Resize(8), bs=2, num_workers=0)


def test_missing_labels_are_dropped_with_a_warning_when_asked(labelled):
    with pytest.warns(RuntimeWarning, match=r"dropped 3 of 8 items.*\[2, 5, 7\]"):
        dls = ImageDataLoaders.from_csv(labelled, item_tfms=Resize(8), bs=2, num_workers=0,
                                        missing_targets="drop", valid_pct=0.2, seed=0)
    assert list(dls.vocab) == ["a", "b"]  # no class "nan" or ""
    assert len(dls.train_ds) + len(dls.valid_ds) == 5


def test_empty_labels_from_any_getter_are_refused(tmp_path):
    make_images(tmp_path / "imgs", ["3.png", "a/1.png", "b/2.png"])
    files = get_image_files(tmp_path / "imgs")
    assert parent_label(files[0]) == "imgs" and files[0].name == "3.png"
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_y=lambda p: "" if p.name == "3.png" else p.parent.name,
                       splitter=FuncSplitter(lambda p: p.name == "2.png"))
    with pytest.raises(ValueError, match=r"missing or empty target.*items \(positions, from 0\) \[0\]"):
        dblock.datasets(files)
    multi = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_y=lambda p: [p.parent.name, None],
                      splitter=FuncSplitter(lambda p: p.name == "2.png"))
    with pytest.raises(ValueError, match="missing or empty target"):
        multi.datasets(files)
    no_labels = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_y=lambda p: [],
                          splitter=FuncSplitter(lambda p: p.name == "2.png"))
    assert len(no_labels.datasets(files).train) == 2  # an item with no labels is not a missing one


def test_nan_regression_targets_are_refused_in_every_application(tmp_path):
    make_images(tmp_path, [f"{i}.png" for i in range(6)])
    df = pd.DataFrame({"name": [f"{i}.png" for i in range(6)], "y": [1.0, 2.0, np.nan, 4.0, np.inf, 6.0],
                       "x": np.arange(6.0)})
    image_block = DataBlock(blocks=(ImageBlock, RegressionBlock), get_x=ColReader("name", pref=tmp_path),
                            get_y=ColReader("y"), splitter=RandomSplitter(0.2, seed=0))
    with pytest.raises(ValueError, match=r"2 of 6 items.*RegressionBlock.*\[2, 4\]"):
        image_block.dataloaders(df, bs=2, num_workers=0)
    with pytest.raises(ValueError, match=r"column\(s\) \['y'\].*\[2, 4\]"):
        TabularDataLoaders.from_df(df, cont_names=["x"], y_names="y", bs=2)
    ratings = pd.DataFrame({"user": [1, 2, 3, 1], "item": [5, 5, 6, 6], "rating": [4.0, np.nan, 3.0, 5.0]})
    with pytest.raises(ValueError, match=r"rating.*\[1\]"):
        CollabDataLoaders.from_df(ratings, bs=2)
    with pytest.warns(RuntimeWarning, match="dropped 1 of 4 rows"):
        dls = CollabDataLoaders.from_df(ratings, bs=2, missing_targets="drop", seed=0)
    assert dls.tabular.items["rating"].notna().all() and len(dls.tabular.items) == 3


def test_a_tabular_class_target_with_an_empty_cell_is_refused_or_dropped(tmp_path):
    df = pd.DataFrame({"x": np.arange(8.0), "y": ["a", "b", "", "b", "a", None, "a", "b"]})
    with pytest.raises(ValueError, match=r"2 of 8 items.*\[2, 5\]"):
        TabularDataLoaders.from_df(df, cont_names=["x"], y_names="y", bs=2, seed=0)
    with pytest.warns(RuntimeWarning, match=r"dropped 2 of 8 rows.*\[2, 5\]"):
        dls = TabularDataLoaders.from_df(df, cont_names=["x"], y_names="y", bs=2, seed=0, missing_targets="drop")
    assert list(dls.vocab) == ["a", "b"] and len(dls.train_ds) + len(dls.valid_ds) == 6


def test_an_empty_label_of_a_text_is_refused_or_dropped(tmp_path):
    df = pd.DataFrame({"text": ["a fine film", "dull and long", "great fun", "not good", "so so", "lovely"],
                       "label": ["pos", "neg", np.nan, "neg", "pos", "pos"]})
    with pytest.raises(ValueError, match=r"1 of 6 items.*\[2\]"):
        TextDataLoaders.from_df(df, text_col="text", label_col="label", bs=2, min_freq=1, seed=0)
    df.to_csv(tmp_path / "texts.csv", index=False)
    with pytest.warns(RuntimeWarning, match="dropped 1 of 6 items"):
        dls = TextDataLoaders.from_csv(tmp_path, "texts.csv", text_col="text", label_col="label", bs=2,
                                       min_freq=1, seed=0, missing_targets="drop")
    labels = dls.vocab[1] if isinstance(dls.vocab, (list, tuple)) else dls.train_ds.vocab
    assert sorted(labels) == ["neg", "pos"]


# --- image files -------------------------------------------------------------------------------

def test_a_text_cell_with_no_text_is_refused_naming_the_column_and_rows():
    texts = pd.DataFrame({"title": ["good", "bad", None, "fine"] * 5, "text": ["a b c", "c d", "e f", None] * 5,
                          "label": ["pos", "neg"] * 10})
    with pytest.raises(ValueError, match=r"text column 'text' has no text \(NaN or None\) in 5 row\(s\) \[3, 7, 11, 15, "
                                         r"19\]; fill them \(df\['text'\] = df\['text'\]\.fillna\(''\).*dropna"):
        TextDataLoaders.from_df(texts, text_col="text", label_col="label", bs=4, seed=0)
    with pytest.raises(ValueError, match=r"text column 'title' has no text .* 5 row\(s\) \[2, 6"):  # was the text 'nan'
        TextDataLoaders.from_df(texts, text_col=["title", "text"], label_col="label", bs=4, seed=0)
    filled = texts.fillna("")
    dls = TextDataLoaders.from_df(filled, text_col=["title", "text"], label_col="label", bs=4, seed=0)
    assert len(dls.train_ds) + len(dls.valid_ds) == 20


def test_a_validation_flag_column_of_text_or_with_blanks_is_refused(tmp_path):
    make_images(tmp_path, [f"{i}.png" for i in range(8)])
    rows = pd.DataFrame({"fname": [f"{i}.png" for i in range(8)], "label": ["a", "b"] * 4})
    # blank cells: pandas reads True / False / NaN, and NaN was true (those rows went to validation)
    rows.assign(is_valid=["False", "False", "", "True", "False", "", "False", "False"]).to_csv(
        tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match=r"column 'is_valid' has no value in 2 row\(s\) \[2, 5\].*fillna\(False\)"):
        ImageDataLoaders.from_csv(tmp_path, valid_col="is_valid", item_tfms=Resize(8), bs=2, num_workers=0)
    # text flags: 'no' was true, every row went to validation ("the training split is empty")
    flags = rows.assign(is_valid=["no", "no", "no", "yes", "no", "no", "yes", "no"])
    with pytest.raises(ValueError, match=r"column 'is_valid' holds text \('no' at row 0\).*'False' too.*str.lower"):
        ImageDataLoaders.from_df(flags, tmp_path, valid_col="is_valid", item_tfms=Resize(8), bs=2, num_workers=0)
    dls = ImageDataLoaders.from_df(flags.assign(is_valid=flags.is_valid == "yes"), tmp_path, valid_col="is_valid",
                                   item_tfms=Resize(8), bs=2, num_workers=0)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (6, 2)
    numbers = ImageDataLoaders.from_df(rows.assign(is_valid=[0, 0, 0, 1, 0, 0, 1, 0]), tmp_path, valid_col="is_valid",
                                       item_tfms=Resize(8), bs=2, num_workers=0)
    assert (len(numbers.train_ds), len(numbers.valid_ds)) == (6, 2)


def test_a_table_of_full_paths_is_read_under_no_other_folder(tmp_path):
    make_images(tmp_path, [f"images/{i}.png" for i in range(8)])
    rows = pd.DataFrame({"fname": [str(tmp_path / "images" / f"{i}.png") for i in range(8)], "label": ["a", "b"] * 4})
    # was: "image file <path>/<path>/images/0.png does not exist"
    dls = ImageDataLoaders.from_df(rows, tmp_path, item_tfms=Resize(8), bs=2, num_workers=0, seed=0)
    assert dls.one_batch()[0].shape == (2, 3, 8, 8)
    assert ColReader("fname", pref=str(tmp_path) + os.path.sep)(rows.iloc[0]) == rows.fname[0]
    assert ColReader("fname", pref="images/")(pd.Series({"fname": "0.png"})) == "images/0.png"


def test_rows_naming_files_that_do_not_exist_are_counted_before_anything_is_loaded(tmp_path):
    make_images(tmp_path, [f"images/{i}.png" for i in range(8)])
    rows = pd.DataFrame({"fname": [f"{i}.png" for i in range(8)] + ["gone.png"], "label": ["a", "b"] * 4 + ["a"]})
    # was: found by whichever batch held it, part-way through an epoch
    with pytest.raises(FileNotFoundError, match=r"1 of the 9 files named in column 'fname' do not exist \(row 8: "
                                                r".*images.gone\.png\); names are read under .*pass folder="):
        ImageDataLoaders.from_df(rows, tmp_path, folder="images", item_tfms=Resize(8), bs=2, num_workers=0)
    rows.iloc[:8].to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(FileNotFoundError, match=r"8 of the 8 files .*row 0: .*0\.png; row 1: .*; \.\.\.\); names are "
                                                r"read under"):
        ImageDataLoaders.from_csv(tmp_path, item_tfms=Resize(8), bs=2, num_workers=0)  # the images are in images/
    dls = ImageDataLoaders.from_csv(tmp_path, folder="images", item_tfms=Resize(8), bs=2, num_workers=0)
    assert len(dls.train_ds) + len(dls.valid_ds) == 8


@pytest.mark.parametrize("workers", [0, 1])
def test_images_of_different_sizes_without_a_resize_say_to_add_one(tmp_path, workers):
    for label in "ab":
        (tmp_path / label).mkdir()
        for i in range(4):  # 16, 20, 24 and 28 pixels high
            Image.fromarray(np.zeros((16 + 4 * i, 20, 3), np.uint8)).save(tmp_path / label / f"{i}.png")
    dls = ImageDataLoaders.from_folder(tmp_path, valid_pct=0.25, seed=0, bs=4, num_workers=workers, shuffle=False)
    # was torch's "stack expects each tensor to be equal size, but got [3, 24, 20] at entry 0 and ..."
    with pytest.raises(ValueError, match=r"the items of a batch have different sizes.*part 0 of item 0 is \(3, \d+, 20\) "
                                         r"and of item \d \(3, \d+, 20\).*item_tfms=Resize\(224\)"):
        dls.one_batch()


def test_a_label_that_is_a_list_for_a_category_block_says_to_use_multicategory(tmp_path):
    make_images(tmp_path, [f"{c}/{i}.png" for c in "ab" for i in range(3)])
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_y=lambda path: [path.parent.name], item_tfms=Resize(8),
                       splitter=RandomSplitter(seed=0))
    with pytest.raises(TypeError, match=r"a label is a list \(\['[ab]'\]\).*one label per item: for several labels per "
                                        r"item use MultiCategoryBlock"):  # was: "unhashable type: 'list'"
        dblock.dataloaders(get_image_files(tmp_path), bs=2, num_workers=0)


def test_a_file_two_rows_label_differently_is_refused_naming_them(tmp_path):
    """Two annotation tables merged: one image labelled 'a' by one row and 'b' by another was
    trained on as both."""
    make_images(tmp_path, [f"{i}.png" for i in range(8)])
    rows = pd.DataFrame({"fname": [f"{i}.png" for i in range(8)], "label": ["a", "b"] * 4})
    merged = pd.concat([rows, pd.DataFrame({"fname": ["2.png"], "label": ["b"]})], ignore_index=True)
    with pytest.raises(ValueError, match=r"1 file\(s\) have rows with different labels, e\.g\. .*2\.png: rows \[2, 8\] label "
                                         r"it \['a', 'b'\].*drop_duplicates\(subset='fname'\)"):
        ImageDataLoaders.from_df(merged, tmp_path, item_tfms=Resize(8), bs=2, num_workers=0, seed=0)
    repeated = pd.concat([rows, rows.iloc[[2]]], ignore_index=True)  # the same label twice is not a conflict
    repeated["is_valid"] = [False] * 6 + [True, True, False]
    dls = ImageDataLoaders.from_df(repeated, tmp_path, valid_col="is_valid", item_tfms=Resize(8), bs=2, num_workers=0)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (7, 2)


def test_a_class_named_in_two_unicode_forms_is_one_class(tmp_path):
    composed, decomposed = "cr\u00e8me", "cre\u0300me"  # the same 'crème': NFC, and NFD as macOS names folders
    make_images(tmp_path, [f"train/{decomposed}/{i}.png" for i in range(3)] + [f"train/plain/{i}.png" for i in range(3)]
                + [f"train/{composed}/extra.png", f"valid/{composed}/0.png", "valid/plain/0.png"])
    dls = ImageDataLoaders.from_folder(tmp_path, valid="valid", item_tfms=Resize(8), bs=2, num_workers=0)
    assert list(dls.vocab) == [composed, "plain"]
    assert [int(y) for _, y in dls.valid_ds] == [0, 1]
    assert sorted(int(y) for _, y in dls.train_ds) == [0, 0, 0, 0, 1, 1, 1]
    table = pd.DataFrame({"flavour": [decomposed, "plain"] * 10, "size": np.linspace(0, 1, 20), "label": ["a", "b"] * 10})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tabular category keeps its own form: no value is "not seen in training"
        rows = TabularDataLoaders.from_df(table, procs=[Categorify], cat_names=["flavour"], cont_names=["size"],
                                          y_names="label", bs=4, device="cpu")
    assert rows.tabular.items["flavour"].tolist() == [1, 2] * 10


def test_an_animated_gif_gives_its_first_frame(tmp_path):
    make_images(tmp_path, ["a/still.png", "b/still.png"])
    frames = [Image.fromarray(np.full((8, 8, 3), v, dtype=np.uint8)) for v in (10, 200, 90)]
    frames[0].save(tmp_path / "a" / "anim.gif", save_all=True, append_images=frames[1:])
    image = load_image(tmp_path / "a" / "anim.gif")
    assert image.shape == (3, 8, 8) and int(image.float().mean()) in (9, 10, 11)
    items = [tmp_path / "a" / "anim.gif", tmp_path / "b" / "still.png", tmp_path / "a" / "still.png"]
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_y=parent_label, splitter=IndexSplitter([2]),
                       item_tfms=Resize(8))
    xb, yb = dblock.dataloaders(items, bs=2, num_workers=0, shuffle=False).one_batch()
    assert xb.shape == (2, 3, 8, 8) and yb.tolist() == [0, 1]  # stacked with a still image


def test_an_animated_webp_gives_its_first_frame_not_a_damaged_file_error(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, dtype=np.uint8)) for v in (10, 200, 90)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], lossless=True)
    for source in (tmp_path / "anim.webp", (tmp_path / "anim.webp").read_bytes()):
        image = load_image(source)
        assert image.shape == (3, 8, 8) and int(image.float().mean()) in (9, 10, 11)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_named_png_is_skipped_with_a_warning_and_refused_when_read(tmp_path):
    make_images(tmp_path, [f"{c}/{i}.png" for c in "ab" for i in range(3)])
    os.mkfifo(tmp_path / "b" / "pipe.png")
    with pytest.warns(RuntimeWarning, match=r"not regular files.*pipe\.png"):
        files = get_image_files(tmp_path)
    assert len(files) == 6
    with pytest.raises(ValueError, match=r"pipe\.png: it is a FIFO"):
        load_image(tmp_path / "b" / "pipe.png")  # would block forever if opened
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dls = ImageDataLoaders.from_folder(tmp_path, valid_pct=0.25, seed=0, item_tfms=Resize(8), bs=2,
                                           num_workers=0)
    assert len(dls.train_ds) + len(dls.valid_ds) == 6


# --- CSV files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("content", ["", "name,label\n"], ids=["empty", "header-only"])
def test_an_empty_csv_is_named_in_the_error_of_every_reader(tmp_path, content):
    csv = tmp_path / "labels.csv"
    csv.write_text(content)
    readers = [lambda: ImageDataLoaders.from_csv(tmp_path),
               lambda: TextDataLoaders.from_csv(tmp_path),
               lambda: TabularDataLoaders.from_csv(csv, y_names="label"),
               lambda: CollabDataLoaders.from_csv(csv)]
    for read in readers:
        with pytest.raises(ValueError, match=rf"CSV file {csv}.*(empty|no rows)"):
            read()


# --- segmentation masks ------------------------------------------------------------------------

def _segmentation(tmp_path, bad_mask):
    """Six images with 3-class masks; mask 3 is replaced by ``bad_mask``."""
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    (tmp_path / "lbl").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "img" / f"{i}.png")
        mask = bad_mask if i == 3 else rng.integers(0, 3, (16, 16), dtype=np.uint8)
        Image.fromarray(mask).save(tmp_path / "lbl" / f"{i}.png")
    dls = SegmentationDataLoaders.from_label_func(
        tmp_path, get_image_files(tmp_path / "img"), lambda p: tmp_path / "lbl" / p.name, codes=["bg", "a", "b"],
        item_tfms=Resize(8), bs=1, num_workers=0, valid_pct=0.34, seed=0)
    return lambda: [batch for loader in (dls.train, dls.valid) for batch in loader]


def test_a_mask_of_another_size_than_its_image_is_refused(tmp_path):
    """It was stretched over the image by Resize (labels on the wrong pixels), or failed in
    torch.stack without a file name."""
    every_batch = _segmentation(tmp_path, np.zeros((12, 20), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"the mask .*lbl/3\.png.* is 12x20 pixels \(height x width\) but its image "
                                         r".*img/3\.png.* is 16x16; a mask must have its image's size"):
        every_batch()


def test_a_mask_code_outside_the_codes_is_refused_naming_the_mask(tmp_path):
    """Code 7 with three codes trained until the loss raised 'Target 7 is out of bounds' (a
    device-side assert on a GPU), in whichever batch held it."""
    every_batch = _segmentation(tmp_path, np.full((16, 16), 7, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"mask .*lbl/3\.png holds class code\(s\) \[7\] but codes names 3 classes "
                                         r"\(0 to 2: bg, a, b\); add the missing classes to codes"):
        every_batch()


def test_a_palette_mask_gives_its_class_numbers_and_a_colour_mask_is_refused(tmp_path):
    """A palette PNG (Pascal VOC's format) was read as the grey of its colours: codes 38 and 75
    refused as "add the missing classes", or, without codes, trained on as classes 38 and 75."""
    codes = np.zeros((16, 16), dtype=np.uint8)
    codes[4:8], codes[10:] = 1, 2
    palette = Image.fromarray(codes, mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (253 * 3))
    every_batch = _segmentation(tmp_path, codes)
    palette.save(tmp_path / "lbl" / "3.png")
    every_batch()
    from fastlearn.vision.image import LoadMask, PILMask
    assert np.array_equal(np.asarray(PILMask.create(tmp_path / "lbl" / "3.png")), codes)
    assert LoadMask()((tmp_path / "lbl" / "3.png").read_bytes()).unique().tolist() == [0, 1, 2]
    Image.fromarray(np.stack([codes] * 3, axis=-1)).save(tmp_path / "grey_as_rgb.png")  # one class number, 3 times
    assert LoadMask()(tmp_path / "grey_as_rgb.png").unique().tolist() == [0, 1, 2]
    Image.fromarray(codes.astype(bool)).save(tmp_path / "binary.png")  # 1-bit: 0 and 1 (was 0 and 255)
    assert LoadMask()(tmp_path / "binary.png").unique().tolist() == [0, 1]
    colours = np.zeros((16, 16, 3), dtype=np.uint8)
    colours[4:8] = (255, 0, 0)
    Image.fromarray(colours).save(tmp_path / "lbl" / "3.png")
    with pytest.raises(ValueError, match=r"mask .*lbl/3\.png is a colour image \(mode RGB\) whose pixels are colours, "
                                         r"not class numbers"):
        every_batch()  # was: code 76 (the red's grey) refused as a missing class


def test_a_text_file_that_is_not_utf8_is_named(tmp_path):
    """It was a bare UnicodeDecodeError naming no file."""
    for split in ("train", "valid"):
        for label in ("pos", "neg"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(3):
                (tmp_path / split / label / f"{i}.txt").write_text(f"a {label} text number {i}")
    (tmp_path / "train" / "pos" / "latin1.txt").write_bytes("un café crème".encode("latin-1"))
    with pytest.raises(ValueError, match=r"text file .*train/pos/latin1\.txt is not UTF-8: byte b'\\xe9' at "
                                         r"position 6 .*convert it to UTF-8"):
        TextDataLoaders.from_folder(tmp_path, bs=2)


# --- numbers in tables -------------------------------------------------------------------------

def test_an_infinite_input_is_refused_in_training_and_at_predict(tmp_path):
    """At predict an infinite input gave probabilities [nan, nan] and a class; in training the
    error said 'missing values (NaN)... add FillMissing' with FillMissing already there."""
    from fastlearn.tabular.learner import tabular_learner
    from fastlearn.data.batch_transforms import Normalize
    from fastlearn.tabular.procs import Categorify, FillMissing
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"color": rng.choice(["red", "blue"], 32), "size": rng.normal(size=32)})
    df["label"] = np.where(df["size"] > 0, "big", "small")
    bad = df.copy()
    bad.loc[5, "size"] = -np.inf
    kwargs = dict(procs=[Categorify, FillMissing, Normalize], cat_names=["color"], cont_names=["size"],
                  y_names="label", bs=8)
    with pytest.raises(ValueError, match=r"continuous column 'size' of the data holds infinite values \(e\.g\. -inf "
                                         r"at row 5; 1 in all\).*replace them with NaN for FillMissing"):
        TabularDataLoaders.from_df(bad, path=tmp_path, **kwargs)
    learn = tabular_learner(TabularDataLoaders.from_df(df, path=tmp_path, **kwargs), layers=[4])
    row = df.iloc[0].copy()
    row["size"] = np.inf
    with pytest.raises(ValueError, match=r"continuous column 'size' of the new data holds infinite values"):
        learn.predict(row)


def test_a_date_column_listed_as_continuous_is_refused_with_add_datepart(tmp_path):
    """A date in cont_names became nanoseconds since 1970, a missing one -9.2e18 that FillMissing
    did not fill (predict with when=NaT gave [1., 0.]); a duration the same."""
    from fastlearn.tabular.procs import FillMissing
    df = pd.DataFrame({"when": pd.to_datetime(["2020-01-01", None, "2021-03-04", "2022-05-06"] * 4),
                       "took": pd.to_timedelta([1, 2, None, 4] * 4, unit="s"), "label": ["a", "b"] * 8})
    for column in ("when", "took"):
        with pytest.raises(ValueError, match=rf"continuous column '{column}' of the data holds dates or durations "
                                             rf"\(.*\), not numbers; .*add_datepart\(df, '{column}'\)"):
            TabularDataLoaders.from_df(df, path=tmp_path, procs=[FillMissing], cont_names=[column], y_names="label",
                                       bs=4)


def test_a_rating_that_is_not_a_number_is_named():
    """It was pandas' 'Unable to parse string \"five\" at position 0', naming no column."""
    ratings = pd.DataFrame({"user": [1, 2, 3, 1], "item": [1, 1, 2, 2], "rating": ["4", "3.5", "five", "2"]},
                           index=[10, 11, 12, 13])
    with pytest.raises(ValueError, match=r"target column 'rating' of the data holds non-numbers \(e\.g\. 'five' at "
                                         r"row 12; 1 in all\)"):
        CollabDataLoaders.from_df(ratings, bs=2)
