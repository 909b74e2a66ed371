"""fastlearn.vision.widgets: ImageClassifierCleaner with and without ipywidgets, the widgets names."""
from __future__ import annotations

import importlib
import shutil
import sys

import pytest

from fastlearn.vision.all import *  # noqa: F401,F403


@pytest.fixture(scope="module")
def learn_and_path(tmp_path_factory, bears_path):
    path = Path(tmp_path_factory.mktemp("cleaner") / "bears")
    shutil.copytree(bears_path, path)
    dls = ImageDataLoaders.from_folder(path, valid_pct=0.25, seed=0, item_tfms=Resize(16), bs=8)
    learn = vision_learner(dls, resnet18, pretrained=False)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
    return learn, path


def test_cleaner_lists_a_class_by_loss_and_returns_the_marks(learn_and_path):
    from fastlearn.vision.widgets import ImageClassifierCleaner
    learn, path = learn_and_path
    cleaner = ImageClassifierCleaner(learn, max_n=4)
    vocab = list(learn.dls.vocab)
    assert cleaner.category == vocab[0] and cleaner.ds_idx == 0 and len(cleaner.fns) == 4
    assert list(cleaner.losses) == sorted(cleaner.losses, reverse=True)
    assert all(f.parent.name == vocab[0] for f in cleaner.fns)
    _, targets, losses = learn.get_preds(dl=learn.dls.train.new(shuffle=False, drop_last=False), with_loss=True)
    assert float(cleaner.losses[0]) == pytest.approx(float(losses[targets == 0].max()), rel=1e-4)
    cleaner.mark(1, "<Delete>")
    cleaner.mark(2, vocab[2])
    cleaner.mark(3, vocab[0])                                   # its own class: no change
    assert cleaner.delete() == [1] and cleaner.change() == [(2, vocab[2])]
    assert "highest loss first" in repr(cleaner)
    cleaner.select(vocab[1], 1)
    assert cleaner.delete() == [] and all(f.parent.name == vocab[1] for f in cleaner.fns)
    with pytest.raises(ValueError, match="not one of the classes"):
        cleaner.select("unicorn")
    with pytest.raises(ValueError, match="choose one of"):
        cleaner.mark(0, "<Burn>")


def test_cleaner_widget_marks_through_its_dropdowns(learn_and_path):
    pytest.importorskip("ipywidgets")
    from fastlearn.vision.widgets import ImageClassifierCleaner, VBox, widgets
    learn, _ = learn_and_path
    cleaner = ImageClassifierCleaner(learn, max_n=3)
    box = cleaner.widget()
    assert isinstance(box, VBox)
    category, split = box.children[0].children
    cell = box.children[1].children[0]
    assert isinstance(cell.children[0], widgets.Image)
    cell.children[1].value = "<Delete>"
    assert cleaner.delete() == [0]
    split.value = "Valid"
    assert cleaner.ds_idx == 1 and len(box.children[1].children) == len(cleaner.fns)


def test_widgets_without_ipywidgets_say_what_to_install(monkeypatch, capsys, learn_and_path):
    import fastlearn.vision.widgets as module
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    try:
        fresh = importlib.reload(module)
        with pytest.raises(ModuleNotFoundError, match="pip install ipywidgets"):
            fresh.widgets.FileUpload()
        cleaner = fresh.ImageClassifierCleaner(learn_and_path[0], max_n=2)
        cleaner._ipython_display_()
        assert "mark(idx, choice)" in capsys.readouterr().out
    finally:
        monkeypatch.delitem(sys.modules, "ipywidgets")
        importlib.reload(module)
