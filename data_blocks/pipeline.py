"""``Pipeline``: transforms in order, applied to an item and undone to show it; ``SamplePlan``:
what a pipeline does to every sample of a loader, decided once.

>>> from fastlearn.data.transforms import Transform
>>> class Double(Transform):
...     def encodes(self, x): return x * 2
...     def decodes(self, x): return x // 2
>>> pipe = Pipeline([Double(), Transform(lambda x: x + 1)])
>>> pipe(3), pipe.decode(6)
(7, 3)
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from fastlearn.data.transforms import Transform, as_transform, learns_from_data, overrides, transform_from_description


class Pipeline:
    """Transforms composed in ``order`` (stable for equal orders).

    Called on one value, each transform's ``encodes`` runs in turn; :meth:`apply_sample` runs
    them on a sample tuple part by part (item and batch transforms, see the module docstring).

    >>> pipe = Pipeline([str.strip, str.upper])
    >>> pipe("  cat ")
    'CAT'
    """

    def __init__(self, funcs: Iterable | Callable | None = None, split_idx: int | None = None):
        if isinstance(funcs, Pipeline):
            funcs = funcs.fs
        if funcs is None:
            funcs = []
        elif callable(funcs) and not isinstance(funcs, (list, tuple)):
            funcs = [funcs]
        transforms = [as_transform(f) for f in funcs]
        self.fs: list[Transform] = sorted(transforms, key=lambda t: t.order)
        self.split_idx = split_idx
        self._plans: dict[tuple, SamplePlan] = {}  # by kinds and split (see ``plan``)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_plans"}  # remade where it is used

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._plans = {}

    def __len__(self) -> int:
        return len(self.fs)

    def __iter__(self):
        return iter(self.fs)

    def __getitem__(self, i: int) -> Transform:
        return self.fs[i]

    def __repr__(self) -> str:
        return "Pipeline: " + (" -> ".join(repr(t) for t in self.fs) or "(empty)")

    def add(self, funcs) -> "Pipeline":
        """A new pipeline with more transforms, re-sorted by order."""
        more = [funcs] if callable(funcs) and not isinstance(funcs, (list, tuple)) else funcs
        return Pipeline(list(self.fs) + list(more), split_idx=self.split_idx)

    @property
    def vocab(self):
        """The vocabulary of the last transform that has one (``Categorize``, ``Numericalize``)."""
        for t in reversed(self.fs):
            if getattr(t, "vocab", None) is not None:
                return t.vocab
        return None

    @property
    def output_kind(self) -> str | None:
        for t in reversed(self.fs):
            if t.output_kind is not None:
                return t.output_kind
        return None

    def __call__(self, x, split_idx: int | None = None):
        split_idx = self.split_idx if split_idx is None else split_idx
        for t in self.fs:
            x = t(x, split_idx=split_idx)
        return x

    def decode(self, x):
        """Undo the transforms, last first."""
        for t in reversed(self.fs):
            x = t.decode(x)
        return x

    def setup(self, items=None) -> None:
        """Set up each transform on ``items`` passed through the transforms before it.

        Items are only passed through earlier steps when a later step has a ``setups``.
        """
        items = list(items) if items is not None else None
        for i, t in enumerate(self.fs):
            if not learns_from_data(t):
                continue
            seen = items
            if items is not None and i > 0:
                previous = Pipeline(self.fs[:i])
                seen = [previous(x, split_idx=self.split_idx) for x in items]
            t.setup(seen)

    def apply_sample(self, sample: tuple, kinds: tuple[str, ...], split_idx: int | None = None,
                     rng: random.Random | None = None) -> tuple:
        """Run every transform on the parts of ``sample`` it applies to."""
        return self.plan(kinds, split_idx)(sample, rng)

    def plan(self, kinds: tuple[str, ...], split_idx: int | None = None) -> "SamplePlan":
        """The steps this pipeline takes on samples of these kinds in this split, worked out once
        and kept while ``fs`` holds the same transforms (``predict`` asks for it on every call;
        a loader reuses it for every item); see :class:`SamplePlan`."""
        key = (tuple(kinds), split_idx)
        plans = self.__dict__.setdefault("_plans", {})
        plan = plans.get(key)
        if plan is None or not plan.made_from(self.fs):
            plan = plans[key] = SamplePlan(self.fs, key[0], split_idx)
        return plan

    def decode_sample(self, sample: tuple, kinds: tuple[str, ...]) -> tuple:
        for t in reversed(self.fs):
            sample = t.decode_sample(sample, kinds)
        return sample

    def setup_sample(self, sample: tuple, kinds: tuple[str, ...], split_idx: int | None = 1) -> None:
        """Set up transforms that have ``setups`` on one sample or batch, each seeing it after
        the transforms before it (with ``split_idx=1``: no training-only augmentation)."""
        for t in self.fs:
            if learns_from_data(t):
                t.setup_sample(sample, kinds)
            sample = t.call_sample(sample, kinds, split_idx)

    def needs_setup(self) -> bool:
        return any(learns_from_data(t) for t in self.fs)

    def describe(self, for_inference: bool = True) -> list[dict]:
        """Descriptions of the transforms; training-only ones are left out for inference."""
        return [t.describe() for t in self.fs if not (for_inference and t.split_idx == 0)]

    @classmethod
    def from_description(cls, descriptions: list[dict]) -> "Pipeline":
        return cls([transform_from_description(d) for d in descriptions])


class SamplePlan:
    """What a pipeline does to every sample of given ``kinds`` in one split, decided once.

    Transforms that do not run on the split, and those that change none of the parts and draw
    nothing (no ``before_call``), are left out; for the others the indices of the parts they
    change are kept. Calling the plan gives exactly what ``call_sample`` of each transform in
    turn gives, with the same draws from ``rng``.

    >>> plan = Pipeline([Transform(str.upper, kinds="text")]).plan(("text", "category"))
    >>> len(plan.steps), plan(("cat", 1))
    (1, ('CAT', 1))
    """

    def __init__(self, transforms: Iterable[Transform], kinds: tuple[str, ...], split_idx: int | None):
        self.kinds, self.split_idx = kinds, split_idx
        self.transforms = tuple(transforms)
        self.steps: list[tuple[Transform, tuple[int, ...] | None, bool]] = []
        for t in self.transforms:
            if not t.runs_on(split_idx):
                continue
            if overrides(t, "call_sample"):  # its own way of walking a sample: call it as is
                self.steps.append((t, None, True))
                continue
            parts = tuple(i for i, kind in enumerate(kinds) if t.applies_to(kind))
            draws = overrides(t, "before_call")
            if parts or draws:
                self.steps.append((t, parts, draws))
        # whether a step may draw from ``rng`` (a transform walking the sample its own way may)
        self.draws = any(parts is None or draws for _, parts, draws in self.steps)

    def made_from(self, transforms: list[Transform]) -> bool:
        """Whether this plan was worked out for these very transforms, in this order."""
        return len(transforms) == len(self.transforms) and all(
            a is b for a, b in zip(transforms, self.transforms))

    def __call__(self, sample: tuple, rng: random.Random | None = None) -> tuple:
        kinds, split_idx = self.kinds, self.split_idx
        if len(sample) != len(kinds):
            raise ValueError(f"a sample of {len(sample)} parts with {len(kinds)} kinds {kinds}; "
                             "give one kind per part (blocks, or kinds= of the DataLoader)")
        rng = rng if rng is not None else random
        for t, parts, draws in self.steps:
            if parts is None:
                sample = t.call_sample(sample, kinds, split_idx, rng)
                continue
            if draws:
                t.before_call(sample, kinds, split_idx, rng)
            if parts:
                changed = list(sample)
                for i in parts:
                    changed[i] = t.encode_part(changed[i], kinds[i])
                sample = tuple(changed)
        return sample
