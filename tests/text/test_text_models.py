"""AWD_LSTM, the language model and the classifier."""
from __future__ import annotations

import pickle

import pytest
import torch

from fastlearn.text import AWD_LSTM, awd_lstm_clas_split, get_language_model, get_text_classifier
from fastlearn.text.models.awdlstm import EmbeddingDropout, drop_weight, keep_mask

CONFIG = dict(emb_sz=16, n_hid=24, n_layers=2)


def test_awd_lstm_shapes_state_and_reset():
    enc = AWD_LSTM(40, **CONFIG)
    out = enc(torch.randint(0, 40, (3, 7)))
    assert out.shape == (3, 7, 16)
    assert [h.shape for h in enc.hidden[0]] == [torch.Size([1, 3, 24])] * 2
    assert [h.shape for h in enc.hidden[1]] == [torch.Size([1, 3, 16])] * 2
    assert not enc.hidden[0][0].requires_grad
    raw, dropped = enc.last_activations
    assert raw.shape == dropped.shape == (3, 7, 16)
    enc.eval()
    x = torch.randint(0, 40, (2, 5))
    enc.reset()
    first = enc(x)
    assert not torch.equal(first, enc(x))          # the state carried over
    enc.reset()
    assert torch.equal(first, enc(x))              # reset: the same as a fresh start
    pickle.loads(pickle.dumps(enc))                # weight dropout patches nothing


def test_weight_dropout_changes_training_outputs_only():
    enc = AWD_LSTM(20, emb_sz=8, n_hid=8, n_layers=1, weight_p=0.9, hidden_p=0, input_p=0, embed_p=0)
    x = torch.randint(0, 20, (2, 4))
    enc.train()
    enc.reset(); a = enc(x)
    enc.reset(); b = enc(x)
    assert not torch.equal(a, b)
    enc.eval()
    enc.reset(); c = enc(x)
    enc.reset(); d = enc(x)
    assert torch.equal(c, d)


def test_language_model_ties_weights_and_outputs_logits():
    lm = get_language_model(AWD_LSTM, 48, config=CONFIG, drop_mult=0.5)
    assert lm[1].decoder.weight is lm[0].encoder.weight
    assert lm(torch.randint(0, 48, (2, 6))).shape == (2, 6, 48)
    assert lm[0].hidden_dps[0].p == pytest.approx(0.15 * 0.5)


def test_classifier_pools_over_padding_and_splits_into_groups():
    model = get_text_classifier(AWD_LSTM, 48, 3, seq_len=4, config=CONFIG).eval()
    text = torch.randint(2, 48, (1, 9))
    padded = torch.cat([text, torch.ones(1, 5, dtype=torch.long)], 1)
    assert model(text).shape == (1, 3)
    torch.testing.assert_close(model(text), model(padded))   # padding does not change the prediction
    groups = awd_lstm_clas_split(model)
    assert len(groups) == 4 and sum(len(g) for g in groups) == len(list(model.parameters()))


def test_a_short_text_batched_with_one_longer_than_max_len_is_still_read():
    torch.manual_seed(0)
    model = get_text_classifier(AWD_LSTM, 48, 3, seq_len=4, config=CONFIG, max_len=8).eval()
    short, long = torch.randint(2, 48, (1, 5)), torch.randint(2, 48, (1, 20))
    batch = torch.cat([long, torch.cat([short, torch.ones(1, 15, dtype=torch.long)], 1)])  # padded at the end
    outputs, mask = model[0](batch)
    assert (~mask).sum(1).tolist() == [8, 5]                  # the last 8 tokens of each text
    assert (~mask[0, -8:]).all() and (~mask[1, :5]).all()      # the long one's last 8, the short one whole
    torch.testing.assert_close(model(batch)[1], model(short)[0])  # as the short text alone
    torch.testing.assert_close(model(batch)[0], model(long)[0])
    longer = torch.cat([torch.randint(2, 48, (1, 14)), torch.ones(1, 6, dtype=torch.long)], 1)  # 14 tokens
    outputs, mask = model[0](torch.cat([long, longer]))
    assert outputs.shape[1] == 20 - 6 and (~mask).sum(1).tolist() == [8, 8]  # from the first position a window needs


def test_unknown_arch_and_config_are_clear_errors():
    with pytest.raises(ValueError, match="unknown text architecture"):
        get_language_model("GPT9", 10)
    with pytest.raises(ValueError, match="not options"):
        get_language_model(AWD_LSTM, 10, config=dict(emb_size=3))


def test_dropout_masks_drop_the_asked_share_and_scale_the_rest():
    torch.manual_seed(0)
    for p in (0.06, 0.5):
        w = drop_weight(torch.ones(400, 300), p)
        assert (w == 0).float().mean().item() == pytest.approx(p, abs=0.01)
        assert w.unique().tolist() == pytest.approx([0.0, 1 / (1 - p)])
    keep = keep_mask((1001,), 0.3)
    assert keep.shape == (1001,) and keep.dtype == torch.bool
    weight = torch.randn(4, 3, requires_grad=True)
    dropped = drop_weight(weight, 0.5)
    dropped.sum().backward()
    assert torch.equal(weight.grad, (dropped != 0).float() * 2)    # gradients only through the kept entries


def test_embedding_dropout_drops_whole_words():
    emb = torch.nn.Embedding(50, 6)
    drop = EmbeddingDropout(emb, 0.5).train()
    torch.manual_seed(1)
    words = torch.tensor([[3, 7, 3, 9, 7, 3]])
    out = drop(words)[0]
    for w in (3, 7, 9):                             # every occurrence of a word kept or dropped together
        rows = out[words[0] == w]
        assert torch.equal(rows, torch.zeros_like(rows)) or torch.allclose(rows, emb.weight[w].expand_as(rows) * 2)


def test_the_last_layer_is_not_hidden_dropped_and_the_decoder_records_activations():
    enc = AWD_LSTM(20, emb_sz=8, n_hid=8, n_layers=1, hidden_p=0.9, weight_p=0, input_p=0, embed_p=0)
    x = torch.randint(2, 20, (2, 5))
    enc.train(); enc.reset(); a = enc(x)
    enc.eval(); enc.reset(); b = enc(x)
    torch.testing.assert_close(a, b)                # hidden_p applies between layers only, as fastai's
    lm = get_language_model(AWD_LSTM, 20, config=dict(emb_sz=8, n_hid=8, n_layers=2, output_p=0.5)).train()
    lm(x)
    raw, dropped = lm[1].last_activations           # what RNNRegularizer penalises: before/after output_p
    assert raw.shape == dropped.shape == (2, 5, 8) and not torch.equal(raw, dropped)


def test_lower_precision_runs_the_recurrence_in_bfloat16_with_float32_weights():
    lm = get_language_model(AWD_LSTM, 30, config=CONFIG).train()
    x = torch.randint(2, 30, (3, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = lm(x)
    assert lm[0].hidden[0][0].dtype == torch.float32                 # the carried state stays float32
    assert lm[1].last_activations[0].dtype == torch.bfloat16
    logits.float().sum().backward()
    rnn = lm[0].rnns[0].module
    assert rnn.weight_hh_l0.dtype == torch.float32 and rnn.weight_hh_l0.grad.dtype == torch.float32
    assert rnn.weight_hh_l0.grad.abs().sum() > 0 and rnn.weight_ih_l0.grad.abs().sum() > 0
    lm.eval(); lm.reset()
    with torch.no_grad():
        full = lm(x)
        lm.reset()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = lm(x).float()
    torch.testing.assert_close(low, full, atol=0.05, rtol=0.05)     # the same model, in less precision
