"""Blocks: what one part of a sample is, how it is built, decoded, shown and learnt.

A block carries its type transforms (item → tensor), the item and batch transforms it needs, its
*kind* (which item/batch transforms touch it, see :mod:`fastlearn.data.transforms`), and for a
target block the loss and the number of outputs (``dls.loss_func``, ``dls.c``).

>>> block = CategoryBlock()
>>> block.kind, [type(t).__name__ for t in block.type_tfms]
('category', ['Categorize'])
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from fastlearn.data.categorical import Categorize, EncodedMultiCategorize, MultiCategorize, RegressionSetup
from fastlearn.data.checks import is_missing
from fastlearn.data.pipeline import Pipeline
from fastlearn.data.transforms import check_kinds
from fastlearn.foundation import listify
from fastlearn.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat

BLOCKS: dict[str, type] = {}
# the loss a target of each kind is learnt with, unless the Learner is given one
TARGET_LOSSES: dict[str, type] = {"category": CrossEntropyLossFlat, "multicategory": BCEWithLogitsLossFlat,
                                  "regression": MSELossFlat}


def register_block(cls: type) -> type:
    """Class decorator: make a block rebuildable by name from an export description."""
    BLOCKS[cls.__name__] = cls
    return cls


def block_from_description(description: dict) -> "TransformBlock":
    """Rebuild a block from ``{"name": ..., "args": {...}}`` (see :meth:`TransformBlock.describe`)."""
    name = description.get("name") if isinstance(description, dict) else None
    if name not in BLOCKS:
        raise ValueError(f"no registered block named {name!r}; known: {sorted(BLOCKS)}. Import "
                         "the application that defines it (e.g. fastlearn.vision) first")
    return BLOCKS[name].from_args(description.get("args", {}))


def _title(ax, text: str) -> None:
    current = ax.get_title()
    ax.set_title(f"{current}\n{text}" if current else text)


@register_block
class TransformBlock:
    """A generic block: ``type_tfms`` build the part, ``item_tfms``/``batch_tfms`` are added to
    the loaders, ``kind`` names the part for item and batch transforms. ``dl_type`` is the loader
    class this part needs (None: the plain ``DataLoader``) and ``dls_kwargs`` the loader
    arguments it sets (a ``TextBlock`` asks for ``LMDataLoader`` with its ``seq_len``).

    >>> TransformBlock(type_tfms=[str.upper]).kind
    'raw'
    """

    kind: str = "raw"
    eager: bool = False
    dls_type: type | None = None
    """The ``DataBunch`` subclass for loaders of this block (None: ``DataBunch``)."""

    def __init__(self, type_tfms: Iterable | Callable | None = None,
                 item_tfms: Iterable | None = None, batch_tfms: Iterable | None = None,
                 dl_type: type | None = None, kind: str | None = None, dls_kwargs: dict | None = None):
        self.type_tfms = listify(type_tfms)
        self.item_tfms = listify(item_tfms)
        self.batch_tfms = listify(batch_tfms)
        self.dl_type = dl_type
        self.dls_kwargs = dict(dls_kwargs or {})
        if kind is not None:
            self.kind = check_kinds([kind], type(self).__name__)[0]

    def loader_settings(self, dsets, p: int) -> tuple[type | None, dict]:
        """The loader class and loader arguments this block asks for, as part ``p`` of ``dsets``
        (``dl_type`` and ``dls_kwargs``). Called once before the loaders are built, so a block whose
        loaders need every item encoded first (texts: lengths to sort by, one token stream) does
        that here, in one pass.

        >>> TransformBlock(dl_type=list, dls_kwargs={"seq_len": 8}).loader_settings(None, 0)
        (<class 'list'>, {'seq_len': 8})
        """
        return self.dl_type, dict(self.dls_kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r})"

    def show(self, value, ax) -> None:
        """Draw a decoded value on a matplotlib axes (generic blocks add it to the title)."""
        _title(ax, str(value))

    def readable(self, value) -> str:
        """A decoded value as one line of text, for tables (a text block drops its padding).

        >>> TransformBlock().readable(3)
        '3'
        """
        return str(value)

    def loss_func(self):
        """The default loss when this block is the target, by its kind (a ``Datasets`` target whose
        transforms end in ``Categorize`` is a "category"); None: the Learner needs one given."""
        loss = TARGET_LOSSES.get(self.kind)
        return loss() if loss is not None else None

    def is_missing(self, value) -> bool:
        """Whether a raw target (what ``get_y`` returned) is missing: None, NaN, an empty label...
        Such targets are refused, naming the rows, or dropped with ``missing_targets='drop'``."""
        return is_missing(value)

    def n_out(self, pipeline: Pipeline, first_encoded) -> int | None:
        """How many outputs a model needs for this target (``dls.c``): the size of the vocab its
        transforms built (a ``Categorize`` in a ``Datasets``' target), else None."""
        return len(pipeline.vocab) if pipeline.vocab is not None else None

    def describe_args(self, pipeline: Pipeline) -> dict:
        if type(self) is TransformBlock and not self.type_tfms:
            return {"kind": self.kind}
        raise TypeError(f"{type(self).__name__} with custom type transforms cannot be exported; "
                        "use a built-in block for parts needed at inference")

    def describe(self, pipeline: Pipeline) -> dict:
        return {"name": type(self).__name__, "args": self.describe_args(pipeline)}

    @classmethod
    def from_args(cls, args: dict) -> "TransformBlock":
        return cls(**args)


@register_block
class CategoryBlock(TransformBlock):
    """A single label per item, learnt with cross-entropy; ``vocab`` is built on the training
    set unless given.

    >>> CategoryBlock(vocab=["cat", "dog"]).type_tfms[0].vocab.items
    (#2) ['cat', 'dog']
    """

    kind = "category"
    eager = True

    def __init__(self, vocab: Iterable | None = None, sort: bool = True, add_na: bool = False):
        super().__init__(type_tfms=[Categorize(vocab=vocab, sort=sort, add_na=add_na)])

    def describe_args(self, pipeline: Pipeline) -> dict:
        return {"vocab": list(pipeline.vocab), "sort": False}


@register_block
class MultiCategoryBlock(TransformBlock):
    """Several labels per item (a list, or ``encoded=True`` 0/1 columns with ``vocab`` = their
    names), as a one-hot float vector learnt with binary cross-entropy.

    >>> MultiCategoryBlock().kind
    'multicategory'
    """

    kind = "multicategory"
    eager = True

    def __init__(self, encoded: bool = False, vocab: Iterable | None = None, add_na: bool = False):
        self.encoded = encoded
        tfm = EncodedMultiCategorize(vocab=vocab) if encoded else MultiCategorize(vocab=vocab, add_na=add_na)
        super().__init__(type_tfms=[tfm])

    def show(self, value, ax) -> None:
        _title(ax, ";".join(str(v) for v in value))

    def describe_args(self, pipeline: Pipeline) -> dict:
        return {"encoded": True, "vocab": list(pipeline.vocab)}


@register_block
class RegressionBlock(TransformBlock):
    """One or ``n_out`` float targets, learnt with mean squared error.

    >>> RegressionBlock(n_out=2).type_tfms[0].c
    2
    """

    kind = "regression"
    eager = True

    def __init__(self, n_out: int | None = None):
        self.n_out_given = n_out
        super().__init__(type_tfms=[RegressionSetup(c=n_out)])

    def show(self, value, ax) -> None:
        values = value.flatten().tolist() if hasattr(value, "flatten") else listify(value)
        _title(ax, ", ".join(f"{v:.3g}" for v in values))

    def n_out(self, pipeline: Pipeline, first_encoded) -> int | None:
        if self.n_out_given is not None:
            return self.n_out_given
        return int(first_encoded.numel()) if first_encoded is not None else None

    def describe_args(self, pipeline: Pipeline) -> dict:
        return {"n_out": self.n_out_given}


def as_block(block) -> TransformBlock:
    """A block instance from a block, a block class, or a function returning a block."""
    if isinstance(block, TransformBlock):
        return block
    if callable(block):
        made = block()
        if isinstance(made, TransformBlock):
            return made
    raise TypeError(f"{block!r} is not a block; use e.g. ImageBlock, CategoryBlock, "
                    "TransformBlock(type_tfms=[...])")
