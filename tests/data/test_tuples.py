"""fastuple, transforms on tuples of parts, TfmdLists / Datasets set-up and showing, DataLoader.decode."""
from __future__ import annotations

import PIL.Image
import pytest
import torch

from fastlearn.data import DataLoaders, Datasets, Pipeline, TfmdLists, Transform, fastuple, show_at
from fastlearn.data.dataloader import DataLoader
from fastlearn.data.tuples import kind_of_value
from fastlearn.foundation import L


class Pair(fastuple):
    pass


class Double(Transform):
    kinds = ("image",)

    def encodes(self, x):
        return x * 2

    def decodes(self, x):
        return x // 2


class CountWords(Transform):
    """Learns a vocabulary by overriding setup() itself, as Numericalize does."""

    def setup(self, items=None):
        self.vocab = sorted({w for item in items for w in item})

    def encodes(self, x):
        return [self.vocab.index(w) for w in x]

    def decodes(self, x):
        return " ".join(self.vocab[i] for i in x)


def test_fastuple_construction_and_part_by_part_operations():
    assert fastuple(1, 2) == (1, 2) and fastuple([1, 2]) == (1, 2) and fastuple(3) == (3,) and fastuple() == ()
    t = torch.zeros(2, 2)
    assert len(fastuple(t)) == 1                                # a tensor is one part, not its rows
    assert fastuple(1, 2).mul(3) == (3, 6) and fastuple(4, 6).truediv((2, 3)) == (2.0, 2.0)
    assert fastuple(1, 2) + (3,) == (1, 2, 3)                   # + still concatenates
    with pytest.raises(ValueError, match="2 parts combined with 3"):
        fastuple(1, 2).add((1, 2, 3))


def test_kinds_come_from_the_values():
    class Marked:
        sample_kind = "mask"
    assert kind_of_value(PIL.Image.new("L", (2, 2))) == "image"
    assert kind_of_value(Marked()) == "mask" and kind_of_value(torch.zeros(2)) == "raw" and kind_of_value(1) == "raw"


def test_a_transform_changes_the_parts_of_its_kind_and_keeps_the_class():
    image = PIL.Image.new("L", (2, 2))
    pair = Pair(image, torch.tensor([3]), True)
    assert Pair(image, 1).kinds == ("image", "raw")
    doubled = Pair(torch.tensor([1]), torch.tensor([3])).with_parts([torch.tensor([1]), torch.tensor([3])])
    assert type(doubled) is Pair
    out = Transform(lambda x: "seen", kinds="image")(pair)
    assert type(out) is Pair and out[0] == "seen" and torch.equal(out[1], torch.tensor([3])) and out[2] is True
    pipe = Pipeline([Double()])
    encoded = pipe(Pair(TaggedImage(torch.tensor([4])), 5))
    decoded = pipe.decode(encoded)
    assert type(decoded) is Pair and encoded[0].tolist() == [8] and decoded[0].tolist() == [4] and decoded[1] == 5


def test_tfmdlists_sets_up_transforms_that_override_setup():
    tl = TfmdLists([["b", "a"], ["c"], ["a"]], [CountWords], splits=([0, 1], [2]))
    assert tl.pipelines[0][0].vocab == ["a", "b", "c"]
    assert tl[0] == [1, 0] and tl.decode(tl[0]) == "b a"
    assert Pipeline([CountWords()]).needs_setup()


def test_tfmdlists_of_fastuples_give_one_part_per_element():
    images = [torch.full((1, 2, 2), i, dtype=torch.uint8) for i in range(6)]

    class MakePair(Transform):
        def encodes(self, i):
            return Pair(TaggedImage(images[i]), TaggedImage(images[(i + 1) % 6]), i % 2 == 0)
    tl = TfmdLists(list(range(6)), [MakePair()], splits=([0, 1, 2, 3], [4, 5]))
    assert tl.kinds == ("image", "image", "raw") and tl.n_inp == 2
    dls = tl.dataloaders(bs=2, shuffle=False)
    x1, x2, y = dls.one_batch()
    assert x1.shape == (2, 1, 2, 2) and y.tolist() == [True, False] and dls.n_inp == 2


class TaggedImage(torch.Tensor):
    sample_kind = "image"

    @staticmethod
    def __new__(cls, x):
        return torch.Tensor._make_subclass(cls, x, False)


def test_show_at_uses_the_dataset_show(capsys):
    class ShownPair(fastuple):
        def show(self, ctx=None, **kwargs):
            print("pair", self[0])
            return "axes"
    tl = TfmdLists([1, 2], [lambda x: ShownPair(x, -x)])
    assert show_at(tl, 1) == "axes"
    text = TfmdLists(["a cat"], [str.upper])
    assert text.show(text[0]) is None
    dsets = Datasets(["a", "b"], tfms=[[str.upper], [str.lower]])
    ax = show_at(dsets, 0)
    assert capsys.readouterr().out == "pair 2\nA CAT\n" and ax.get_title()


def test_dataloader_decode_undoes_the_batch_transforms():
    dl = DataLoader([(torch.tensor([1.0]),)] * 4, bs=2, after_batch=Pipeline([Transform(lambda x: x * 10,
                                                                                          dec=lambda x: x / 10)]))
    batch = dl.one_batch()
    assert batch[0].tolist() == [[10.0], [10.0]]
    assert dl.decode(batch)[0].tolist() == [[1.0], [1.0]]


def test_from_dsets_uses_one_batch_size_and_the_given_drop_last():
    dls = DataLoaders.from_dsets(list(range(10)), list(range(7)), bs=4, shuffle=False, drop_last=True)
    assert [len(b) for b in dls.valid] == [4] and len(dls.train) == 2
    dls = DataLoaders.from_dsets(list(range(10)), list(range(7)), bs=4, val_bs=8)
    assert dls.valid.bs == 8 and dls.train.drop_last and not dls.valid.drop_last


def test_l_mask_inversion_and_range_of_a_collection():
    mask = L(True, False, True)
    assert ~mask == [False, True, False]
    assert L(["a", "b", "c"])[~mask] == ["b"]
    assert L.range([7, 8]) == [0, 1]
