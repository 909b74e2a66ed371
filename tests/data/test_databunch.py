"""DataLoader and DataBunch: seeded shuffling, workers, item/batch pipelines, test_dl, show_batch."""
import sys

import pandas as pd
import pytest
import torch

from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import CategoryBlock, RegressionBlock
from fastlearn.data.categorical import Categorize
from fastlearn.data.databunch import DataBunch, DataLoader
from fastlearn.data.datasets import Datasets
from fastlearn.data.getters import ColReader
from fastlearn.data.splitters import IndexSplitter
from fastlearn.data.transforms import Transform


class Jitter(Transform):
    """A random, training-only item transform on regression inputs (drawn from the given rng)."""

    split_idx = 0
    kinds = ("regression",)

    def before_call(self, sample, kinds, split_idx, rng):
        self.noise = rng.random()

    def encodes(self, x):
        return x + self.noise


class RecordDevice(Transform):
    kinds = ("regression",)

    def encodes(self, x):
        self.device = x.device
        return x * 2


def frame(n=40):
    return pd.DataFrame({"x": [float(i) for i in range(n)], "y": [["a", "b", "c"][i % 3] for i in range(n)]})


def make_dls(num_workers=0, seed=3, item_tfms=None, batch_tfms=None, bs=8):
    dblock = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=ColReader("x"), get_y=ColReader("y"),
                       splitter=IndexSplitter(list(range(30, 40))), item_tfms=item_tfms, batch_tfms=batch_tfms)
    return dblock.dataloaders(frame(), bs=bs, num_workers=num_workers, seed=seed, device="cpu")


def batches(dl):
    return [tuple(t.clone() for t in b) for b in dl]


def test_from_dsets_and_lengths():
    train = [(torch.randn(3), torch.tensor(0)) for _ in range(10)]
    dls = DataBunch.from_dsets(train, train[:4], bs=4, device="cpu")
    assert len(dls.train) == 2 and len(dls.valid) == 1 and dls.train.n == 10
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 3) and yb.shape == (4,)
    assert DataLoader(list(range(10)), batch_size=4).bs == 4


def test_seeded_shuffle_repeats_and_epochs_differ():
    a, b = make_dls(seed=3), make_dls(seed=3)
    first = batches(a.train)
    assert all(torch.equal(x, y) for bx, by in zip(first, batches(b.train)) for x, y in zip(bx, by))
    a.train.set_epoch(1)
    assert not torch.equal(batches(a.train)[0][0], first[0][0])
    order = torch.cat([bx[0] for bx in first]).tolist()
    assert len(order) == 24 and len(set(order)) == 24  # drop_last on the training set: 30 // 8 * 8
    assert [b[0].tolist() for b in a.valid] == [[float(i) for i in range(30, 40)]]


def test_two_workers_give_the_same_batches_as_one_process():
    single = batches(make_dls(num_workers=0, item_tfms=[Jitter()]).train)
    double = batches(make_dls(num_workers=2, item_tfms=[Jitter()]).train)
    assert len(single) == len(double) == 3
    for bs, bd in zip(single, double):
        assert torch.equal(bs[0], bd[0]) and torch.equal(bs[1], bd[1])
    # the augmentation did run (inputs are not whole numbers any more) and only on training
    assert not torch.equal(single[0][0], single[0][0].round())
    assert torch.equal(next(iter(make_dls(item_tfms=[Jitter()]).valid))[0],
                       torch.arange(30, 40).float())


def test_batch_transforms_run_on_the_device_after_transfer():
    recorder = RecordDevice()
    dls = make_dls(batch_tfms=[recorder])
    xb, yb = dls.valid.one_batch()
    assert xb.tolist() == [2.0 * i for i in range(30, 40)]
    assert dls.valid.after_batch.fs[0].device == torch.device("cpu")
    assert yb.dtype == torch.long  # the category part is left alone


def test_dls_decode_undoes_the_training_loaders_batch_transforms():
    class Halve(Transform):
        kinds = ("regression",)

        def encodes(self, x):
            return x / 2

        def decodes(self, x):
            return x * 2

    dls = make_dls(batch_tfms=[Halve()])
    xb, yb = dls.valid.one_batch()
    assert xb.tolist() == [i / 2 for i in range(30, 40)]
    decoded = dls.decode((xb, yb))  # as dls.train.decode, which the book calls
    assert decoded[0].tolist() == list(map(float, range(30, 40))) and torch.equal(decoded[1], yb)


def test_new_sampler_and_plain_function_after_batch():
    dls = make_dls()
    dl = dls.valid.new(sampler=[3, 1], bs=2)
    assert dl.n == 2 and next(iter(dl))[0].tolist() == [33.0, 31.0]
    plain = DataLoader([(torch.tensor(1.0), torch.tensor(2.0))], bs=1,
                       after_batch=lambda batch: (batch[0] + 1, batch[1]))
    assert next(iter(plain))[0].tolist() == [2.0]


def test_vocab_c_loss_and_decoding():
    dls = make_dls()
    assert list(dls.vocab) == ["a", "b", "c"] and dls.c == 3
    assert type(dls.loss_func).__name__ == "CrossEntropyLossFlat"
    assert dls.decode_target(torch.tensor(2)) == "c"
    decoded = dls.valid.decode_batch(dls.valid.one_batch(), max_n=2)
    assert decoded == [(torch.tensor(30.0), "a"), (torch.tensor(31.0), "b")]


def test_c_and_loss_from_a_datasets_built_from_transforms():
    # the mid-level API: Datasets(items, [[...], [label_func, Categorize]]) then a learner on it
    items = [float(i) for i in range(40)]
    dsets = Datasets(items, tfms=[[torch.tensor], [lambda x: "abc"[int(x) % 3], Categorize]],
                     splits=[list(range(30)), list(range(30, 40))])
    dls = dsets.dataloaders(bs=8, device="cpu")
    assert dls.c == 3 and type(dls.loss_func).__name__ == "CrossEntropyLossFlat"
    regression = Datasets(items, tfms=[[torch.tensor], [torch.tensor]]).dataloaders(bs=8, device="cpu")
    assert regression.c is None and regression.loss_func is None  # nothing says what the target is


def test_test_dl_with_and_without_labels():
    dls = make_dls()
    dl = dls.test_dl(frame(5))
    batch = dl.one_batch()
    assert isinstance(batch, tuple) and len(batch) == 1 and batch[0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    xb, yb = dls.test_dl(frame(3), with_labels=True).one_batch()
    assert yb.tolist() == [0, 1, 2]
    assert dls.test_dl([7.0, 8.0]).one_batch()[0].tolist() == [7.0, 8.0]  # no getter on raw items


def test_new_items_pass_once_through_pipelines_set_up_on_the_training_items():
    class Counted(Transform):  # a tokenizer, say: what a later step sets itself up from
        seen = 0

        def encodes(self, x):
            Counted.seen += 1
            return x

    class Vocab(Transform):  # learns from the counted step's output once, as Numericalize does
        def setups(self, items):
            self.n = getattr(self, "n", None) or len(list(items))

        def encodes(self, x):
            return x

    items = [f"text {i}" for i in range(10)]
    dsets = Datasets(items, tfms=[[Counted(), Vocab()]], splits=[list(range(8)), [8, 9]])
    assert Counted.seen == 8 and dsets.pipelines[0].fs[1].n == 8  # set up on the training items
    Counted.seen = 0
    test = dsets.test_set([f"new {i}" for i in range(5)])
    assert Counted.seen == 0  # not passed through to set up again
    assert [test[i][0] for i in range(5)] == [f"new {i}" for i in range(5)] and Counted.seen == 5


def test_show_batch_draws_one_figure_headless_and_returns_nothing():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    dls = make_dls()
    plt.close("all")
    assert dls.show_batch(max_n=4, nrows=1) is None  # a notebook shows the figure once
    assert plt.get_fignums() == [1]
    fig = plt.gcf()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 4 and len(titles) == 4 and all(t.split("\n")[1] in "abc" for t in titles)
    assert dls.train.show_batch(max_n=3, unique=True) is None
    fig = plt.gcf()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(set(titles)) == 1


def test_inference_spec_round_trip_without_images():
    import json
    dls = make_dls()
    spec = json.loads(json.dumps(dls.inference_spec()))
    assert spec["n_inp"] == 1 and spec["vocab"] == ["a", "b", "c"]
    assert spec["targets"][0]["block"]["name"] == "CategoryBlock"
    assert dls.inference_builder() is Datasets  # what an export file names for DataBlock loaders
    rebuilt = Datasets.from_inference_spec(spec)
    assert type(rebuilt) is DataBunch
    assert list(rebuilt.vocab) == ["a", "b", "c"] and rebuilt.c == 3
    assert rebuilt.decode_target(torch.tensor(1)) == "b"
    assert rebuilt.test_dl([1.0, 2.0]).one_batch()[0].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="not a fastlearn inference description"):
        Datasets.from_inference_spec({"format": "x"})


def test_unexportable_item_transform_says_how_to_fix():
    dls = make_dls(item_tfms=[Transform(lambda x: x)])
    with pytest.raises(TypeError, match="register_transform"):
        dls.inference_spec()


def test_unseeded_shuffle_and_augmentation_follow_torch_global_rng():
    def run(dl):
        return [tuple(t.clone() for t in b) for b in dl]

    def same(a, b):
        return all(torch.equal(x, y) for bx, by in zip(a, b) for x, y in zip(bx, by))

    dl = make_dls(seed=None, item_tfms=[Jitter()]).train
    torch.manual_seed(5)
    first, second = run(dl), run(dl)
    torch.manual_seed(5)
    assert same(run(dl), first)  # set_seed(...) makes an unseeded run repeat
    assert not torch.equal(first[0][0], second[0][0])  # and each epoch has its own order
    state = torch.get_rng_state()  # what a checkpoint restores on resume
    third = run(dl)
    torch.set_rng_state(state)
    assert same(run(dl), third)
    order = sorted(torch.cat([b[0] for b in first]).floor().tolist())
    assert len(order) == 24 and len(set(order)) == 24


def test_memory_is_pinned_only_for_cpu_tensors_bound_for_cuda():
    from fastlearn.data.dataloader import should_pin_memory
    cpu, elsewhere = (torch.zeros(2), torch.tensor(1)), (torch.zeros(2, device="meta"), torch.tensor(1))
    assert should_pin_memory("cuda", cpu) and should_pin_memory(torch.device("cuda:0"), [{"x": cpu}])
    assert not should_pin_memory("cpu", cpu) and not should_pin_memory(None, cpu)
    assert not should_pin_memory("cuda", elsewhere)  # tensors already off the CPU cannot be pinned
    assert not should_pin_memory("cuda", cpu, pin_memory=False)
    with pytest.raises(ValueError, match="only CPU tensors can be pinned"):
        should_pin_memory("cuda", elsewhere, pin_memory=True)
    # the loader probes its dataset's first item (without needing a GPU to decide)
    assert DataLoader([elsewhere] * 4, bs=2, device="cuda")._pin() is False
    assert DataLoader([cpu] * 4, bs=2, device="cuda")._pin() is True
    assert DataLoader([cpu] * 4, bs=2, device="cpu")._pin() is False


def test_workers_stay_between_passes_and_give_the_in_process_batches():
    single = make_dls(num_workers=0, item_tfms=[Jitter()]).train
    kept = make_dls(num_workers=1, item_tfms=[Jitter()]).train
    assert kept.keeps_workers and not single.keeps_workers
    passes = []
    for _ in range(2):  # epoch 0, then 1: a different order and augmentation, the same in both
        passes.append((batches(single), batches(kept)))
        if len(passes) == 1:
            workers = kept._persistent
    assert workers is not None and kept._persistent is workers  # the same worker processes
    assert workers.prefetch_factor == 2  # the config's default
    for in_process, from_workers in passes:
        assert all(torch.equal(a, b) for ba, bb in zip(in_process, from_workers) for a, b in zip(ba, bb))
    assert not torch.equal(passes[0][0][0][0], passes[1][0][0][0])
    kept.after_item = None  # the workers hold the old transforms: the next pass starts new ones
    assert kept._persistent is None
    plain = batches(kept)[0][0]
    assert torch.equal(plain, plain.round()) and kept._persistent is not workers  # no Jitter any more


def test_persistent_workers_and_prefetch_factor_can_be_set(tmp_path, monkeypatch):
    config = tmp_path / "config.ini"
    config.write_text("[defaults]\nprefetch_factor = 3\n")
    monkeypatch.setenv("FASTLEARN_CONFIG", str(config))
    dl = make_dls(num_workers=1).train.new(persistent_workers=False)
    batches(dl)
    assert not dl.keeps_workers and dl._persistent is None
    dl = make_dls(num_workers=1).train
    batches(dl)
    assert dl._persistent.prefetch_factor == 3
    assert dl.new(prefetch_factor=5).prefetch_factor == 5
    with pytest.raises(ValueError, match=r"prefetch_factor=0; expected a positive int"):
        DataLoader(list(range(4)), bs=2, prefetch_factor=0)


class _DropsInWorkers:
    """A dataset whose items run the collector, as a worker's allocations eventually do."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        import gc
        gc.collect()
        return torch.tensor(float(i))


class _RecordsWhereFreed:
    """Cyclic garbage (like a finished Learner holding GPU tensors) that notes which process frees it."""

    def __init__(self, path):
        self.path, self.cycle = path, self

    def __del__(self):
        import os
        with open(self.path, "a") as file:
            file.write(f"{os.getpid()}\n")


@pytest.mark.skipif(sys.platform != "linux", reason="forked workers are the default on Linux only")
def test_forked_workers_do_not_free_the_parents_garbage(tmp_path):
    # a forked worker that freed a parent's CUDA tensor would abort ("CUDA error: initialization error")
    import gc
    import os
    record = tmp_path / "freed_in.txt"
    dl = DataLoader(_DropsInWorkers(), bs=4, num_workers=2)
    gc.disable()  # the garbage stays until the loader starts its workers
    try:
        _RecordsWhereFreed(record)
        assert [b.tolist() for b in dl] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    finally:
        gc.enable()
        gc.collect()
    assert record.read_text().split() == [str(os.getpid())]  # freed once, by this process


def test_a_dataset_pickles_small_for_spawned_workers():
    import pickle
    view = make_dls().train.dataset
    assert view.cache  # the encoded labels, one tensor per item
    cached = next(iter(view.cache.values()))
    data = pickle.dumps(view)
    assert len(data) < len(pickle.dumps(cached)) / 2  # stacked: not one pickled tensor per item
    back = pickle.loads(data)
    assert len(back) == len(view) == 30
    for i in (0, 7, 29):
        assert all(torch.equal(a, b) for a, b in zip(back[i], view[i]))


def test_a_batch_of_one_keeps_the_items_memory_layout_and_values():
    channels_last = torch.arange(4 * 5 * 3, dtype=torch.uint8).reshape(4, 5, 3).permute(2, 0, 1)  # as decoded
    items = [(channels_last, torch.tensor(1)), (channels_last + 1, torch.tensor(0))]
    xb, yb = DataLoader(items[:1], bs=4).one_batch()
    assert xb.is_contiguous(memory_format=torch.channels_last) and not xb.is_contiguous()
    assert torch.equal(xb, channels_last[None]) and yb.tolist() == [1]
    assert xb.data_ptr() != channels_last.data_ptr()  # a copy: changing the batch leaves the item alone
    xb2, yb2 = DataLoader(items, bs=4).one_batch()  # several items: stacked, contiguous
    assert xb2.is_contiguous() and torch.equal(xb2[:1], xb) and yb2.tolist() == [1, 0]
    assert DataLoader([3], bs=1).one_batch().tolist() == [3]  # not tensors: torch's collation


class Noise(Transform):
    """A random transform that also runs at validation (item or batch), drawn from the given rng."""

    kinds = ("regression",)

    def before_call(self, sample, kinds, split_idx, rng):
        self.noise = rng.random()

    def encodes(self, x):
        return x + self.noise


@pytest.mark.parametrize("seed", [3, None])
def test_test_batch_is_the_first_batch_of_test_dl_built_without_a_loader(seed, monkeypatch):
    dls = make_dls(seed=seed, item_tfms=[Noise()], batch_tfms=[Noise()])
    items = [7.0, 8.0, 9.0]
    torch.manual_seed(0)
    expected = dls.test_dl(items, num_workers=0).one_batch()
    after = torch.rand(2)  # what torch's generator gives next: a batch built directly draws the same
    torch.manual_seed(0)
    monkeypatch.setattr(DataLoader, "__iter__", lambda self: pytest.fail("a loader was iterated"))
    batch = dls.test_batch(items)
    assert isinstance(batch, tuple) and len(batch) == 1 and torch.equal(batch[0], expected[0])
    assert batch[0].tolist() != items  # the random transforms did run
    assert torch.equal(torch.rand(2), after)
    assert dls.test_batch(items, bs=2) is None and dls.test_batch([0.0] * (dls.valid.bs + 1)) is None  # more than a batch
    with pytest.raises(ValueError, match="batch_of got an empty dataset"):
        dls.valid.batch_of([])


def test_test_batch_leaves_loaders_of_their_own_to_test_dl():
    class OwnLoader(DataLoader):
        pass

    dls = make_dls()
    own = DataBunch(dls.train, OwnLoader(dls.valid_ds, bs=4), device="cpu")
    assert own.test_batch([1.0]) is None
    assert dls.test_batch([1.0])[0].tolist() == [1.0]


def test_a_splits_items_are_its_own_in_its_order():
    """``dls.valid_ds.items[i]`` is the item of ``dls.valid_ds[i]`` (the file of a top loss), for a
    list of items and for the rows of a table; the whole set still has every item."""
    names = [f"item{i}" for i in range(10)]
    block = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=lambda name: float(name[4:]),
                      get_y=lambda name: int(name[4:]) % 2, splitter=IndexSplitter([7, 2, 5]))
    dls = block.dataloaders(names, bs=4)
    assert list(dls.valid_ds.items) == ["item7", "item2", "item5"]
    assert [float(dls.valid_ds[i][0]) for i in range(3)] == [7.0, 2.0, 5.0]
    assert list(dls.train_ds.items) == [n for i, n in enumerate(names) if i not in (2, 5, 7)]
    assert list(dls.train_ds.all_items) == names

    df = frame(10)
    rows = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=ColReader("x"), get_y=ColReader("y"),
                     splitter=IndexSplitter([9, 0])).dataloaders(df, bs=4)
    pd.testing.assert_frame_equal(rows.valid_ds.items, df.iloc[[9, 0]])
    assert float(rows.valid_ds[0][0]) == 9.0 and len(rows.train_ds.items) == 8


def test_the_training_loaders_settings_and_a_loaders_items_read_as_in_fastai():
    """dls.bs / dls.after_batch / dls.dataset (the training loader's) and dls.valid.items were AttributeErrors."""
    names = [f"item{i}" for i in range(10)]
    dls = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=lambda name: float(name[4:]),
                    get_y=lambda name: int(name[4:]) % 2, splitter=IndexSplitter([7, 2])).dataloaders(names, bs=4)
    assert dls.bs == dls.train.bs == 4 and dls.after_batch is dls.train.after_batch
    assert dls.after_item is dls.train.after_item and dls.dataset is dls.train_ds
    assert list(dls.valid.items) == ["item7", "item2"] and len(dls.train.items) == 8
    with pytest.raises(AttributeError, match="has no items"):
        DataLoader([1, 2, 3], bs=2).items
