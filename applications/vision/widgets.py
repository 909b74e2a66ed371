"""Notebook widgets of chapter 2: ``ImageClassifierCleaner``, and ``widgets`` (ipywidgets) with
the names the chapter builds its small app from (``VBox``, ``Button``, ``Output``, ``Label``,
``FileUpload``).

``from fastlearn.vision.widgets import *`` works without ipywidgets (``pip install ipywidgets``
for the interactive parts): the cleaner then has no buttons but the same Python API, so it runs
in scripts and tests, and ``widgets.X`` raises an error saying what to install.

>>> cleaner = ImageClassifierCleaner(learn)        # doctest: +SKIP
>>> cleaner.mark(0, "<Delete>")                    # doctest: +SKIP
>>> for idx in cleaner.delete(): cleaner.fns[idx].unlink()  # doctest: +SKIP
>>> for idx, cat in cleaner.change(): shutil.move(str(cleaner.fns[idx]), path/cat)  # doctest: +SKIP
"""
from __future__ import annotations

import importlib.util
import io

import torch

from fastlearn.foundation import L
from fastlearn.paths import Path
from fastlearn.vision.image import PILImage

__all__ = ["Button", "Dropdown", "FileUpload", "HBox", "ImageClassifierCleaner", "Label", "Output", "VBox",
           "clear_output", "display", "widgets"]

KEEP, DELETE = "<Keep>", "<Delete>"
_SPLITS = ("Train", "Valid")


class _WidgetsNotInstalled:
    """Stands for ``ipywidgets`` where it is not installed: any use says how to install it."""

    def __getattr__(self, name: str):
        raise ModuleNotFoundError(f"widgets.{name} needs ipywidgets, which is not installed: pip install ipywidgets "
                                  "(ImageClassifierCleaner works without it, through mark/delete/change)")

    def __call__(self, *args, **kwargs):
        self.__getattr__("__call__")


if importlib.util.find_spec("IPython") is not None:
    from IPython.display import clear_output, display
else:  # outside IPython: show the repr
    def display(*objects) -> None:
        """Print each object (IPython, which draws them, is not installed)."""
        for obj in objects:
            print(repr(obj))

    def clear_output(wait: bool = False) -> None:
        """Nothing to clear outside IPython."""

if importlib.util.find_spec("ipywidgets") is not None:
    import ipywidgets as widgets
    from ipywidgets import HBox, VBox, Button, Dropdown, FileUpload, Label, Output  # noqa: F401
else:
    widgets = _WidgetsNotInstalled()
    HBox = VBox = Button = Dropdown = FileUpload = Label = Output = widgets


class ImageClassifierCleaner:
    """The images of one class of a trained classifier, highest loss first, for a person to keep,
    delete or relabel (chapter 2).

    Choose the class and the split with :meth:`select` (or the dropdowns in a notebook);
    ``fns`` are the files shown, ``losses`` their losses. Mark each with :meth:`mark` (or its
    dropdown): ``"<Keep>"`` (default), ``"<Delete>"`` or a class name. :meth:`delete` gives the
    positions marked for deletion and :meth:`change` the ``(position, new class)`` pairs; moving
    or deleting the files is left to the caller, as in the book. Changing the selection forgets
    the marks.
    """

    def __init__(self, learn, max_n: int = 100, height: int = 128, width: int = 256):
        self.learn, self.max_n, self.height, self.width = learn, max_n, height, width
        self.vocab = list(learn.dls.vocab)
        self._by_split: dict[int, tuple[list, torch.Tensor, torch.Tensor]] = {}
        self._box = None
        self.select(self.vocab[0], 0)

    def _split_data(self, ds_idx: int) -> tuple[list, torch.Tensor, torch.Tensor]:
        """Items, target indices and per-item losses of a split, in the split's order."""
        if ds_idx not in self._by_split:
            dl = self.learn.dls[ds_idx].new(shuffle=False, drop_last=False)
            _, targets, losses = self.learn.get_preds(dl=dl, with_loss=True)
            items = list(dl.dataset.items)
            self._by_split[ds_idx] = (items, targets.view(len(items), -1)[:, 0].long(), losses.view(len(items), -1)
                                      .mean(1))
        return self._by_split[ds_idx]

    def select(self, category, ds_idx: int = 0) -> "ImageClassifierCleaner":
        """Show ``category``'s images of the training (0) or validation (1) split; returns self."""
        if category not in self.vocab:
            raise ValueError(f"category {category!r} is not one of the classes {self.vocab}")
        if ds_idx not in (0, 1):
            raise ValueError(f"ds_idx={ds_idx!r}; use 0 for the training images, 1 for the validation images")
        items, targets, losses = self._split_data(ds_idx)
        index = self.vocab.index(category)
        chosen = [i for i in range(len(items)) if int(targets[i]) == index]
        chosen.sort(key=lambda i: -float(losses[i]))
        chosen = chosen[:self.max_n]
        self.category, self.ds_idx = category, ds_idx
        self.fns = L([Path(items[i]) for i in chosen])
        self.losses = losses[chosen] if chosen else torch.zeros(0)
        self.marks = [KEEP] * len(chosen)
        if self._box is not None:
            self._fill_images()
        return self

    @property
    def options(self) -> list:
        """What an image can be marked as."""
        return [KEEP, DELETE] + self.vocab

    def mark(self, idx: int, choice) -> None:
        """Mark image ``idx`` of the selection: ``"<Keep>"``, ``"<Delete>"`` or a class name."""
        if choice not in self.options:
            raise ValueError(f"cannot mark image {idx} as {choice!r}; choose one of {self.options}")
        if not 0 <= idx < len(self.marks):
            raise IndexError(f"image {idx} is not in the selection of {len(self.marks)} images")
        self.marks[idx] = choice

    def delete(self) -> L:
        """Positions in ``fns`` marked ``"<Delete>"``."""
        return L([i for i, m in enumerate(self.marks) if m == DELETE])

    def change(self) -> L:
        """``(position, new class)`` for the images marked with another class."""
        return L([(i, m) for i, m in enumerate(self.marks) if m not in (KEEP, DELETE) and m != self.category])

    def __repr__(self) -> str:
        split = "training" if self.ds_idx == 0 else "validation"
        shown = ", ".join(f"{f.name} ({float(loss):.3f})" for f, loss in zip(self.fns[:5], self.losses[:5]))
        more = ", ..." if len(self.fns) > 5 else ""
        return (f"ImageClassifierCleaner: {len(self.fns)} {split} images of {self.category!r}, highest loss "
                f"first: {shown}{more}")

    # --- the notebook view (ipywidgets) --------------------------------------------------------
    def widget(self):
        """The interactive view: class and split dropdowns over a row of images, each with its own
        dropdown. Needs ipywidgets."""
        if self._box is None:
            category = Dropdown(options=self.vocab, value=self.category)
            split = Dropdown(options=_SPLITS, value=_SPLITS[self.ds_idx])

            def reselect(change):
                self.select(category.value, _SPLITS.index(split.value))
            category.observe(reselect, names="value")
            split.observe(reselect, names="value")
            self._images = HBox(layout={"flex_flow": "row wrap"})
            self._box = VBox([HBox([category, split]), self._images])
            self._fill_images()
        return self._box

    def _fill_images(self) -> None:
        cells = []
        for i, fn in enumerate(self.fns):
            thumb = PILImage.create(fn).to_thumb(self.height, self.width)
            buffer = io.BytesIO()
            thumb.save(buffer, format="PNG")
            choice = Dropdown(options=self.options, value=self.marks[i], layout={"width": "max-content"})
            choice.observe(lambda change, i=i: self.mark(i, change["new"]), names="value")
            cells.append(VBox([widgets.Image(value=buffer.getvalue(), format="png"), choice]))
        self._images.children = cells

    def _ipython_display_(self) -> None:
        if isinstance(widgets, _WidgetsNotInstalled):
            print(repr(self) + "\n(pip install ipywidgets for buttons; mark(idx, choice) works without them)")
        else:
            display(self.widget())
