"""LMDataLoader, SortedDL / pad_input, TextBlock and TextDataLoaders."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from fastlearn.text import LMDataLoader, SortedDL, TextDataLoaders, pad_input


def _docs():
    return [torch.arange(start, start + n) for start, n in ((0, 37), (100, 50), (200, 23), (300, 41))]


def test_lm_loader_targets_are_inputs_shifted_and_every_token_is_seen_once():
    docs = _docs()
    dl = LMDataLoader(docs, bs=3, seq_len=8, shuffle=True, seed=1)
    batches = list(dl)
    total = sum(len(d) for d in docs)
    row_len = (total - 1) // 3
    assert len(batches) == len(dl) == -(-row_len // 8)
    assert all(x.shape == y.shape and x.shape[0] == 3 for x, y in batches)
    assert batches[0][0].shape == (3, 8) and batches[-1][0].shape[1] == row_len - 8 * (len(batches) - 1)
    xs, ys = torch.cat([x for x, _ in batches], 1), torch.cat([y for _, y in batches], 1)
    assert torch.equal(xs[:, 1:], ys[:, :-1])                       # the next token, row by row
    seen = xs.flatten()
    assert len(seen) == len(set(seen.tolist())) == 3 * row_len       # each token once...
    assert total - len(seen) < 3                                     # ...and only the remainder left out
    dl.set_epoch(0)
    stream = dl.stream()                                             # rows continue one stream
    assert torch.equal(xs.flatten(), stream[:3 * row_len])


def test_lm_loader_shuffles_documents_per_epoch_with_a_seed():
    first = [x.clone() for x, _ in LMDataLoader(_docs(), bs=2, seq_len=5, shuffle=True, seed=3)]
    again = [x.clone() for x, _ in LMDataLoader(_docs(), bs=2, seq_len=5, shuffle=True, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    dl = LMDataLoader(_docs(), bs=2, seq_len=5, shuffle=True, seed=3)
    orders = {tuple(dl.stream()[:1].tolist()) for dl.epoch in range(8)}
    assert len(orders) > 1


def test_pad_input_pads_at_the_end_or_in_front():
    samples = [(torch.tensor([5, 6, 7]), 0), (torch.tensor([8]), 1)]
    assert pad_input(samples)[1][0].tolist() == [8, 1, 1]
    assert pad_input(samples, pad_idx=0, pad_first=True)[1][0].tolist() == [0, 0, 8]


def test_sorted_dl_groups_similar_lengths_and_pads():
    lengths = [3, 50, 4, 48, 5, 47, 6, 46] * 4
    data = [(torch.full((n,), 7), i % 2) for i, n in enumerate(lengths)]
    dl = SortedDL(data, bs=4, shuffle=True, seed=0)
    batches = list(dl)
    assert sum(len(b[0]) for b in batches) == len(data)
    assert batches[0][0].shape[1] == 50                               # the longest batch first
    for x, _ in batches:
        n_real = (x != 1).sum(1)
        assert n_real.max() - n_real.min() <= 4                       # similar lengths together
        assert (x[:, :n_real.min()] == 7).all()                       # padding at the end
    valid = SortedDL(data, bs=4)
    assert (valid.one_batch()[0] != 1).sum(1).tolist() == [3, 50, 4, 48]  # no shuffle: items keep their order


def test_lm_dataloaders_from_df(austen_df):
    dls = TextDataLoaders.from_df(austen_df, text_col="text", is_lm=True, valid_col="is_valid", bs=8, seq_len=20)
    x, y = dls.one_batch()
    assert x.shape == y.shape == (8, 20) and torch.equal(x[:, 1:], y[:, :-1])
    assert dls.is_lm and dls.vocab[:2] == ["xxunk", "xxpad"] and len(dls.vocab) % 8 == 0
    table = dls.show_batch(max_n=2)
    assert list(table.columns) == ["text", "text_"] and len(table) == 2


def test_classifier_dataloaders_from_folder(food_path):
    dls = TextDataLoaders.from_folder(food_path, valid="test", bs=16, seed=0)
    text_vocab, label_vocab = dls.vocab
    assert list(label_vocab) == ["great", "other"] and dls.c == 2
    assert len(dls.train_ds) == 300 and len(dls.valid_ds) == 100
    x, y = dls.one_batch()
    assert x.dtype == torch.long and x.shape[0] == 16 and y.shape == (16,)
    assert (x[:, 0] == text_vocab.index("xxbos")).all()
    table = dls.show_batch(max_n=3)
    assert list(table.columns) == ["text", "category"] and table.text[0].startswith("xxbos")


def test_classifier_with_a_given_vocab_and_from_csv(food_path):
    lm = TextDataLoaders.from_folder(food_path, valid="test", is_lm=True, bs=8, seq_len=20)
    dls = TextDataLoaders.from_csv(food_path, "texts.csv", text_col="text", label_col="label",
                                   valid_col="is_valid", text_vocab=lm.vocab, bs=16)
    assert dls.vocab[0] == lm.vocab
    predicted = dls.test_dl(["Great food!", "Awful, never again."]).one_batch()[0]
    assert predicted.shape[0] == 2


def test_from_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        TextDataLoaders.from_folder(tmp_path / "missing")
    with pytest.raises(TypeError, match="DataFrame"):
        TextDataLoaders.from_df([("a", 1)])
    with pytest.raises(ValueError, match="not in the DataFrame"):
        TextDataLoaders.from_df(pd.DataFrame({"t": ["a"], "l": [0]}), text_col="text")


def test_pad_input_in_chunks_of_seq_len():
    samples = [(torch.arange(2, 9),), (torch.tensor([5]),), (torch.tensor([6, 7, 8]),)]
    padded = [s[0].tolist() for s in pad_input(samples, pad_first=True, seq_len=3)]
    assert padded == [[2, 3, 4, 5, 6, 7, 8], [1, 1, 1, 1, 1, 1, 5], [1, 1, 1, 6, 7, 8, 1]]
    dl = SortedDL(samples, bs=3, seq_len=3)                          # the course passes seq_len=72
    assert dl.one_batch()[0].tolist() == padded


def test_lm_loader_refuses_item_transforms_and_takes_batch_transforms():
    with pytest.raises(ValueError, match="after_item.*one stream of tokens"):
        LMDataLoader(_docs(), bs=2, seq_len=4, after_item=[lambda x: x])
    dl = LMDataLoader(_docs(), bs=2, seq_len=4, after_batch=lambda b: (b[0] + 1000, b[1]))
    x, y = dl.one_batch()
    assert x.min() >= 1000 and y.max() < 1000


def test_datablock_with_a_text_block_builds_text_loaders(food_path):
    from fastlearn.data import DataBlock, RandomSplitter, get_text_files
    from fastlearn.text import TextBlock
    dblock = DataBlock(blocks=TextBlock.from_folder(food_path, is_lm=True), get_items=get_text_files,
                       splitter=RandomSplitter(0.1, seed=0))
    dls = dblock.dataloaders(food_path, bs=8, val_bs=4, seq_len=12, device="cpu")
    assert type(dls).__name__ == "TextDataBunch" and dls.is_lm
    assert dls.one_batch()[0].shape == (8, 12) and dls.valid.bs == 4 and dls.valid.seq_len == 12
    assert dls.loss_func is not None and dls.c == len(dls.vocab)
    assert dls.train_ds.cache and 0 in dls.train_ds.cache           # numericalized once, in one pass


def test_sorted_dl_with_a_kept_worker_gives_the_in_process_batches():
    g = torch.Generator().manual_seed(0)
    items = [(torch.randint(2, 50, (int(n),), generator=g), torch.tensor(i % 2))
             for i, n in enumerate(torch.randint(3, 30, (60,), generator=g))]
    passes = {}
    for workers in (0, 1):
        dl = SortedDL(items, bs=8, shuffle=True, seed=0, num_workers=workers)
        passes[workers] = [[tuple(t.clone() for t in b) for b in dl] for _ in range(2)]
    assert dl.keeps_workers and dl._persistent is not None
    for in_process, from_worker in zip(passes[0], passes[1]):
        assert len(in_process) == len(from_worker) > 0
        for a, b in zip(in_process, from_worker):
            assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(passes[0][0][0][0], passes[0][1][0][0])  # a new order in the second epoch
