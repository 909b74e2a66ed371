"""Transforms, pipelines, categorical and batch transforms of fastlearn.data."""
import random

import pytest
import torch

from fastlearn.data.batch_transforms import IntToFloatTensor, Normalize
from fastlearn.data.categorical import (CategoryMap, Categorize, EncodedMultiCategorize, MultiCategorize,
                                        RegressionSetup)
from fastlearn.data.pipeline import Pipeline
from fastlearn.data.transforms import Transform, register_transform, transform_from_description


class AddN(Transform):
    order = 2

    def __init__(self, n=1):
        super().__init__()
        self.n = n

    def encodes(self, x):
        return x + self.n

    def decodes(self, x):
        return x - self.n


class Double(Transform):
    order = 1

    def encodes(self, x):
        return x * 2

    def decodes(self, x):
        return x // 2


class Mean(Transform):
    """A transform learning state from its training items (like a vocab)."""

    def setups(self, items):
        self.mean = sum(items) / len(items)

    def encodes(self, x):
        return x - self.mean


def test_subclass_and_function_transforms():
    assert AddN(3)(1) == 4 and AddN(3).decode(4) == 1
    t = Transform(str.upper, dec=str.lower)
    assert t("ab") == "AB" and t.decode("AB") == "ab"
    with pytest.raises(TypeError, match="expected a function"):
        Transform(3)


def test_pipeline_sorts_by_order_and_decodes_in_reverse():
    pipe = Pipeline([AddN(1), Double()])  # Double (order 1) runs before AddN (order 2)
    assert [type(t).__name__ for t in pipe] == ["Double", "AddN"]
    assert pipe(3) == 7
    assert pipe.decode(7) == 3


def test_split_idx_runs_only_on_that_split():
    aug = Transform(lambda x: x + 100, split_idx=0)
    pipe = Pipeline([aug])
    assert pipe(1, split_idx=0) == 101
    assert pipe(1, split_idx=1) == 1
    assert aug(1) == 101  # called by hand: runs
    with pytest.raises(ValueError, match="split_idx=2"):
        Transform(lambda x: x, split_idx=2)


def test_pipeline_setup_sees_items_after_earlier_steps():
    mean = Mean()
    pipe = Pipeline([Transform(lambda x: x * 10), mean])
    pipe.setup([1, 2, 3])
    assert mean.mean == 20
    assert pipe(2) == 0


def test_call_sample_applies_by_kind_and_shares_random_draws():
    class Shift(Transform):
        kinds = ("image", "mask")

        def before_call(self, sample, kinds, split_idx, rng):
            self.shift = rng.randint(1, 1000)

        def encodes(self, x):
            return x + self.shift

    t = Shift(split_idx=0)
    image, mask, label = t.call_sample((0, 0, 0), ("image", "mask", "category"), 0, random.Random(1))
    assert image == mask == random.Random(1).randint(1, 1000)
    assert label == 0
    assert t.call_sample((0, 0, 0), ("image", "mask", "category"), split_idx=1) == (0, 0, 0)
    with pytest.raises(ValueError, match="unknown kind"):
        Transform(kinds=["imgae"])


def test_sample_plan_matches_call_sample_and_skips_what_does_nothing():
    class Shift(Transform):
        kinds = ("image",)

        def before_call(self, sample, kinds, split_idx, rng):
            self.shift = rng.randint(1, 1000)

        def encodes(self, x):
            return x + self.shift

    shift, masks_only = Shift(), Transform(lambda x: -x, kinds="mask")
    train_only = Transform(lambda x: x + 5, split_idx=0)
    pipe = Pipeline([shift, train_only, masks_only, Shift(kinds="mask")])
    kinds = ("image", "category")
    for split_idx in (0, 1):
        plan = pipe.plan(kinds, split_idx)
        by_hand = (3, 4)
        rng = random.Random(7)
        for t in pipe:
            by_hand = t.call_sample(by_hand, kinds, split_idx, rng)
        assert plan((3, 4), random.Random(7)) == by_hand == pipe.apply_sample((3, 4), kinds, split_idx,
                                                                             random.Random(7))
        # the mask-only transform has nothing to do; Shift(kinds="mask") still draws its number
        assert masks_only not in [t for t, _, _ in plan.steps] and len(plan.steps) == 3 - split_idx
    with pytest.raises(ValueError, match="3 parts with 2 kinds"):
        pipe.plan(kinds, 1)((1, 2, 3))


def test_registry_describes_and_rebuilds_transforms():
    @register_transform
    class Scale(Transform):
        def __init__(self, factor: float = 1.0):
            super().__init__()
            self.factor = factor

        def encodes(self, x):
            return x * self.factor

        def describe_args(self):
            return {"factor": self.factor}

    rebuilt = transform_from_description(Scale(3.0).describe())
    assert isinstance(rebuilt, Scale) and rebuilt(2) == 6
    with pytest.raises(TypeError, match="not registered"):
        AddN().describe()
    with pytest.raises(ValueError, match="no registered transform named 'Nope'"):
        transform_from_description({"name": "Nope", "args": {}})
    # training-only transforms are left out of an inference description
    assert Pipeline([Scale(2.0), Transform(lambda x: x, split_idx=0)]).describe() == [
        {"name": "Scale", "args": {"factor": 2.0}}]


def test_category_map_and_categorize():
    vocab = CategoryMap(["b", "a", "b", "c"])
    assert list(vocab.items) == ["a", "b", "c"] and vocab.o2i == {"a": 0, "b": 1, "c": 2}
    assert vocab[torch.tensor([2, 0])] == ["c", "a"]
    assert list(CategoryMap(["b", "a"], sort=False, add_na=True)) == ["#na#", "b", "a"]
    assert list(CategoryMap([3, 1, 2])) == [1, 2, 3]
    tfm = Categorize()
    tfm.setup(["dog", "cat", "dog"])
    assert tfm("dog").item() == 1 and tfm("dog").dtype == torch.long
    assert tfm.decode(torch.tensor(0)) == "cat"
    with pytest.raises(ValueError, match=r"label 'bird' is not in the vocab \['cat', 'dog'\]"):
        tfm("bird")
    with pytest.raises(ValueError, match="has no vocab yet"):
        Categorize()("cat")


def test_multi_category_and_regression():
    tfm = MultiCategorize()
    tfm.setup([["cat"], ["dog", "cat"], []])
    assert tfm(["dog", "cat"]).tolist() == [1.0, 1.0]
    assert tfm([]).tolist() == [0.0, 0.0]
    assert tfm.decode(torch.tensor([0.0, 1.0])) == ["dog"]
    enc = EncodedMultiCategorize(vocab=["a", "b", "c"])
    assert enc([0, 1, 1]).tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="has 2 values but the vocab has 3"):
        enc([0, 1])
    reg = RegressionSetup()
    reg.setup([[1, 2], [3, 4]])
    assert reg.c == 2 and reg([1, 2]).dtype == torch.float32
    with pytest.raises(ValueError, match="not a number"):
        reg("abc")


def test_int_to_float_and_normalize():
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8).expand(2, 3, 1, 2)
    mask = torch.tensor([[[0, 2]]], dtype=torch.uint8)
    img, m = IntToFloatTensor().call_sample((x, mask), ("image", "mask"))
    assert img.dtype == torch.float32 and img.max() == 1.0 and m.dtype == torch.long
    assert IntToFloatTensor().decode(img).dtype == torch.uint8

    norm = Normalize.from_stats([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    out, label = norm.call_sample((img, torch.tensor([1, 0])), ("image", "category"))
    assert out.min() == -1 and out.max() == 1 and label.tolist() == [1, 0]
    assert torch.allclose(norm.decode_sample((out,), ("image",))[0], img)

    learnt = Normalize()
    with pytest.raises(ValueError, match="no statistics yet"):
        learnt(img)
    batch = torch.rand(8, 3, 4, 4) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    learnt.setup_sample((batch,), ("image",))
    normed = learnt(batch)
    assert torch.allclose(normed.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(normed.std((0, 2, 3)), torch.ones(3), atol=1e-4)
    assert transform_from_description(learnt.describe()).mean.flatten().tolist() == pytest.approx(
        learnt.mean.flatten().tolist())


def test_a_plan_says_whether_it_draws_random_numbers():
    class Jitter(Transform):
        kinds = ("image",)

        def before_call(self, sample, kinds, split_idx, rng):
            self.shift = rng.random()

        def encode_part(self, x, kind):
            return x + self.shift

    kinds = ("image", "category")
    assert not Pipeline([IntToFloatTensor(), Normalize.from_stats([0.5], [0.5])]).plan(kinds, 1).draws
    assert Pipeline([IntToFloatTensor(), Jitter()]).plan(kinds, 1).draws
    assert not Pipeline([Jitter(split_idx=0)]).plan(kinds, 1).draws  # training only: not on validation
    images = torch.zeros(2, 1, 2, 2)
    out = Pipeline([Jitter()]).plan(kinds, 0)((images, torch.tensor([0, 1])), random.Random(3))[0]
    assert torch.allclose(out, torch.full_like(images, random.Random(3).random()))



def test_a_pipelines_plan_is_kept_until_its_transforms_change(tmp_path):
    import pickle

    pipe = Pipeline([Double(), AddN(1)])
    kinds = ("image", "category")
    plan = pipe.plan(kinds, 1)
    assert pipe.plan(list(kinds), 1) is plan  # worked out once (predict asks on every call)
    assert pipe.plan(kinds, 0) is not plan and pipe.plan(("category",), 1) is not plan
    assert plan((3, 4)) == (7, 9)
    pipe.fs.append(AddN(10))  # a loader's pipeline changed in place: the next plan sees it
    assert pipe.plan(kinds, 1)((3, 4)) == (17, 19)
    pipe.fs[-1] = AddN(100)  # the same number of transforms, another one
    assert pipe.plan(kinds, 1)((3, 4)) == (107, 109)
    copy = pickle.loads(pickle.dumps(pipe))  # what a loader's worker gets: no plans, the same result
    assert "_plans" not in pipe.__getstate__() and copy.plan(kinds, 1)((3, 4)) == (107, 109)
