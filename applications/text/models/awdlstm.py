"""AWD-LSTM (Merity et al., 2017): an LSTM language model regularized by dropout in five places.

- ``EmbeddingDropout``: whole words of the embedding matrix are dropped (``embed_p``);
- ``RNNDropout`` on the embeddings (``input_p``), between layers (``hidden_p``) and on the output
  (``output_p``, in the decoder): one mask per sequence, the same at every time step;
- ``WeightDropout``: DropConnect on the LSTM's hidden-to-hidden weights (``weight_p``).

>>> model = AWD_LSTM(100, emb_sz=16, n_hid=32, n_layers=2)
>>> model(torch.randint(0, 100, (4, 7))).shape
torch.Size([4, 7, 16])
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def keep_mask(size: tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """A boolean mask of ``size``, each entry False with probability ``p``.

    Drawn as 16-bit random integers compared with ``p``'s threshold, two from every 32-bit draw:
    a quarter of the random-number work of ``bernoulli_`` (which dominates dropping a large weight
    matrix on a CPU), with ``p`` resolved to 1/65536.

    >>> mask = keep_mask((1000, 100), 0.25)
    >>> mask.dtype, round(1 - mask.float().mean().item(), 2)
    (torch.bool, 0.25)
    """
    n = math.prod(size)
    bits = torch.randint(-2**31, 2**31 - 1, ((n + 1) // 2,), dtype=torch.int32, device=device).view(torch.int16)
    return (bits[:n] >= round(p * 65536) - 32768).view(size)


def dropout_mask(x: torch.Tensor, size: tuple[int, ...], p: float) -> torch.Tensor:
    """A mask of ``size`` like ``x``: 0 with probability ``p``, else ``1/(1-p)``.

    >>> dropout_mask(torch.ones(1), (2, 3), 0.).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    if p >= 1:
        return x.new_zeros(size)
    return keep_mask(size, p, x.device).to(x.dtype).div_(1 - p)


def drop_weight(weight: torch.Tensor, p: float) -> torch.Tensor:
    """``F.dropout(weight, p)`` (entries zeroed with probability ``p``, the others scaled by
    ``1/(1-p)``), with the cheaper :func:`keep_mask`.

    >>> w = drop_weight(torch.ones(200, 50), 0.5)
    >>> sorted(w.unique().tolist()), round((w == 0).float().mean().item(), 1)
    ([0.0, 2.0], 0.5)
    """
    return weight * dropout_mask(weight.detach(), weight.shape, p)


class RNNDropout(nn.Module):
    """Dropout of whole features: one mask per sequence of a ``(bs, seq_len, features)`` batch.

    >>> RNNDropout(0.5).eval()(torch.ones(2, 3, 4)).sum().item()
    24.0
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.:
            return x
        return x * dropout_mask(x.detach(), (x.size(0), 1, *x.shape[2:]), self.p)


class EmbeddingDropout(nn.Module):
    """Look up ``emb`` with whole rows (words) of its weight dropped with probability ``embed_p``.

    >>> drop = EmbeddingDropout(nn.Embedding(10, 3), 0.5)
    >>> drop(torch.tensor([[1, 2]])).shape
    torch.Size([1, 2, 3])
    """

    def __init__(self, emb: nn.Embedding, embed_p: float):
        super().__init__()
        self.emb, self.embed_p = emb, embed_p

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        weight = self.emb.weight
        padding_idx = self.emb.padding_idx if self.emb.padding_idx is not None else -1
        out = F.embedding(words, weight, padding_idx, self.emb.max_norm, self.emb.norm_type,
                          self.emb.scale_grad_by_freq, self.emb.sparse)
        if self.training and self.embed_p != 0:
            # the rows looked up, scaled by their word's mask: the same as looking up in the masked
            # matrix, without multiplying all vocab_sz rows
            out = out * dropout_mask(weight.detach(), (weight.size(0), 1), self.embed_p)[words]
        return out


def autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The lower precision ``torch.autocast`` is running in for ``x``'s device, or None.

    >>> autocast_dtype(torch.zeros(1)) is None
    True
    """
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None


class WeightDropout(nn.Module):
    """DropConnect on ``module``'s ``layer_names`` weights (an ``nn.LSTM``'s ``weight_hh_l0``).

    The wrapped module keeps its own weights; in training, each forward calls it with dropped
    copies through ``torch.func.functional_call`` (one mask per batch for the whole sequence, and
    the recurrence stays one fused ``nn.LSTM`` call), so nothing is patched and the module pickles.

    Under ``torch.autocast`` (``learn.to_fp16()`` / ``to_bf16()``) the weights are cast to the
    autocast precision once per forward, the dropout applied to the cast copy, and the recurrence
    runs in that precision (on a CPU with bfloat16 units, about twice as fast as float32); the
    weights themselves, their gradients and the carried hidden state stay float32.

    >>> layer = WeightDropout(nn.LSTM(3, 4, batch_first=True), 0.5)
    >>> layer(torch.zeros(2, 5, 3))[0].shape
    torch.Size([2, 5, 4])
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     out, (h, c) = layer(torch.zeros(2, 5, 3))
    >>> out.dtype, h.dtype
    (torch.bfloat16, torch.float32)
    """

    def __init__(self, module: nn.Module, weight_p: float, layer_names: str | tuple[str, ...] = "weight_hh_l0"):
        super().__init__()
        self.module, self.weight_p = module, weight_p
        self.layer_names = (layer_names,) if isinstance(layer_names, str) else tuple(layer_names)

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, ...] | None = None):
        dtype = autocast_dtype(x)
        drop = self.training and self.weight_p != 0
        if dtype is None and not drop:
            return self.module(x, hidden)
        weights = dict(self.module.named_parameters()) if dtype is not None else \
            {name: getattr(self.module, name) for name in self.layer_names}
        if dtype is not None:
            weights = {name: w.to(dtype) for name, w in weights.items()}
        if drop:
            weights.update({name: drop_weight(weights[name], self.weight_p) for name in self.layer_names})
        if dtype is None:
            return self._call(weights, x, hidden)
        with torch.autocast(x.device.type, enabled=False):
            hidden = None if hidden is None else tuple(h.to(dtype) for h in hidden)
            out, state = self._call(weights, x.to(dtype), hidden)
        return out, tuple(h.float() for h in state)

    def _call(self, weights: dict, x: torch.Tensor, hidden):
        with warnings.catch_warnings():  # cuDNN warns that the dropped weights are not one flat chunk
            warnings.simplefilter("ignore", UserWarning)
            return functional_call(self.module, weights, (x, hidden))

    def reset(self) -> None:
        if hasattr(self.module, "reset"):
            self.module.reset()


class AWD_LSTM(nn.Module):
    """The AWD-LSTM encoder: token ids ``(bs, seq_len)`` → the last layer's outputs
    ``(bs, seq_len, emb_sz)``.

    It is stateful: the hidden state carries over from one batch to the next (detached), as the
    rows of consecutive ``LMDataLoader`` batches continue the same texts; ``reset()`` clears it
    (``ModelResetter`` does at the start of training and validation). ``hidden_p`` dropout is
    applied between layers, not to the last layer's outputs (the decoder or head applies its own).
    During training it keeps those outputs in ``last_activations`` (twice: before and after a
    dropout it does not apply), which ``RNNRegularizer`` penalises unless a later module (the
    language model's decoder) records its own.

    >>> enc = AWD_LSTM(50, emb_sz=8, n_hid=16, n_layers=2)
    >>> _ = enc(torch.zeros(3, 5, dtype=torch.long)); [h.shape for h in enc.hidden[0]]
    [torch.Size([1, 3, 16]), torch.Size([1, 3, 16])]
    >>> enc.reset(); enc.hidden is None
    True
    """

    initrange = 0.1

    def __init__(self, vocab_sz: int, emb_sz: int = 400, n_hid: int = 1152, n_layers: int = 3, pad_token: int = 1,
                 hidden_p: float = 0.3, input_p: float = 0.4, embed_p: float = 0.05, weight_p: float = 0.5,
                 bidir: bool = False):
        super().__init__()
        for name, value in (("vocab_sz", vocab_sz), ("emb_sz", emb_sz), ("n_hid", n_hid), ("n_layers", n_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"AWD_LSTM({name}={value!r}): expected a positive int")
        self.vocab_sz, self.emb_sz, self.n_hid, self.n_layers = vocab_sz, emb_sz, n_hid, n_layers
        self.pad_token, self.n_dir = pad_token, 2 if bidir else 1
        self.encoder = nn.Embedding(vocab_sz, emb_sz, padding_idx=pad_token)
        self.encoder_dp = EmbeddingDropout(self.encoder, embed_p)
        sizes = [emb_sz] + [n_hid] * (n_layers - 1) + [emb_sz]
        self.rnns = nn.ModuleList([
            WeightDropout(nn.LSTM(sizes[i], sizes[i + 1] // self.n_dir, 1, batch_first=True, bidirectional=bidir),
                          weight_p)
            for i in range(n_layers)])
        self.input_dp = RNNDropout(input_p)
        self.hidden_dps = nn.ModuleList([RNNDropout(hidden_p) for _ in range(n_layers)])
        with torch.no_grad():
            self.encoder.weight.uniform_(-self.initrange, self.initrange)
            if 0 <= pad_token < vocab_sz:
                self.encoder.weight[pad_token].zero_()
        self.hidden: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.last_activations: tuple[torch.Tensor, torch.Tensor] | None = None

    def _initial_hidden(self, bs: int, like: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(like.new_zeros(self.n_dir, bs, rnn.module.hidden_size),
                 like.new_zeros(self.n_dir, bs, rnn.module.hidden_size)) for rnn in self.rnns]

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        if inp.ndim != 2:
            raise ValueError(f"AWD_LSTM takes token ids of shape (bs, seq_len), got shape {tuple(inp.shape)}")
        bs = inp.size(0)
        output = self.input_dp(self.encoder_dp(inp))
        if self.hidden is None or self.hidden[0][0].size(1) != bs or self.hidden[0][0].device != output.device:
            self.hidden = self._initial_hidden(bs, output)
        new_hidden = []
        for layer, (rnn, drop) in enumerate(zip(self.rnns, self.hidden_dps)):
            output, state = rnn(output, self.hidden[layer])
            new_hidden.append(tuple(s.detach() for s in state))
            if layer < self.n_layers - 1:
                output = drop(output)
        self.hidden = new_hidden
        self.last_activations = (output, output) if self.training else None
        return output

    def reset(self) -> None:
        """Forget the hidden state (the next batch starts from zeros)."""
        self.hidden = None
        self.last_activations = None


awd_lstm_lm_config: dict = dict(emb_sz=400, n_hid=1152, n_layers=3, pad_token=1, bidir=False, output_p=0.1,
                                hidden_p=0.15, input_p=0.25, embed_p=0.02, weight_p=0.2, tie_weights=True,
                                out_bias=True)
"""Defaults of ``get_language_model(AWD_LSTM, ...)`` (fastai's)."""

awd_lstm_clas_config: dict = dict(emb_sz=400, n_hid=1152, n_layers=3, pad_token=1, bidir=False, output_p=0.4,
                                  hidden_p=0.3, input_p=0.4, embed_p=0.05, weight_p=0.5)
"""Defaults of ``get_text_classifier(AWD_LSTM, ...)`` (fastai's)."""
