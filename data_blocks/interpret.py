"""What a trained classifier gets wrong: confusion matrix, most confused pairs, top losses, a report.

It serves every application's classifiers (images, texts, tables). Plots work headless (the Agg
backend); for texts, ``plot_top_losses`` gives a table of the texts instead of a figure.

>>> interp = ClassificationInterpretation.from_learner(learn)   # doctest: +SKIP
>>> interp.most_confused(min_val=2)                            # doctest: +SKIP
[('shirt', 'T-shirt/top', 7), ...]
"""
from __future__ import annotations


import numpy as np
import torch

from fastlearn.data.results import _input_block, decoded_inputs, subplot_grid
from fastlearn.data.show import show_sample


def class_names(dls, n_classes: int) -> list[str]:
    """The names of the ``n_classes`` classes: ``dls.vocab``, or its last list when the loaders
    keep one vocab per part (a text classifier's ``[tokens, labels]``), else the indices.

    >>> class DLS: vocab = [["xxunk", "xxpad", "the"], ["neg", "pos"]]
    >>> class_names(DLS(), 2)
    ['neg', 'pos']
    """
    vocab = getattr(dls, "vocab", None)
    if vocab is None:
        return [str(i) for i in range(n_classes)]
    vocab = list(vocab)
    if vocab and all(isinstance(v, (list, tuple)) or hasattr(v, "items") for v in vocab) and \
            not isinstance(vocab[0], str):
        vocab = list(vocab[-1])
    return [str(v) for v in vocab]


class ClassificationInterpretation:
    """Predictions, targets and losses of a classifier over one loader, with ways to look at them.

    >>> interp = ClassificationInterpretation.from_learner(learn)   # doctest: +SKIP
    >>> fig = interp.plot_confusion_matrix(figsize=(6, 6))          # doctest: +SKIP
    """

    def __init__(self, learn, dl, preds: torch.Tensor, targs: torch.Tensor, decoded: torch.Tensor,
                 losses: torch.Tensor) -> None:
        self.learn, self.dl = learn, dl
        self.preds, self.targs, self.decoded, self.losses = preds, targs, decoded, losses
        self.vocab = class_names(learn.dls, preds.shape[-1])

    @classmethod
    def from_learner(cls, learn, ds_idx: int = 1, dl=None, act=None) -> "ClassificationInterpretation":
        """Run ``learn`` over ``dl`` (default: ``learn.dls[ds_idx]``, the validation set).

        >>> ClassificationInterpretation.from_learner(learn).confusion_matrix().shape   # doctest: +SKIP
        (10, 10)
        """
        dl = dl if dl is not None else learn.dls[ds_idx]
        dl = dl.new(shuffle=False, drop_last=False)  # item i of the results is item i of the dataset
        preds, targs, decoded, losses = learn.get_preds(dl=dl, with_decoded=True, with_loss=True, act=act)
        if targs is None:
            raise ValueError("ClassificationInterpretation needs targets; the loader has none "
                             "(for a test_dl, pass with_labels=True)")
        return cls(learn, dl, preds, targs, decoded, losses)

    def confusion_matrix(self) -> np.ndarray:
        """Counts with actual classes as rows and predicted classes as columns.

        >>> interp.confusion_matrix()[0, 1]   # doctest: +SKIP
        3
        """
        n = len(self.vocab)
        actual, predicted = self.targs.flatten().long(), self.decoded.flatten().long()
        counts = torch.bincount(actual * n + predicted, minlength=n * n)
        return counts.reshape(n, n).numpy()

    def plot_confusion_matrix(self, normalize: bool = False, title: str = "Confusion matrix",
                              cmap: str = "Blues", norm_dec: int = 2, plot_txt: bool = True,
                              figsize: tuple[float, float] | None = None, dpi: int = 60) -> None:
        """Draw the confusion matrix (rows normalized to 1 with ``normalize``) in a new figure;
        ``plt.gcf()`` is that figure, to save it.

        >>> interp.plot_confusion_matrix(normalize=True)   # doctest: +SKIP
        >>> plt.gcf().savefig("confusion.png")            # doctest: +SKIP
        """
        import matplotlib.pyplot as plt
        cm = self.confusion_matrix().astype(float)
        if normalize:
            cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        fig = plt.figure(figsize=figsize, dpi=dpi)
        ax = fig.add_subplot(1, 1, 1)
        ax.imshow(cm, interpolation="nearest", cmap=cmap)
        ax.set_title(title)
        ticks = np.arange(len(self.vocab))
        ax.set_xticks(ticks, self.vocab, rotation=90)
        ax.set_yticks(ticks, self.vocab)
        if plot_txt:
            threshold = cm.max() / 2.0
            for i in range(cm.shape[0]):
                for j in range(cm.shape[1]):
                    text = f"{cm[i, j]:.{norm_dec}f}" if normalize else f"{int(cm[i, j])}"
                    ax.text(j, i, text, ha="center", va="center",
                            color="white" if cm[i, j] > threshold else "black")
        ax.set_ylabel("Actual")
        ax.set_xlabel("Predicted")
        ax.grid(False)
        fig.tight_layout()

    def most_confused(self, min_val: int = 1) -> list[tuple[str, str, int]]:
        """``(actual, predicted, count)`` for off-diagonal cells with ``count >= min_val``, most first.

        >>> interp.most_confused(min_val=5)   # doctest: +SKIP
        [('shirt', 'T-shirt/top', 9)]
        """
        cm = self.confusion_matrix()
        pairs = [(self.vocab[i], self.vocab[j], int(cm[i, j]))
                 for i in range(len(cm)) for j in range(len(cm)) if i != j and cm[i, j] >= min_val]
        return sorted(pairs, key=lambda pair: -pair[2])

    def top_losses(self, k: int | None = None, largest: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` largest (or smallest) per-item losses and their item indices."""
        k = len(self.losses) if k is None else min(k, len(self.losses))
        return self.losses.topk(k, largest=largest)

    def plot_top_losses(self, k: int, largest: bool = True, nrows: int | None = None,
                        figsize: tuple[float, float] | None = None):
        """Show the ``k`` items with the largest losses titled ``predicted/actual/loss/probability``,
        in one figure. For texts, returns :meth:`top_losses_table` instead (a notebook shows it).

        >>> interp.plot_top_losses(9, nrows=3)   # doctest: +SKIP
        """
        block = _input_block(self.dl)
        if block.kind == "text":
            return self.top_losses_table(k, largest)
        losses, indices = self.top_losses(k, largest)
        inputs = decoded_inputs(self.dl, indices.tolist())
        fig, axes = subplot_grid(len(inputs), nrows, figsize)
        for ax, x, index, loss in zip(axes, inputs, indices.tolist(), losses.tolist()):
            show_sample((x,), [block], ax)
            predicted, actual = int(self.decoded[index]), int(self.targs[index])
            ax.set_title(f"{self.vocab[predicted]}/{self.vocab[actual]}\n{loss:.2f}/"
                         f"{float(self.preds[index][actual]):.2f}", fontsize=9)
        fig.suptitle("Prediction/Actual/Loss/Probability")
        fig.tight_layout()

    def top_losses_table(self, k: int, largest: bool = True, trunc_at: int | None = 300):
        """The ``k`` items with the largest (or smallest) losses as a DataFrame: the input as
        readable text (cut at ``trunc_at`` characters), target, prediction, loss and the
        probability given to the target.

        >>> interp.top_losses_table(3).columns.tolist()   # doctest: +SKIP
        ['input', 'target', 'predicted', 'loss', 'probability']
        """
        import pandas as pd
        losses, indices = self.top_losses(k, largest)
        block = _input_block(self.dl)
        inputs = decoded_inputs(self.dl, indices.tolist())
        rows = []
        for x, index, loss in zip(inputs, indices.tolist(), losses.tolist()):
            text = block.readable(x)
            if trunc_at is not None and len(text) > trunc_at:
                text = text[:trunc_at] + "…"
            actual = int(self.targs[index])
            rows.append((text, self.vocab[actual], self.vocab[int(self.decoded[index])], round(loss, 4),
                         round(float(self.preds[index][actual]), 4)))
        return pd.DataFrame(rows, columns=["input", "target", "predicted", "loss", "probability"])

    def classification_report(self) -> str:
        """Precision, recall, F1 and support per class, with accuracy and macro / weighted averages."""
        cm = self.confusion_matrix().astype(float)
        support = cm.sum(axis=1)
        true_pos = np.diag(cm)
        precision = np.divide(true_pos, cm.sum(axis=0), out=np.zeros_like(true_pos), where=cm.sum(axis=0) > 0)
        recall = np.divide(true_pos, support, out=np.zeros_like(true_pos), where=support > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(true_pos),
                       where=(precision + recall) > 0)
        width = max(12, max(len(v) for v in self.vocab) + 2)
        lines = [f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}", ""]
        for name, p, r, f, s in zip(self.vocab, precision, recall, f1, support):
            lines.append(f"{name:>{width}} {p:9.2f} {r:9.2f} {f:9.2f} {int(s):9d}")
        total = support.sum()
        lines += ["", f"{'accuracy':>{width}} {'':>9} {'':>9} {true_pos.sum() / max(total, 1):9.2f} {int(total):9d}"]
        weights = support / max(total, 1)
        lines.append(f"{'macro avg':>{width}} {precision.mean():9.2f} {recall.mean():9.2f} {f1.mean():9.2f} "
                     f"{int(total):9d}")
        lines.append(f"{'weighted avg':>{width}} {(precision * weights).sum():9.2f} {(recall * weights).sum():9.2f} "
                     f"{(f1 * weights).sum():9.2f} {int(total):9d}")
        return "\n".join(lines)

    def print_classification_report(self) -> None:
        """Print :meth:`classification_report`.

        >>> interp.print_classification_report()   # doctest: +SKIP
        """
        print(self.classification_report())
