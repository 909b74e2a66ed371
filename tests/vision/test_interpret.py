"""Interpretation, show_results, tta and image-folder utilities, headless."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock
from fastlearn.data.getters import get_image_files, parent_label
from fastlearn.data.splitters import GrandparentSplitter
from fastlearn.vision.augment import aug_transforms
from fastlearn.vision.data import ImageBlock
from fastlearn.vision.interpret import ClassificationInterpretation
from fastlearn.vision.learner import vision_learner
from fastlearn.vision import show_results, tta
from fastlearn.vision.transforms import Resize
from fastlearn.vision.image import verify_images
from fastlearn.vision.image_folders import resize_images


@pytest.fixture(scope="module")
def learn(fashion_mnist_path):
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                      splitter=GrandparentSplitter(), item_tfms=Resize(32), batch_tfms=aug_transforms())
    dls = block.dataloaders(fashion_mnist_path, bs=32, num_workers=0, seed=0)
    learn = vision_learner(dls, "efficientnet_lite0")
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, 2e-3)
    return learn


def test_confusion_matrix_matches_predictions(learn):
    interp = ClassificationInterpretation.from_learner(learn)
    preds, targs = learn.get_preds()
    cm = interp.confusion_matrix()
    n = len(learn.dls.vocab)
    assert cm.shape == (n, n) and cm.sum() == len(learn.dls.valid_ds)
    decoded = preds.argmax(1)
    for i, j in [(0, 0), (1, 2), (3, 3), (6, 0)]:
        assert cm[i, j] == int(((targs == i) & (decoded == j)).sum())
    assert np.trace(cm) == int((decoded == targs).sum())
    confused = interp.most_confused(min_val=1)
    assert all(a != p and count >= 1 for a, p, count in confused)
    assert [c for _, _, c in confused] == sorted((c for _, _, c in confused), reverse=True)
    off_diagonal = cm.sum() - np.trace(cm)
    assert sum(c for _, _, c in confused) == off_diagonal
    assert interp.most_confused(min_val=int(cm.max()) + 1) == []


def test_plots_run_headless_and_report_adds_up(learn, capsys):
    assert matplotlib.get_backend().lower() == "agg"
    interp = ClassificationInterpretation.from_learner(learn)
    assert interp.plot_confusion_matrix(normalize=True, figsize=(5, 5), dpi=60) is None
    assert plt.gcf().get_dpi() == 60
    assert interp.plot_top_losses(6, nrows=2) is None
    fig = plt.gcf()
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    losses, indices = interp.top_losses(6)
    assert len(titles) == 6 and bool((losses[:-1] >= losses[1:]).all())
    first = int(indices[0])
    assert titles[0].startswith(f"{interp.vocab[int(interp.decoded[first])]}/{interp.vocab[int(interp.targs[first])]}")
    interp.print_classification_report()
    report = capsys.readouterr().out
    accuracy = float(np.trace(interp.confusion_matrix())) / len(learn.dls.valid_ds)
    assert f"{accuracy:.2f}" in report.split("accuracy")[1].split("\n")[0]
    assert show_results(learn, max_n=4, nrows=1) is None  # nothing for a notebook to show twice
    assert len([ax for ax in plt.gcf().axes if ax.get_visible()]) == 4
    assert learn.show_results(max_n=2) is None  # the course's method form
    assert len([ax for ax in plt.gcf().axes if ax.get_visible()]) == 2


def test_tta_mixes_augmented_and_plain_predictions(learn):
    preds, targs = learn.get_preds()
    mixed, tta_targs = tta(learn, n=2, beta=0.25)
    assert torch.equal(tta_targs, targs) and mixed.shape == preds.shape
    torch.testing.assert_close(mixed.sum(1), torch.ones(len(mixed)), atol=1e-4, rtol=0)
    both, _ = tta(learn, n=2, beta=None)
    assert both.shape == (2, *preds.shape)
    torch.testing.assert_close(both[1], preds)
    assert not torch.allclose(both[0], preds)  # the augmented passes differ from the plain one
    plain, _ = tta(learn, n=2, beta=1.0)
    torch.testing.assert_close(plain, preds)
    method_preds, method_targs = learn.tta(n=1, beta=1.0)  # the course's method form
    torch.testing.assert_close(method_preds, preds)
    assert torch.equal(method_targs, targs)


def test_verify_and_resize_images(tmp_path):
    folder = tmp_path / "raw" / "cats"
    folder.mkdir(parents=True)
    Image.new("RGB", (300, 150), "red").save(folder / "big.png")
    Image.new("L", (40, 20)).save(folder / "small.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg")
    files = get_image_files(tmp_path / "raw")
    assert [p.name for p in verify_images(files)] == ["broken.jpg"]
    (folder / "broken.jpg").unlink()
    written = resize_images(tmp_path / "raw", max_size=100, dest=tmp_path / "small", recurse=True)
    sizes = {p.relative_to(tmp_path / "small").as_posix(): Image.open(p).size for p in written}
    assert sizes == {"cats/big.png": (100, 50), "cats/small.png": (40, 20)}
    assert Image.open(tmp_path / "small" / "cats" / "small.png").mode == "RGB"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        resize_images(tmp_path / "nowhere", max_size=10)


def test_interpretation_of_the_shuffled_training_set_lines_up(learn):
    interp = ClassificationInterpretation.from_learner(learn, ds_idx=0)
    assert len(interp.targs) == len(learn.dls.train_ds)
    labels = [learn.dls.train_ds[i][1] for i in range(len(learn.dls.train_ds))]
    assert interp.targs.tolist() == [int(label) for label in labels]


def test_download_images_names_files_in_order_and_skips_dead_links(tmp_path):
    import io

    from archive_server import ArchiveServer
    from fastlearn.vision.image_folders import download_images
    server = ArchiveServer()
    try:
        for name, colour in (("a.png", "red"), ("b", "blue")):
            buffer = io.BytesIO()
            Image.new("RGB", (4, 4), colour).save(buffer, format="PNG")
            server.files[f"/{name}"] = buffer.getvalue()
        urls = [server.url("/a.png"), server.url("/missing.jpg"), server.url("/b")]
        with pytest.warns(UserWarning, match="1 of 3 URL.*missing.jpg"):
            written = download_images(tmp_path / "grizzly", urls=urls, n_workers=2)
        assert [p.name for p in written] == ["00000000.png", "00000002.jpg"]
        assert verify_images(written) == []
        (tmp_path / "urls.txt").write_text(urls[0] + "\n\n" + urls[2] + "\n")
        kept = download_images(tmp_path / "named", url_file=tmp_path / "urls.txt", max_pics=1, preserve_filename=True)
        assert [p.name for p in kept] == ["a.png"]
    finally:
        server.stop()
