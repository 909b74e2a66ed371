"""A plain PyTorch AWD-LSTM, the baseline of ``bench/text_speed.py``: the model, a language-model
step and a classifier step, written out as someone would by hand.

fastai's architecture, dropouts (``awd_lstm_lm_config`` / ``awd_lstm_clas_config`` × ``drop_mult``)
and initialisation; ``torch.optim.AdamW(fused=True)`` with fastai's betas, eps and weight decay; a one-cycle
schedule; AR/TAR on the language model. With ``lower=torch.bfloat16`` the step runs under
``torch.autocast`` and the LSTM weights are cast once per forward, so the recurrence runs in bfloat16.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

LM_P = {"embed": 0.02, "input": 0.25, "hidden": 0.15, "weight": 0.2, "output": 0.1}
CLAS_P = {"embed": 0.05, "input": 0.4, "hidden": 0.3, "weight": 0.5, "output": 0.4}


def drop(x, p, shape=None):
    """``x`` times a dropout mask of ``shape`` (default: one per sequence and feature)."""
    shape = (x.size(0), 1, x.size(2)) if shape is None else shape
    return x * x.new_empty(shape).bernoulli_(1 - p).div_(1 - p)


class PlainAWDLSTM(nn.Module):
    def __init__(self, vocab_sz, n_class=None, drop_mult=0.3, emb=400, hid=1152, layers=3, lower=None):
        super().__init__()
        self.p = {k: v * drop_mult for k, v in (LM_P if n_class is None else CLAS_P).items()}
        self.emb, self.lower, self.hidden = nn.Embedding(vocab_sz, emb, padding_idx=1), lower, None
        nn.init.uniform_(self.emb.weight, -0.1, 0.1)
        sizes = [emb] + [hid] * (layers - 1) + [emb]
        self.rnns = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(layers))
        if n_class is None:  # language model: decoder tied to the embedding
            self.head = nn.Linear(emb, vocab_sz)
            self.head.weight = self.emb.weight
            nn.init.zeros_(self.head.bias)
        else:                # classifier: [last, max, mean] pooling, then BatchNorm-Dropout-Linear x 2
            self.head = nn.Sequential(nn.BatchNorm1d(3 * emb), nn.Dropout(self.p["output"]), nn.Linear(3 * emb, 50),
                                      nn.ReLU(), nn.BatchNorm1d(50), nn.Dropout(0.1), nn.Linear(50, n_class))

    def encode(self, x):
        """Token ids (bs, seq_len) → the last layer's outputs; the hidden state carries on, detached."""
        w = self.emb.weight
        w = drop(w, self.p["embed"], (w.size(0), 1)) if self.training else w
        h = F.embedding(x, w, 1)
        h = drop(h, self.p["input"]) if self.training else h
        if self.hidden is None or self.hidden[0][0].size(1) != x.size(0):
            self.hidden = [(h.new_zeros(1, x.size(0), r.hidden_size, dtype=torch.float),) * 2 for r in self.rnns]
        dtype = self.lower or torch.float
        new_hidden = []
        for i, rnn in enumerate(self.rnns):
            weights = {k: v.to(dtype) for k, v in rnn.named_parameters()}
            weights["weight_hh_l0"] = F.dropout(weights["weight_hh_l0"], self.p["weight"], self.training)
            with torch.autocast("cpu", enabled=False):
                h, (hn, cn) = functional_call(rnn, weights, (h.to(dtype), tuple(s.to(dtype) for s in self.hidden[i])))
            new_hidden.append((hn.detach().float(), cn.detach().float()))
            if i < len(self.rnns) - 1 and self.training:
                h = drop(h, self.p["hidden"])
        self.hidden = new_hidden
        return h

    def forward(self, x):
        """Language model: logits, and the outputs before and after dropout (for AR/TAR)."""
        out = self.encode(x)
        dropped = drop(out, self.p["output"]) if self.training else out
        return self.head(dropped), out, dropped


def optimizer_and_schedule(model, lr_max, total_steps, moms=(0.8, 0.7, 0.8)):
    opt = torch.optim.AdamW(model.parameters(), lr=lr_max, betas=(moms[0], 0.99), eps=1e-5, weight_decay=0.01,
                            fused=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, lr_max, total_steps=total_steps, pct_start=0.25, div_factor=25.0, final_div_factor=1e5,
        base_momentum=moms[1], max_momentum=moms[0])
    return opt, sched


def lm_step(model, opt, sched, x, y, alpha=2.0, beta=1.0):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=model.lower is not None):
        logits, raw, dropped = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
    ar_tar = alpha * dropped.float().pow(2).mean() + beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
    (loss + ar_tar).backward()
    opt.step(), opt.zero_grad(), sched.step()
    return loss.detach()


def classifier_step(model, opt, sched, x, y, bptt=72):
    """A padded batch (padding, id 1, at the end), read ``bptt`` tokens at a time from a fresh state."""
    model.hidden = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=model.lower is not None):
        out = torch.cat([model.encode(x[:, i:i + bptt]) for i in range(0, x.size(1), bptt)], 1).float()
        pad = (x == 1).unsqueeze(-1)
        last = out[torch.arange(len(x)), (~pad).squeeze(-1).sum(1).clamp(min=1) - 1]
        pooled = torch.cat([last, out.masked_fill(pad, -1e9).max(1).values,
                            out.masked_fill(pad, 0).sum(1) / (~pad).sum(1).clamp(min=1)], 1)
        loss = F.cross_entropy(model.head(pooled).float(), y)
    loss.backward()
    opt.step(), opt.zero_grad(), sched.step()
    return loss.detach()
