"""The ``fastlearn`` command: fine-tune an image classifier on a folder, predict with it, or run a demo.

    fastlearn fine-tune [FOLDER] --arch efficientnet_lite0 --epochs 3 --size 64 --bs 64 --lr 2e-3 --out model.pkl
    fastlearn predict model.pkl IMAGE [IMAGE ...] [--trust-code]
    fastlearn demo

FOLDER holds one subfolder of images per class, either under ``train/`` and ``valid/`` or
directly (then ``--valid-pct`` of the images are held out at random). Without FOLDER, a built-in
Fashion-MNIST subset is used. Next to ``--out`` go ``<stem>_confusion.png`` and ``<stem>_loss.png``.
``predict`` runs no code named by the model file (see ``load_learner``); ``--trust-code`` allows a
file that needs its author's own code, for files trusted as much as that code.

>>> main(["predict", "model.pkl", "shoe.png"])   # doctest: +SKIP
shoe.png	Sneaker	0.974
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

DEFAULT_N_PER_CLASS = 100
DEMO_N_VALID_PER_CLASS = 100  # 1,000 validation images: an error measured to about +-0.01
DEMO_SIZE = 96  # 28 px sources upsampled: 96 px measured better than 64 (docs/transfer.md)


class CommandError(Exception):
    """A user error the command reports in one line (exit status 2), without a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``fastlearn fine-tune: error: ...``), no usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False,
            high_open: bool = False, what: str = ""):
    """An argparse type: a finite ``kind`` (int or float) within ``low`` .. ``high``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value
    return parse


COUNT = _number(int, 0, what="a count (0 or more)")
POSITIVE_INT = _number(int, 1, what="a positive integer")
SEED = _number(int, 0, 2**32 - 1, what="a seed (0 to 4294967295)")
LEARNING_RATE = _number(float, 0, low_open=True, what="a learning rate (a positive number, e.g. 2e-3)")
FRACTION = _number(float, 0, 1, low_open=True, high_open=True, what="a fraction between 0 and 1 (e.g. 0.2)")


def _image_files(folder: Path) -> list[Path]:
    from fastlearn.data.getters import get_image_files
    return list(get_image_files(folder))


def _check_folder(folder: Path) -> tuple[list[Path], bool]:
    from fastlearn.vision.image import verify_images
    if not folder.exists():
        raise CommandError(f"folder {folder} does not exist; pass a folder with one subfolder of images per class")
    if not folder.is_dir():
        raise CommandError(f"{folder} is a file, not a folder; pass a folder with one subfolder of images per class")
    files = _image_files(folder)
    if not files:
        raise CommandError(f"no images (.png, .jpg, ...) found under {folder}; put the images of each class in "
                           "a subfolder named after the class (cat/1.jpg, dog/2.jpg, ...)")
    broken = verify_images(files)
    if broken:
        shown = ", ".join(str(f) for f in broken[:5])
        raise CommandError(f"{len(broken)} file(s) under {folder} cannot be read as images: {shown}; "
                           "remove or replace them")
    split_folders = (folder / "train").is_dir() and (folder / "valid").is_dir()
    labels = {f.parent.name for f in files if not split_folders or f.parent.parent.name == "train"}
    if len(labels) < 2:
        raise CommandError(f"found images of only {len(labels)} class ({sorted(labels)}) under {folder}; "
                           "a classifier needs at least two class subfolders")
    return files, split_folders


def build_dataloaders(folder: Path, size: int, bs: int, valid_pct: float, seed: int, augment: bool = True):
    """Loaders for a folder of images labelled by subfolder (train/valid subfolders or a random split)."""
    from fastlearn.data.datablock import DataBlock
    from fastlearn.data.blocks import CategoryBlock
    from fastlearn.data.getters import get_image_files, parent_label
    from fastlearn.data.splitters import GrandparentSplitter, RandomSplitter
    from fastlearn.vision.augment import aug_transforms
    from fastlearn.vision.data import ImageBlock
    from fastlearn.vision.transforms import Resize
    _, split_folders = _check_folder(folder)
    splitter = GrandparentSplitter(train_name="train", valid_name="valid") if split_folders else \
        RandomSplitter(valid_pct=valid_pct, seed=seed)
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                      splitter=splitter, item_tfms=Resize(size),
                      batch_tfms=aug_transforms() if augment else None)
    return block.dataloaders(folder, bs=bs, num_workers=0, seed=seed)


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def fine_tune(folder: str | None, arch: str, epochs: int, size: int, bs: int, lr: float, out: str,
              valid_pct: float, pretrained: bool, freeze_epochs: int = 1, seed: int = 42,
              n_per_class: int = DEFAULT_N_PER_CLASS, n_valid_per_class: int | None = None):
    """Train and export a classifier; returns the trained Learner."""
    from fastlearn.metrics import accuracy, error_rate
    from fastlearn.torch_core import set_seed
    from fastlearn.vision.interpret import ClassificationInterpretation
    from fastlearn.vision.learner import vision_learner
    if folder is None:
        from fastlearn.datasets import fashion_mnist
        print(f"no folder given: using the built-in Fashion-MNIST subset ({n_per_class} training images per class)")
        folder = fashion_mnist(n_per_class=n_per_class, n_valid_per_class=n_valid_per_class)
    folder = Path(folder)
    if epochs < 0 or freeze_epochs < 0 or epochs + freeze_epochs == 0:
        raise CommandError(f"--epochs {epochs} --freeze-epochs {freeze_epochs}: expected non-negative counts "
                           "with at least one epoch in all")
    out_path = Path(out).resolve()
    if out_path.is_dir():
        raise CommandError(f"--out {out} is a folder; pass a file name such as {out_path / 'model.pkl'}")
    set_seed(seed)
    dls = build_dataloaders(folder, size, bs, valid_pct, seed)
    print(f"data: {len(dls.train_ds)} training and {len(dls.valid_ds)} validation images, "
          f"{len(dls.vocab)} classes: {', '.join(map(str, dls.vocab))}")
    learn = vision_learner(dls, arch, pretrained=pretrained, metrics=[error_rate, accuracy])
    start = time.perf_counter()
    learn.fine_tune(epochs, base_lr=lr, freeze_epochs=freeze_epochs)
    _check_trained(learn, lr)
    _, valid_loss, final_error = learn.recorder.values[-1][:3]  # [train_loss, valid_loss, error_rate, ...]
    print(f"final error rate: {final_error:.4f} (accuracy {1 - final_error:.4f}, valid loss {valid_loss:.4f}) "
          f"after {time.perf_counter() - start:.0f} s")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib.pyplot as plt
    loss_plot = out_path.with_name(f"{out_path.stem}_loss.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    learn.recorder.plot_loss(ax=ax)
    _save_figure(fig, loss_plot)
    interp = ClassificationInterpretation.from_learner(learn)
    confusion = out_path.with_name(f"{out_path.stem}_confusion.png")
    interp.plot_confusion_matrix(figsize=(7, 7), dpi=80)
    _save_figure(plt.gcf(), confusion)
    learn.export(out_path)
    print(f"saved {out_path}, {confusion.name} and {loss_plot.name}")
    return learn


def _check_trained(learn, lr: float) -> None:
    """No result (and no export) unless training finished with finite weights and a full results row."""
    from fastlearn.tracker import weights_are_finite
    stopped = getattr(getattr(learn, "terminate_on_nan", None), "nan_at", None)
    if stopped is not None or not weights_are_finite(learn.model):
        where = f" at epoch {stopped[0]}, batch {stopped[1] + 1}" if stopped is not None else ""
        raise CommandError(f"training diverged: the loss became NaN or infinite{where} with --lr {lr}; nothing "
                           "was exported. Lower --lr (e.g. 2e-3) or check the images")
    row = learn.recorder.values[-1] if learn.recorder.values else []
    try:
        complete = len(row) >= 3 and all(math.isfinite(float(v)) for v in row[:3])
    except (TypeError, ValueError):
        complete = False
    if not complete:
        raise CommandError(f"training gave no complete result (last row {row}: train loss, valid loss, error "
                           "rate); nothing was exported")


def _check_image_classifier(learn, model: str) -> None:
    kinds = tuple(getattr(learn.dls.valid, "kinds", None) or ())
    if kinds[:1] != ("image",) or kinds[1:2] not in (("category",), ()) or learn.dls.vocab is None:
        raise CommandError(f"{model} is not an image classifier ({type(learn.dls).__name__}, parts {list(kinds)}); "
                           "`fastlearn predict` takes models written by `fastlearn fine-tune` or by "
                           "vision_learner(...).export(); load other models in Python with load_learner()")


def predict(model: str, images: Sequence[str], trust_code: bool = False) -> list[tuple[str, str, float]]:
    """Print ``image<TAB>label<TAB>probability`` for each image; returns the rows."""
    from fastlearn.loading import load_learner
    from fastlearn.vision.image import verify_image
    if not Path(model).is_file():
        raise CommandError(f"model file {model} does not exist; create it with `fastlearn fine-tune ... --out {model}`")
    for image in images:
        if not Path(image).is_file():
            raise CommandError(f"image {image} does not exist")
        if not verify_image(image):
            raise CommandError(f"{image} is not an image fastlearn can read (png, jpg, ...)")
    try:
        learn = load_learner(model, trust_code=trust_code)
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(str(error)) from error
    _check_image_classifier(learn, model)
    rows = []
    for image in images:
        label, index, probs = learn.predict(Path(image))
        probability = float(probs[int(index)])
        rows.append((image, str(label), probability))
        print(f"{image}\t{label}\t{probability:.3f}")
    return rows


def demo(epochs: int, n_per_class: int, size: int, out: str, arch: str, bs: int = 32,
         n_valid_per_class: int = DEMO_N_VALID_PER_CLASS) -> None:
    """Fine-tune on the built-in Fashion-MNIST subset, set the error beside two baselines on the
    same split (a linear probe on the frozen body, a logistic regression on pixels), then predict
    a few held-out images."""
    from fastlearn.datasets import fashion_mnist
    from fastlearn.vision.baselines import linear_probe, pixel_logistic_regression
    folder = fashion_mnist(n_per_class=n_per_class, n_valid_per_class=n_valid_per_class)
    learn = fine_tune(None, arch, epochs, size, bs, 2e-3, out, 0.2, True, n_per_class=n_per_class,
                      n_valid_per_class=n_valid_per_class)
    probe, pixels = linear_probe(learn.dls, arch), pixel_logistic_regression(learn.dls)
    final_error = learn.recorder.values[-1][2]
    print(f"\nvalidation error on the same {probe.n_valid} images: fine-tuned {final_error:.4f}; "
          f"baselines: linear probe on the frozen {arch} features {probe.error:.4f} ({probe.seconds:.0f} s), "
          f"logistic regression on pixels {pixels.error:.4f} ({pixels.seconds:.0f} s)")
    held_out = [sorted((folder / "valid" / name).glob("*.png"))[0] for name in
                sorted(p.name for p in (folder / "valid").iterdir())[:6]]
    print(f"\npredicting {len(held_out)} held-out validation images (never trained on):")
    rows = predict(out, [str(p) for p in held_out])
    correct = sum(Path(image).parent.name == label for image, label, _ in rows)
    print(f"{correct}/{len(rows)} correct")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastlearn", description="Fine-tune and use image classifiers.")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    tune = commands.add_parser("fine-tune", help="train a classifier on a folder of images labelled by subfolder")
    tune.add_argument("folder", nargs="?", default=None,
                      help="folder of class subfolders (or train/ and valid/); default: built-in Fashion-MNIST")
    tune.add_argument("--arch", default="efficientnet_lite0", help="architecture name (default efficientnet_lite0)")
    tune.add_argument("--epochs", type=COUNT, default=3, help="epochs after unfreezing (default 3)")
    tune.add_argument("--freeze-epochs", type=COUNT, default=1, help="epochs with the body frozen (default 1)")
    tune.add_argument("--size", type=POSITIVE_INT, default=64, help="image size in pixels (default 64)")
    tune.add_argument("--bs", type=POSITIVE_INT, default=64, help="batch size (default 64)")
    tune.add_argument("--lr", type=LEARNING_RATE, default=2e-3, help="base learning rate (default 2e-3)")
    tune.add_argument("--out", default="model.pkl", help="exported model file (default model.pkl)")
    tune.add_argument("--valid-pct", type=FRACTION, default=0.2,
                      help="fraction held out when there are no train/valid subfolders (default 0.2)")
    tune.add_argument("--no-pretrained", dest="pretrained", action="store_false", help="start from random weights")
    tune.add_argument("--n-per-class", type=POSITIVE_INT, default=DEFAULT_N_PER_CLASS,
                      help="built-in data only: training images per class (default 100)")
    tune.add_argument("--seed", type=SEED, default=42, help="random seed (default 42)")
    pred = commands.add_parser("predict", help="print the label and probability of each image")
    pred.add_argument("model", help="file written by fine-tune --out")
    pred.add_argument("images", nargs="+", help="image files")
    pred.add_argument("--trust-code", action="store_true",
                      help="let the model file name code outside fastlearn (its author's model class...); only "
                           "for files you trust as much as that code")
    dem = commands.add_parser("demo", help="fine-tune on built-in Fashion-MNIST, then predict held-out images")
    dem.add_argument("--epochs", type=COUNT, default=3)
    dem.add_argument("--bs", type=POSITIVE_INT, default=32)
    dem.add_argument("--n-per-class", type=POSITIVE_INT, default=DEFAULT_N_PER_CLASS)
    dem.add_argument("--size", type=POSITIVE_INT, default=DEMO_SIZE)
    dem.add_argument("--arch", default="efficientnet_lite0")
    dem.add_argument("--out", default="demo_out/model.pkl", help="exported model file (default demo_out/model.pkl)")
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"fastlearn: warning: {_one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastlearn`` command; returns the exit status: 0, 2 for a user error,
    1 for any other error, 130 when interrupted. Every error is one line on stderr
    (``--traceback`` shows the full traceback of one that is not a user error)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: no spinning threads
    args = _parser().parse_args(argv)
    prefix = f"fastlearn {args.command}: error:"
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            if args.command == "fine-tune":
                fine_tune(args.folder, args.arch, args.epochs, args.size, args.bs, args.lr, args.out,
                          args.valid_pct, args.pretrained, args.freeze_epochs, args.seed, args.n_per_class)
            elif args.command == "predict":
                predict(args.model, args.images, args.trust_code)
            else:
                demo(args.epochs, args.n_per_class, args.size, args.out, args.arch, args.bs)
        except (CommandError, FileNotFoundError, ValueError) as error:
            print(f"{prefix} {_one_line(error)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"fastlearn {args.command}: interrupted", file=sys.stderr)
            return 130
        except Exception as error:  # noqa: BLE001  (a command line reports, in one line, what went wrong)
            if args.traceback:
                raise
            print(f"{prefix} {type(error).__name__}: {_one_line(error)} (run `fastlearn --traceback "
                  f"{args.command} ...` for the traceback)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
