"""AWD_LSTM, the language model and the classifier."""
from __future__ import annotations

import pickle

import pytest
import torch

from fastlearn.text import AWD_LSTM, awd_lstm_clas_split, get_language_model, get_text_classifier

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


def test_unknown_arch_and_config_are_clear_errors():
    with pytest.raises(ValueError, match="unknown text architecture"):
        get_language_model("GPT9", 10)
    with pytest.raises(ValueError, match="not options"):
        get_language_model(AWD_LSTM, 10, config=dict(emb_size=3))
