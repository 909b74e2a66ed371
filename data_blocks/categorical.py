"""Labels to numbers: ``CategoryMap``, ``Categorize``, ``MultiCategorize``, ``RegressionSetup``.

>>> tfm = Categorize()
>>> tfm.setup(["dog", "cat", "dog"])
>>> tfm.vocab
CategoryMap(['cat', 'dog'])
>>> int(tfm("dog")), tfm.decode(tfm("dog"))
(1, 'dog')
"""
from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Iterable

import torch

from fastlearn.data.transforms import Transform, register_transform
from fastlearn.foundation import L

NA_LABEL = "#na#"


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else (1, 0, str(value))


class CategoryMap:
    """A vocabulary: ``items`` in index order and ``o2i`` from item to index.

    Built from a column of labels: unique values, sorted when ``sort`` (numbers before strings),
    ``"#na#"`` first when ``add_na``.

    >>> vocab = CategoryMap(["b", "a", "b"])
    >>> vocab.items, vocab.o2i["b"], vocab[0], len(vocab)
    ((#2) ['a', 'b'], 1, 'a', 2)
    """

    def __init__(self, labels: Iterable, sort: bool = True, add_na: bool = False):
        labels = [_hashable(x) for x in labels]
        try:
            unique = list(dict.fromkeys(labels))
        except TypeError:
            bad = next(x for x in labels if not isinstance(x, Hashable))
            raise TypeError(
                f"a label is a {type(bad).__name__} ({bad!r:.60}), not one class name or number; a CategoryBlock takes "
                "one label per item: for several labels per item use MultiCategoryBlock, otherwise make get_y return "
                "one label (a string or a number)") from None
        if sort:
            unique = sorted(unique, key=_sort_key)
        if add_na:
            unique = [NA_LABEL] + [x for x in unique if x != NA_LABEL]
        self.items = L(unique)
        self.o2i = {x: i for i, x in enumerate(self.items)}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, torch.Tensor):
            index = index.tolist()
        return self.items[index]

    def __iter__(self):
        return iter(self.items)

    def __contains__(self, item) -> bool:
        return _hashable(item) in self.o2i

    def __eq__(self, other) -> bool:
        return list(self.items) == list(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"CategoryMap({list(self.items)[:10]}{'...' if len(self) > 10 else ''})"

    def index(self, label) -> int:
        """The index of ``label``, or a ValueError that shows the vocab and the fix."""
        try:
            return self.o2i[_hashable(label)]
        except (KeyError, TypeError):
            raise ValueError(
                f"label {label!r} is not in the vocab {_short(self.items)}; pass vocab=None to "
                "build it from the data, add the label to the vocab you passed, or make sure the "
                "training set has an example of it") from None


def _label(x):
    """A class label in the one form Categorize and MultiCategorize keep: text composed (NFC), as
    labels that look the same differ otherwise (a folder copied from macOS names 'crème' with
    'e' + a combining accent, NFD; most other sources with one character 'è')."""
    return unicodedata.normalize("NFC", x) if isinstance(x, str) else x


def _hashable(x):
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return x.item()
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:
        return x.item()
    return x


def _short(items) -> str:
    items = list(items)
    return f"{items[:8]}{'...' if len(items) > 8 else ''} ({len(items)} labels)"


@register_transform
class Categorize(Transform):
    """A label to its index in ``vocab`` (an int64 scalar tensor); decodes an index to the label.

    With ``vocab=None`` the vocab is built by ``setup`` from the training labels. Text labels are
    kept composed (NFC): ``"crème"`` written with a combining accent is the same class.

    >>> tfm = Categorize(vocab=["cat", "dog"])
    >>> tfm("cat")
    tensor(0)
    """

    order = 1
    output_kind = "category"

    def __init__(self, vocab: Iterable | None = None, sort: bool = True, add_na: bool = False):
        super().__init__()
        self.sort, self.add_na = sort, add_na
        self.vocab = None if vocab is None else CategoryMap(map(_label, vocab), sort=sort, add_na=add_na)
        self.vocab_given = vocab is not None

    def setups(self, items) -> None:
        if self.vocab is None:
            if items is None:
                raise ValueError("Categorize.setup() needs the training labels to build a vocab "
                                 "when none was given; pass them, or Categorize(vocab=[...])")
            self.vocab = CategoryMap(map(_label, items), sort=self.sort, add_na=self.add_na)

    @property
    def c(self) -> int:
        return 0 if self.vocab is None else len(self.vocab)

    def _vocab(self) -> CategoryMap:
        if self.vocab is None:
            raise ValueError("Categorize has no vocab yet: call .setup(training_labels) or pass "
                             "Categorize(vocab=[...])")
        return self.vocab

    def encodes(self, label):
        return torch.tensor(self._vocab().index(_label(label)), dtype=torch.long)

    def decodes(self, index):
        return self._vocab()[int(index)]

    def describe_args(self) -> dict:
        return {"vocab": list(self._vocab().items), "sort": False, "add_na": False}


@register_transform
class MultiCategorize(Transform):
    """A list of labels to a one-hot float vector over ``vocab``; decodes to the list of labels.

    >>> tfm = MultiCategorize()
    >>> tfm.setup([["cat"], ["dog", "cat"]])
    >>> tfm(["dog"])
    tensor([0., 1.])
    >>> tfm.decode(torch.tensor([1., 1.]))
    ['cat', 'dog']
    """

    order = 1
    output_kind = "multicategory"

    def __init__(self, vocab: Iterable | None = None, add_na: bool = False):
        super().__init__()
        self.add_na = add_na
        self.vocab = None if vocab is None else CategoryMap(map(_label, vocab), sort=True, add_na=add_na)

    def setups(self, items) -> None:
        if self.vocab is None:
            if items is None:
                raise ValueError("MultiCategorize.setup() needs the training label lists")
            self.vocab = CategoryMap([_label(x) for labels in items for x in _label_list(labels)],
                                     add_na=self.add_na)

    @property
    def c(self) -> int:
        return 0 if self.vocab is None else len(self.vocab)

    def encodes(self, labels):
        if self.vocab is None:
            raise ValueError("MultiCategorize has no vocab yet: call .setup(training_label_lists)")
        out = torch.zeros(len(self.vocab))
        for label in _label_list(labels):
            out[self.vocab.index(_label(label))] = 1.0
        return out

    def decodes(self, one_hot):
        one_hot = torch.as_tensor(one_hot)
        return [self.vocab[i] for i in torch.nonzero(one_hot > 0.5).flatten().tolist()]

    def describe_args(self) -> dict:
        return {"vocab": list(self.vocab.items)}


def _label_list(labels) -> list:
    if isinstance(labels, str):
        return [labels] if labels else []
    if labels is None:
        return []
    return list(labels)


@register_transform
class EncodedMultiCategorize(Transform):
    """Labels already one-hot encoded (a row of 0/1 columns) to a float tensor over ``vocab``.

    >>> EncodedMultiCategorize(vocab=["a", "b"])([0, 1])
    tensor([0., 1.])
    """

    order = 1
    output_kind = "multicategory"

    def __init__(self, vocab: Iterable):
        super().__init__()
        if vocab is None:
            raise ValueError("MultiCategoryBlock(encoded=True) needs vocab=[the column names]")
        self.vocab = CategoryMap(vocab, sort=False)

    @property
    def c(self) -> int:
        return len(self.vocab)

    def encodes(self, row):
        out = torch.as_tensor(list(row) if not isinstance(row, torch.Tensor) else row).float()
        if out.numel() != len(self.vocab):
            raise ValueError(f"an encoded label row has {out.numel()} values but the vocab has "
                             f"{len(self.vocab)} names; pass one vocab name per column")
        return out.flatten()

    def decodes(self, one_hot):
        return [self.vocab[i] for i in torch.nonzero(torch.as_tensor(one_hot) > 0.5).flatten().tolist()]

    def describe_args(self) -> dict:
        return {"vocab": list(self.vocab.items)}


@register_transform
class RegressionSetup(Transform):
    """A number or list of numbers to a float tensor; ``c`` (outputs) is learnt from the data.

    >>> RegressionSetup()([1, 2])
    tensor([1., 2.])
    """

    order = 1
    output_kind = "regression"

    def __init__(self, c: int | None = None):
        super().__init__()
        self.c = c

    def setups(self, items) -> None:
        if self.c is None and items:
            self.c = int(torch.as_tensor(items[0]).numel())

    def encodes(self, value):
        try:
            return torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"regression target {value!r} is not a number or a list of numbers "
                             f"({error}); check get_y") from None

    def decodes(self, value):
        return value

    def describe_args(self) -> dict:
        return {"c": self.c}
