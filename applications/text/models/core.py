"""Language models and classifiers around an encoder (``AWD_LSTM``): ``get_language_model`` and
``get_text_classifier``, with their parts and parameter-group splitters.

Both models return plain logits: ``(bs, seq_len, vocab_sz)`` for the language model,
``(bs, n_class)`` for the classifier.

>>> lm = get_language_model(AWD_LSTM, 64, config=dict(emb_sz=16, n_hid=32, n_layers=1))
>>> lm(torch.randint(0, 64, (2, 5))).shape
torch.Size([2, 5, 64])
>>> clas = get_text_classifier("AWD_LSTM", 64, 3, config=dict(emb_sz=16, n_hid=32, n_layers=1))
>>> clas(torch.randint(2, 64, (2, 9))).shape
torch.Size([2, 3])
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fastlearn.text.models.awdlstm import AWD_LSTM, RNNDropout, awd_lstm_clas_config, awd_lstm_lm_config
from fastlearn.registry import register_code

ARCHS: dict[str, type] = {"AWD_LSTM": AWD_LSTM}
LM_CONFIGS: dict[type, dict] = {AWD_LSTM: awd_lstm_lm_config}
CLAS_CONFIGS: dict[type, dict] = {AWD_LSTM: awd_lstm_clas_config}


def resolve_text_arch(arch: type | str) -> type:
    """``AWD_LSTM`` from the class or its name.

    >>> resolve_text_arch("AWD_LSTM").__name__
    'AWD_LSTM'
    """
    if isinstance(arch, str):
        if arch not in ARCHS:
            raise ValueError(f"unknown text architecture {arch!r}; known: {sorted(ARCHS)}")
        return ARCHS[arch]
    if arch not in LM_CONFIGS:
        raise ValueError(f"arch={arch!r} is not a known text architecture; pass one of {sorted(ARCHS)}")
    return arch


def _config(defaults: dict, config: dict | None, drop_mult: float) -> dict:
    unknown = set(config or {}) - set(defaults)
    if unknown:
        raise ValueError(f"config keys {sorted(unknown)} are not options of this model; known: {sorted(defaults)}")
    merged = {**defaults, **(config or {})}
    return {k: v * drop_mult if k.endswith("_p") else v for k, v in merged.items()}


class SequentialRNN(nn.Sequential):
    """``nn.Sequential`` whose ``reset()`` resets every child that has one (the encoder's state).

    >>> SequentialRNN(nn.Identity()).reset()
    """

    def reset(self) -> None:
        for child in self.children():
            if hasattr(child, "reset"):
                child.reset()


class LinearDecoder(nn.Module):
    """Encoder outputs → logits over the vocab, after ``RNNDropout(output_p)``; with
    ``tie_encoder`` its weight is the embedding's (the same Parameter). In training it keeps its
    input and the dropped-out input in ``last_activations`` (what ``RNNRegularizer`` penalises).

    >>> LinearDecoder(10, 4)(torch.zeros(2, 3, 4)).shape
    torch.Size([2, 3, 10])
    """

    initrange = 0.1

    def __init__(self, n_out: int, n_hid: int, output_p: float = 0.1, tie_encoder: nn.Module | None = None,
                 bias: bool = True):
        super().__init__()
        self.decoder = nn.Linear(n_hid, n_out, bias=bias)
        nn.init.uniform_(self.decoder.weight, -self.initrange, self.initrange)
        self.output_dp = RNNDropout(output_p)
        self.last_activations: tuple[torch.Tensor, torch.Tensor] | None = None
        if bias:
            nn.init.zeros_(self.decoder.bias)
        if tie_encoder is not None:
            self.decoder.weight = tie_encoder.weight

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        dropped = self.output_dp(output)
        self.last_activations = (output, dropped) if self.training else None
        return self.decoder(dropped)


def get_language_model(arch: type | str, vocab_sz: int, config: dict | None = None,
                       drop_mult: float = 1.) -> SequentialRNN:
    """``SequentialRNN(encoder, LinearDecoder)`` for next-token prediction; ``config`` overrides
    ``awd_lstm_lm_config`` and ``drop_mult`` scales every dropout.

    >>> get_language_model("AWD_LSTM", 16, config=dict(emb_sz=8, n_hid=8, n_layers=1))[1].decoder.out_features
    16
    """
    arch = resolve_text_arch(arch)
    config = _config(LM_CONFIGS[arch], config, drop_mult)
    tie_weights, output_p, out_bias = config.pop("tie_weights"), config.pop("output_p"), config.pop("out_bias")
    encoder = arch(vocab_sz, **config)
    decoder = LinearDecoder(vocab_sz, config["emb_sz"], output_p, tie_encoder=encoder.encoder if tie_weights else None,
                            bias=out_bias)
    return SequentialRNN(encoder, decoder)


def text_windows(inp: torch.Tensor, pad_idx: int, max_len: int) -> tuple[int, torch.Tensor]:
    """Where each text's last ``max_len`` tokens lie in a padded batch: ``(keep_from, inside)``,
    the first position any of them needs and, for the positions from there on, whether each one
    is inside its row's window (a text ends at its last token that is not padding, wherever the
    padding is).

    >>> keep_from, inside = text_windows(torch.tensor([[5, 6, 7, 8, 9], [5, 6, 1, 1, 1]]), 1, 3)
    >>> keep_from, inside.int().tolist()
    (0, [[0, 0, 1, 1, 1], [1, 1, 0, 0, 0]])
    """
    positions = torch.arange(inp.size(1), device=inp.device)
    ends = torch.where(inp != pad_idx, positions + 1, 0).max(1).values  # one past each text's last token
    starts = (ends - max_len).clamp(min=0)
    keep_from = int(starts.min())
    kept = positions[keep_from:]
    return keep_from, (kept >= starts[:, None]) & (kept < ends[:, None])


class SentenceEncoder(nn.Module):
    """Runs the encoder over a whole (padded) text, ``bptt`` tokens at a time, from a fresh state;
    returns the outputs of the last ``max_len`` tokens and their padding mask.

    Each text is pooled over its own last ``max_len`` tokens (:func:`text_windows`), wherever its
    padding is: a short text padded at the end and batched with one longer than ``max_len`` is
    read from its own tokens, not from the padding after it. The outputs kept start at the first
    position any text's window needs (all of them in a batch holding a short text), so a batch of
    long texts only keeps about ``max_len`` positions.

    >>> enc = SentenceEncoder(4, AWD_LSTM(20, emb_sz=6, n_hid=8, n_layers=1), pad_idx=1)
    >>> out, mask = enc(torch.tensor([[5, 6, 7, 8, 9, 1]]))
    >>> out.shape, mask.tolist()
    (torch.Size([1, 6, 6]), [[False, False, False, False, False, True]])
    """

    def __init__(self, bptt: int, module: nn.Module, pad_idx: int = 1, max_len: int | None = None):
        super().__init__()
        self.bptt, self.module, self.pad_idx, self.max_len = bptt, module, pad_idx, max_len

    def reset(self) -> None:
        if hasattr(self.module, "reset"):
            self.module.reset()

    def forward(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = inp.size(1)
        keep_from, inside = 0, None
        if self.max_len is not None and length > self.max_len:
            keep_from, inside = text_windows(inp, self.pad_idx, self.max_len)
        self.reset()
        outputs = []
        for start in range(0, length, self.bptt):
            out = self.module(inp[:, start:start + self.bptt])
            if start + self.bptt > keep_from:
                outputs.append(out[:, max(0, keep_from - start):])
        mask = inp[:, keep_from:] == self.pad_idx
        return torch.cat(outputs, dim=1), mask if inside is None else mask | ~inside


def masked_concat_pool(output: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[last, max, mean]`` of ``output`` ``(bs, seq_len, n)`` over the positions that are not
    padding (``mask`` True); "last" is the last non-padding position, so padding may be at
    either end. A row that is all padding pools to zeros.

    >>> x = torch.tensor([[[1.], [3.], [9.]]])
    >>> masked_concat_pool(x, torch.tensor([[False, False, True]])).tolist()
    [[3.0, 3.0, 2.0]]
    """
    keep = (~mask).unsqueeze(-1).to(output.dtype)
    count = keep.sum(1).clamp(min=1)
    mean = (output * keep).sum(1) / count
    maxed = output.masked_fill(mask.unsqueeze(-1), float("-inf")).max(1).values
    maxed = torch.where(torch.isinf(maxed), torch.zeros_like(maxed), maxed)
    positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
    last_idx = torch.where(mask, torch.full_like(positions, -1), positions).max(1).values.clamp(min=0)
    last = output[torch.arange(output.size(0), device=output.device), last_idx]
    return torch.cat([last, maxed, mean], dim=1)


class PoolingLinearClassifier(nn.Module):
    """Masked concat pooling, then BatchNorm-Dropout-Linear blocks (ReLU between them).

    ``dims`` are the layer sizes (``[3 * emb_sz, *lin_ftrs, n_class]``), ``ps`` one dropout per block.

    >>> head = PoolingLinearClassifier([12, 5, 2], [0.1, 0.1])
    >>> head((torch.zeros(3, 7, 4), torch.zeros(3, 7, dtype=torch.bool))).shape
    torch.Size([3, 2])
    """

    def __init__(self, dims: Sequence[int], ps: Sequence[float], y_range: tuple[float, float] | None = None):
        super().__init__()
        if len(ps) != len(dims) - 1:
            raise ValueError(f"ps={list(ps)} has {len(ps)} dropouts for {len(dims) - 1} linear layers; give one each")
        layers: list[nn.Module] = []
        for i, (n_in, n_out, p) in enumerate(zip(dims[:-1], dims[1:], ps)):
            layers += [nn.BatchNorm1d(n_in), nn.Dropout(p), nn.Linear(n_in, n_out)]
            if i < len(ps) - 1:
                layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)
        self.last_activations: tuple[torch.Tensor, torch.Tensor] | None = None
        self.y_range = tuple(y_range) if y_range is not None else None

    def forward(self, inp: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        output, mask = inp
        self.last_activations = (output, output) if self.training else None  # for RNNRegularizer
        x = self.layers(masked_concat_pool(output, mask))
        if self.y_range is not None:
            low, high = self.y_range
            x = torch.sigmoid(x) * (high - low) + low
        return x


def get_text_classifier(arch: type | str, vocab_sz: int, n_class: int, seq_len: int = 72, config: dict | None = None,
                        drop_mult: float = 1., lin_ftrs: Sequence[int] | None = None, ps: Sequence[float] | None = None,
                        pad_idx: int = 1, max_len: int | None = 72 * 20,
                        y_range: Sequence[float] | None = None) -> SequentialRNN:
    """``SequentialRNN(SentenceEncoder(encoder), PoolingLinearClassifier)``: texts → ``n_class``
    logits. ``config`` overrides ``awd_lstm_clas_config``; ``lin_ftrs`` (default ``[50]``) the
    hidden sizes of the head, ``ps`` (default 0.1 each) their dropouts, the first being ``output_p``.

    >>> model = get_text_classifier(AWD_LSTM, 30, 2, config=dict(emb_sz=8, n_hid=8, n_layers=1))
    >>> [type(m).__name__ for m in model]
    ['SentenceEncoder', 'PoolingLinearClassifier']
    """
    arch = resolve_text_arch(arch)
    config = _config(CLAS_CONFIGS[arch], config, drop_mult)
    lin_ftrs = [50] if lin_ftrs is None else list(lin_ftrs)
    ps = [0.1] * len(lin_ftrs) if ps is None else list(ps)
    if len(ps) != len(lin_ftrs):
        raise ValueError(f"ps={ps} and lin_ftrs={lin_ftrs} should have the same length (one dropout per layer)")
    output_p = config.pop("output_p")
    encoder = SentenceEncoder(seq_len, arch(vocab_sz, **config), pad_idx=pad_idx, max_len=max_len)
    head = PoolingLinearClassifier([config["emb_sz"] * 3] + lin_ftrs + [n_class], [output_p] + ps, y_range=y_range)
    return SequentialRNN(encoder, head)


def _unique(groups: list[list[nn.Parameter]]) -> list[list[nn.Parameter]]:
    seen: set[int] = set()
    result = []
    for group in groups:
        params = []
        for p in group:
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        result.append(params)
    return result


def awd_lstm_lm_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Parameter groups of a language model: each LSTM layer, then embedding + decoder.

    >>> len(awd_lstm_lm_split(get_language_model(AWD_LSTM, 16, config=dict(emb_sz=8, n_hid=8, n_layers=2))))
    3
    """
    encoder = model[0]
    groups = [list(rnn.parameters()) + list(dp.parameters()) for rnn, dp in zip(encoder.rnns, encoder.hidden_dps)]
    groups.append(list(encoder.encoder.parameters()) + list(model[1].parameters()))
    return _unique(groups)


def awd_lstm_clas_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Parameter groups of a classifier: embedding, each LSTM layer, then the head
    (so ``freeze_to(-2)`` trains the last LSTM layer and the head).

    >>> len(awd_lstm_clas_split(get_text_classifier(AWD_LSTM, 16, 2, config=dict(emb_sz=8, n_hid=8, n_layers=2))))
    4
    """
    encoder = model[0].module
    groups = [list(encoder.encoder.parameters())]
    groups += [list(rnn.parameters()) for rnn in encoder.rnns]
    groups.append(list(model[1].parameters()))
    return _unique(groups)


# what export files may name (fastlearn.registry)
register_code("model", get_language_model)
register_code("model", get_text_classifier)
