"""ULMFiT in miniature: language model, encoder, classifier, predict, export."""
from __future__ import annotations

import math

import pytest
import torch

from fastlearn.loading import load_learner
from fastlearn.text import (AWD_LSTM, TextDataLoaders, TextLearner, language_model_learner,
                            text_classifier_learner)
from fastlearn.metrics import accuracy
from fastlearn.torch_core import set_seed

TINY_LM = dict(emb_sz=32, n_hid=64, n_layers=2)
TINY_CLAS = TINY_LM


@pytest.fixture(scope="module")
def lm_learner(austen_df, tmp_path_factory):
    set_seed(0)
    dls = TextDataLoaders.from_df(austen_df, text_col="text", is_lm=True, valid_col="is_valid", bs=16, seq_len=24,
                                  seed=0, device="cpu")
    learn = language_model_learner(dls, AWD_LSTM, config=TINY_LM, drop_mult=0.3, pretrained=False,
                                   path=tmp_path_factory.mktemp("lm"))
    learn.logger = None
    before = learn.validate()
    learn.fit_one_cycle(2, 1e-2)
    return learn, before


def test_language_model_lowers_validation_perplexity(lm_learner):
    learn, before = lm_learner
    after = learn.validate()
    assert after[2] < before[2] * 0.5                   # perplexity
    assert after[2] == pytest.approx(math.exp(after[0]), rel=1e-4)
    assert len(learn.recorder.values) == 2


def test_language_model_predict_continues_the_text(lm_learner):
    learn, _ = lm_learner
    set_seed(1)
    text = learn.predict("Emma was", n_words=6, temperature=0.75)
    assert isinstance(text, str) and text.startswith("Emma was") and len(text) > len("Emma was")
    assert "xxmaj" not in text and "xxbos" not in text


def test_get_preds_on_texts_too_short_for_one_batch_says_so_and_bs_1_works(lm_learner):
    learn, _ = lm_learner
    texts = ["Emma was", "so"]
    with pytest.raises(ValueError, match=r"language model's loader \(2 items, bs=16, seq_len=24\) gave no batch.*bs=1"):
        learn.get_preds(dl=learn.dls.test_dl(texts))
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(texts, bs=1))
    assert preds.shape[0] == 1 and preds.shape[-1] == len(learn.dls.vocab)


def test_pretrained_weights_missing_is_a_clear_error(lm_learner):
    with pytest.raises(FileNotFoundError, match="pretrained=False"):
        language_model_learner(lm_learner[0].dls, AWD_LSTM, config=TINY_LM)


def test_a_language_model_of_empty_texts_is_refused_before_training():
    """Only empty or blank texts (each its xxbos) trained to accuracy 1.0 and said nothing."""
    import pandas as pd
    df = pd.DataFrame({"text": [""] * 30 + ["  "] * 10 + ["a real sentence"] * 2,
                       "is_valid": [False] * 40 + [True] * 2})
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_col="is_valid", bs=4, seq_len=5, device="cpu")
    with pytest.raises(ValueError, match=r"the 40 training texts of this language model hold no words, only the "
                                         r"special tokens \['xxbos'\].*text_col"):
        language_model_learner(dls, AWD_LSTM, config=TINY_LM, pretrained=False)
    df.loc[0, "text"] = "one word"
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_col="is_valid", bs=4, seq_len=5, device="cpu")
    assert isinstance(language_model_learner(dls, AWD_LSTM, config=TINY_LM, pretrained=False), TextLearner)


def test_freeze_to_trains_only_the_last_groups(lm_learner):
    learn, _ = lm_learner
    learn.freeze_to(-2)
    encoder = learn.model[0]
    assert not any(p.requires_grad for p in encoder.rnns[0].parameters())
    assert all(p.requires_grad for p in encoder.rnns[1].parameters())
    learn.unfreeze()


def test_recurrent_text_fine_tune_keeps_fastais_lr_mult_for_any_amount_of_data(lm_learner):
    learn, _ = lm_learner
    assert learn.default_lr_mult(1) == learn.default_lr_mult(10_000) == 100


def test_ulmfit_encoder_to_classifier_export_and_predict(lm_learner, food_path, tmp_path):
    lm, _ = lm_learner
    lm.path = tmp_path
    lm.save_encoder("finetuned")
    dls = TextDataLoaders.from_folder(food_path, valid="test", text_vocab=lm.dls.vocab, bs=32, seed=0,
                                      device="cpu")
    set_seed(0)
    learn = text_classifier_learner(dls, AWD_LSTM, config=TINY_CLAS, drop_mult=0.3, metrics=accuracy,
                                    pretrained=False, path=tmp_path)
    learn.logger = None
    assert isinstance(learn, TextLearner)
    learn = learn.load_encoder("finetuned")
    for mine, saved in zip(learn.model[0].module.state_dict().values(), lm.model[0].state_dict().values()):
        assert torch.equal(mine.cpu(), saved.cpu())
    assert not learn.model[0].module.encoder.weight.requires_grad       # load_encoder freezes the body
    learn.fit_one_cycle(1, 2e-2)
    learn.unfreeze()
    learn.fit_one_cycle(2, 5e-3)
    losses = [v[0] for v in learn.recorder.values]
    first_batches = learn.recorder.losses[:5]
    assert sum(learn.recorder.losses[-5:]) < sum(first_batches)         # it learns
    label, index, probs = learn.predict("Absolutely delicious, the best coffee I have ever had!")
    assert label in ("great", "other") and probs.shape == (2,) and float(probs.sum()) == pytest.approx(1, abs=1e-5)
    learn.export("clas.pkl")
    loaded = load_learner(tmp_path / "clas.pkl")
    for text in ("Terrible. Stale and overpriced.", "Great snack for kids"):
        expected, got = learn.predict(text), loaded.predict(text)
        assert got[0] == expected[0]
        torch.testing.assert_close(got[2], expected[2])
    assert list(loaded.dls.vocab[1]) == ["great", "other"]
    assert losses


def test_load_encoder_with_another_vocab_is_a_clear_error(lm_learner, food_path, tmp_path):
    lm, _ = lm_learner
    lm.path = tmp_path
    lm.save_encoder("enc")
    dls = TextDataLoaders.from_folder(food_path, valid="test", bs=32, device="cpu")
    learn = text_classifier_learner(dls, AWD_LSTM, config=TINY_CLAS, pretrained=False, path=tmp_path)
    with pytest.raises(ValueError, match="text_vocab=dls_lm.vocab"):
        learn.load_encoder("enc")


def test_validation_comes_longest_first_and_get_preds_keeps_item_order(food_path, tmp_path):
    dls = TextDataLoaders.from_folder(food_path, valid="test", bs=32, device="cpu")
    longest = [int((x != 1).sum(1).max()) for x, _ in dls.valid]
    assert longest == sorted(longest, reverse=True) and dls.valid.item_order is not None
    in_order = dls.valid.new(sampler=torch.utils.data.SequentialSampler(range(len(dls.valid_ds))))
    assert in_order.item_order is None
    padded = {name: sum(x.numel() for x, _ in dl) for name, dl in (("sorted", dls.valid), ("in order", in_order))}
    assert padded["sorted"] < 0.8 * padded["in order"]   # less padding (item order pads each batch to its longest)
    set_seed(0)
    learn = text_classifier_learner(dls, AWD_LSTM, config=TINY_CLAS, pretrained=False, path=tmp_path, max_len=None)
    preds, targs, losses = learn.get_preds(with_loss=True)
    preds_in_order, targs_in_order, losses_in_order = learn.get_preds(dl=in_order, with_loss=True)
    assert torch.equal(targs, targs_in_order)   # results in item order all the same
    torch.testing.assert_close(preds, preds_in_order, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(losses, losses_in_order, atol=1e-5, rtol=1e-4)


def test_get_preds_with_input_pads_texts_of_every_batch_to_one_length(food_path, tmp_path):
    dls = TextDataLoaders.from_folder(food_path, valid="test", bs=8, device="cpu")
    learn = text_classifier_learner(dls, AWD_LSTM, config=TINY_CLAS, pretrained=False, path=tmp_path)
    inputs, preds, targs = learn.get_preds(with_input=True)
    tokens = [dls.valid_ds[i][0] for i in range(len(dls.valid_ds))]   # item order, unpadded
    assert inputs.shape == (len(tokens), max(len(t) for t in tokens)) and len(preds) == len(tokens)
    for row, text in zip(inputs, tokens):   # each text, then the vocab's padding token
        assert torch.equal(row[:len(text)], text) and bool((row[len(text):] == 1).all())
    texts = [p.read_text() for p in sorted((food_path / "test").rglob("*.txt"))][:20]   # several batches of 8
    batch = learn.predict_batch(texts)
    assert [label for label, *_ in batch] == [learn.predict(t)[0] for t in texts]


def test_show_results_is_a_table_of_texts_targets_and_predictions(lm_learner, food_path, tmp_path):
    import matplotlib.pyplot as plt
    dls = TextDataLoaders.from_folder(food_path, valid="test", bs=8, device="cpu")
    learn = text_classifier_learner(dls, AWD_LSTM, config=TINY_CLAS, pretrained=False, path=tmp_path)
    assert learn.show_results(max_n=2).shape == (2, 3)
    table = dls.show_results(learn, max_n=3, trunc_at=None)
    preds, targs = learn.get_preds()   # item order
    assert table.columns.tolist() == ["text", "category", "category_pred"]
    assert table["category"].tolist() == [dls.vocab[1][int(t)] for t in targs[:3]]
    assert table["category_pred"].tolist() == [dls.vocab[1][int(i)] for i in preds[:3].argmax(1)]
    first = dls.valid_ds[0][0]
    assert table["text"][0] == dls.valid_ds.pipelines[0].decode(first) and "xxpad" not in table["text"][0]
    lm, _ = lm_learner
    table = lm.dls.show_results(lm, max_n=2, trunc_at=None)
    assert table.columns.tolist() == ["text", "text_", "text_pred"]
    stream = torch.cat(lm.dls.valid.docs)
    seq_len = lm.dls.valid.seq_len
    decode = lm.dls.valid_ds.pipelines[0].decode
    assert table["text"][0] == decode(stream[:seq_len]) and table["text_"][0] == decode(stream[1:seq_len + 1])
    assert len(table) == 2 and len(table["text_pred"][0].split(" ")) == seq_len
    assert plt.get_fignums() == []   # a table, not a figure of empty image axes
