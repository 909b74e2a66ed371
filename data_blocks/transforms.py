"""``Transform``: one step that turns an item into model input, and back (chained by
:class:`~fastlearn.data.pipeline.Pipeline`).

A transform has three hooks a user may override: ``encodes(x)`` (the forward step),
``decodes(x)`` (its inverse, used to show data) and ``setups(items)`` (learn state, such as a
vocabulary, from the training items). A plain function becomes a transform with ``Transform(f)``.

>>> class Double(Transform):
...     def encodes(self, x): return x * 2
...     def decodes(self, x): return x // 2
>>> Double()(3), Double().decode(6)
(6, 3)

Where transforms run
--------------------
* **Type transforms** (a block's ``type_tfms``, after its getter) turn one raw item into one part
  of a sample: a path into an image tensor, a label into an index. They see a single value.
* **Item transforms** (``item_tfms``, ``after_item``) run on every sample, in the DataLoader's
  worker processes, before collation. A sample is the tuple ``(*inputs, *targets)``.
* **Batch transforms** (``batch_tfms``, ``after_batch``) run once per batch, in the main process,
  after the batch tuple ``(*xb, *yb)`` has been moved to the device.

How an item or batch transform sees a sample (the interface augmentations code against)
---------------------------------------------------------------------------------------
Nothing is chosen by type annotations. Every part of a sample has a *kind* (a string from
:data:`KINDS`) given by its block: ``ImageBlock`` → ``"image"``, ``MaskBlock`` → ``"mask"``,
``PointBlock`` → ``"points"``, ``CategoryBlock`` → ``"category"``, and so on. A transform's class
attribute ``kinds`` (a tuple of kind names, or ``None`` for every part) says which parts it
changes. For each sample (or batch) the pipeline calls :meth:`Transform.call_sample`, which

1. returns the sample unchanged if the transform's ``split_idx`` is set and differs from the
   loader's (``split_idx=0``: training only, for augmentation; ``1``: validation only);
2. calls ``before_call(sample, kinds, split_idx, rng)`` once, where random parameters are drawn
   (from ``rng``, a ``random.Random`` re-seeded for every batch from the loader's seed for the
   epoch and the batch's position, so results do not depend on the worker count; items of a
   batch draw from it in turn), so that an image, its mask and its points get the same crop or
   flip;
3. calls ``encode_part(part, kind)`` for each part whose kind is in ``kinds``; by default this
   is ``encodes(part)``. Override ``encode_part`` when the work differs by kind (a mask is
   resized with nearest-neighbour, points are moved rather than resampled).

Decoding mirrors this with ``decode_sample`` / ``decode_part`` / ``decodes``, in reverse order.

A transform called by hand on a :class:`~fastlearn.data.tuples.fastuple` (the course's
``SiameseImage(img1, img2, same)``) treats it as a sample whose parts have the kinds of their
values: ``Resize(224)(pair)`` resizes both images, keeps the label and returns a ``SiameseImage``.

What the parts look like:

=============  =====================================  ==========================================
kind           in item transforms (one sample, CPU)   in batch transforms (on the device)
=============  =====================================  ==========================================
image          uint8 ``(C, H, W)``                    uint8 ``(B, C, H, W)``; float in [0, 1]
                                                      after ``IntToFloatTensor`` (order 10)
mask           uint8 ``(H, W)`` class codes           uint8, then int64 ``(B, H, W)`` after
                                                      ``IntToFloatTensor``
points         float ``(n, 2)`` as (x, y) pixels      float ``(B, n, 2)`` in [-1, 1]
category       int64 scalar                           int64 ``(B,)``
multicategory  float one-hot ``(c,)``                 float ``(B, c)``
regression     float ``(n_out,)`` or scalar           float ``(B, n_out)`` or ``(B,)``
=============  =====================================  ==========================================

``order`` sorts a pipeline: item transforms like ``Resize`` use 1 and ``ToTensor`` 5; batch
transforms: ``IntToFloatTensor`` 10, augmentations in between (affine 30, lighting 40),
``Normalize`` 99. ``setups`` of a batch transform receives the first training batch's part it
applies to (the image batch for ``Normalize``), already passed through the transforms before it.

Export: a transform that runs at inference must be describable: register its class with
:func:`register_transform` and give it ``describe_args()`` returning its JSON-able arguments;
:func:`transform_from_description` rebuilds it by name. Training-only transforms (``split_idx=0``)
are left out of an export and need not be registered.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from fastlearn.data.tuples import fastuple

KINDS: tuple[str, ...] = (
    "raw", "image", "mask", "points", "bbox", "category", "multicategory", "regression",
    "text", "tabular",
)
TRANSFORMS: dict[str, type] = {}


def check_kinds(kinds: Iterable[str] | None, where: str) -> tuple[str, ...] | None:
    """Fail loudly on a misspelt kind name (the list of kinds is closed: :data:`KINDS`)."""
    if kinds is None:
        return None
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"{where}: unknown kind(s) {unknown}; expected names from {list(KINDS)}")
    return kinds


def register_transform(cls: type) -> type:
    """Class decorator: make a transform rebuildable by name from an export description.

    >>> @register_transform
    ... class AddOne(Transform):
    ...     def encodes(self, x): return x + 1
    ...     def describe_args(self): return {}
    >>> transform_from_description({"name": "AddOne", "args": {}})(1)
    2
    """
    if not (isinstance(cls, type) and issubclass(cls, Transform)):
        raise TypeError(f"register_transform takes a Transform subclass, got {cls!r}")
    TRANSFORMS[cls.__name__] = cls
    return cls


def transform_from_description(description: dict) -> "Transform":
    """Rebuild a transform from ``{"name": ..., "args": {...}}`` (see :meth:`Transform.describe`)."""
    name = description.get("name") if isinstance(description, dict) else None
    if name not in TRANSFORMS:
        raise ValueError(f"no registered transform named {name!r} (from {description!r}); known: "
                         f"{sorted(TRANSFORMS)}. Import the module that defines it first, or "
                         "register it with @register_transform")
    return TRANSFORMS[name].from_args(description.get("args", {}))


def overrides(obj: Any, name: str) -> bool:
    """Whether ``obj``'s class overrides ``Transform``'s method ``name``."""
    return getattr(type(obj), name) is not getattr(Transform, name)


def learns_from_data(t: "Transform") -> bool:
    """Whether ``t`` sets itself up from data (overrides ``setups``, or ``setup`` itself)."""
    return overrides(t, "setups") or overrides(t, "setup")


class Transform:
    """One step of a pipeline: ``encodes`` forward, ``decodes`` back, ``setups`` from data.

    ``Transform(f)`` wraps a plain function (``dec`` optionally gives its inverse). Class
    attributes, which ``__init__`` arguments override: ``order`` (position in a pipeline),
    ``split_idx`` (``None`` all splits, ``0`` training only, ``1`` validation only), ``kinds``
    (which parts of a sample it changes, ``None`` for all), ``output_kind`` (the kind of value a
    type transform produces, used to label a part when no block is given).

    >>> Transform(str.upper)("cat")
    'CAT'
    >>> t = Transform(lambda x: x + 1, split_idx=0)
    >>> t(1, split_idx=1), t(1, split_idx=0)
    (1, 2)
    """

    order: int = 0
    split_idx: int | None = None
    kinds: tuple[str, ...] | None = None
    output_kind: str | None = None
    _enc: Callable | None = None
    _dec: Callable | None = None

    def __init__(self, enc: Callable | None = None, dec: Callable | None = None,
                 split_idx: int | None = None, order: int | None = None,
                 kinds: Iterable[str] | None = None):
        for name, f in (("enc", enc), ("dec", dec)):
            if f is not None and not callable(f):
                raise TypeError(f"Transform({name}={f!r}): expected a function, got "
                                f"{type(f).__name__}")
        if enc is not None:
            self._enc = enc
            self.output_kind = getattr(enc, "output_kind", None)
        if dec is not None:
            self._dec = dec
        if split_idx is not None:
            if split_idx not in (0, 1):
                raise ValueError(f"split_idx={split_idx!r}; use 0 (training only), 1 (validation "
                                 "only) or None (every split)")
            self.split_idx = split_idx
        if order is not None:
            self.order = order
        if kinds is not None:
            self.kinds = check_kinds(kinds, type(self).__name__)

    @property
    def name(self) -> str:
        f = self._enc
        return getattr(f, "__qualname__", type(f).__name__) if f is not None else type(self).__name__

    def __repr__(self) -> str:
        if self._enc is not None:
            return self.name
        args = ""
        if TRANSFORMS.get(type(self).__name__) is type(self):
            try:
                args = ", ".join(f"{k}={v!r}" for k, v in self.describe_args().items()
                                 if not isinstance(v, list) or len(v) <= 4)
            except (TypeError, ValueError):
                args = ""
        return f"{type(self).__name__}({args})"

    # --- the three user hooks -------------------------------------------------------------
    def encodes(self, x):
        """The forward step on one value (the identity unless overridden or given ``enc``)."""
        return self._enc(x) if self._enc is not None else x

    def decodes(self, x):
        """The inverse step, used to show data (the identity unless overridden or given ``dec``)."""
        return self._dec(x) if self._dec is not None else x

    def setups(self, items) -> None:
        """Learn state from the training items (already passed through the earlier steps)."""

    # --- calling ----------------------------------------------------------------------------
    def runs_on(self, split_idx: int | None) -> bool:
        """Whether this transform runs for a loader of this split (``None``: called by hand)."""
        return self.split_idx is None or split_idx is None or split_idx == self.split_idx

    def applies_to(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    def __call__(self, x, split_idx: int | None = None):
        """Encode ``x``; on a :class:`~fastlearn.data.tuples.fastuple`, each part this transform
        changes (by its kind), returning the same class of tuple."""
        if not self.runs_on(split_idx):
            return x
        if isinstance(x, fastuple):
            return x.with_parts(self.call_sample(tuple(x), x.kinds, split_idx))
        return self.call_one(x, split_idx)

    def call_one(self, x, split_idx: int | None = None):
        """Encode one value called by hand (``encodes``; image transforms treat it as an image)."""
        return self.encodes(x)

    def decode(self, x):
        if isinstance(x, fastuple):
            return x.with_parts(self.decode_sample(tuple(x), x.kinds))
        return self.decodes(x)

    def setup(self, items=None) -> None:
        """Run ``setups`` (the course calls ``tfm.setup(items)``)."""
        self.setups(items)

    def before_call(self, sample: tuple, kinds: tuple[str, ...], split_idx: int | None,
                    rng: random.Random) -> None:
        """Draw random parameters once per sample / batch, before its parts are encoded."""

    def encode_part(self, x, kind: str):
        """Encode one part of a sample whose kind this transform applies to."""
        return self.encodes(x)

    def decode_part(self, x, kind: str):
        return self.decodes(x)

    def call_sample(self, sample: tuple, kinds: tuple[str, ...], split_idx: int | None = None,
                    rng: random.Random | None = None) -> tuple:
        """Apply to the parts of ``sample`` this transform changes (see the module docstring)."""
        if not self.runs_on(split_idx):
            return sample
        self.before_call(sample, kinds, split_idx, rng if rng is not None else random)
        return tuple(self.encode_part(part, kind) if self.applies_to(kind) else part
                     for part, kind in zip(sample, kinds))

    def decode_sample(self, sample: tuple, kinds: tuple[str, ...]) -> tuple:
        return tuple(self.decode_part(part, kind) if self.applies_to(kind) else part
                     for part, kind in zip(sample, kinds))

    def setup_sample(self, sample: tuple, kinds: tuple[str, ...]) -> None:
        """Set up from one sample or batch: ``setups`` gets the first part this applies to."""
        for part, kind in zip(sample, kinds):
            if self.applies_to(kind):
                self.setup(part)
                return

    # --- export -----------------------------------------------------------------------------
    def describe_args(self) -> dict:
        """The JSON-able constructor arguments that rebuild this transform for inference."""
        raise TypeError(
            f"transform {self!r} ({type(self).__name__}) cannot be described for export; give "
            "its class a describe_args() method and @register_transform, or make it "
            "training-only with split_idx=0 if it is not needed at inference")

    def describe(self) -> dict:
        """``{"name": class name, "args": {...}}``, rebuilt by :func:`transform_from_description`."""
        if TRANSFORMS.get(type(self).__name__) is not type(self):
            raise TypeError(f"transform {self!r} is not registered; decorate {type(self).__name__} "
                            "with @register_transform to export it")
        return {"name": type(self).__name__, "args": self.describe_args()}

    @classmethod
    def from_args(cls, args: dict) -> "Transform":
        return cls(**args)


def as_transform(f) -> Transform:
    """``f`` itself if it is a Transform, else ``Transform(f)``."""
    if isinstance(f, Transform):
        return f
    if isinstance(f, type) and issubclass(f, Transform):
        return f()
    if not callable(f):
        raise TypeError(f"expected a Transform or a function, got {f!r} ({type(f).__name__})")
    return Transform(f)

