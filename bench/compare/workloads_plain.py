"""The benchmark workloads as a hand-written PyTorch loop: the no-overhead reference.

The same work as the libraries do with their defaults: decode each PNG as RGB, resize it, collate
uint8 batches, convert to float and normalise per batch; AdamW with betas (0.9, 0.99), eps 1e-5,
weight decay 0.01 off for biases and norm layers; one-cycle learning rates and beta1 momentum; a
validation pass after every epoch; a shuffled training loader that drops its last short batch.
"""
from __future__ import annotations

import copy

import torch
import torchvision.transforms.v2.functional as tvf
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image

from common import (ADAM_BETAS, ADAM_EPS, DIV, DIV_FINAL, IMAGENET_STATS, LITE_STATS, MOMS, TAB_CATS, TAB_CONTS,
                    TAB_LAYERS, WEIGHT_DECAY, Settings, Timer, checksum, class_names, image_files, lite0_groups,
                    lite0_model, median_pass_rate, peak_rss_mb, resnet18_model, rss_mb, tabular_frame, tabular_splits)


def load_image(path: str, size: int) -> torch.Tensor:
    return tvf.resize(decode_image(path, mode=ImageReadMode.RGB), [size, size], antialias=True)


class FolderImages(Dataset):
    """``root/split/<class>/*.png`` as (uint8 image, class index) pairs."""

    def __init__(self, root: str, split: str, size: int):
        self.files = image_files(root, split)
        index = {name: i for i, name in enumerate(class_names(root))}
        self.labels = [index[f.split("/")[-2]] for f in self.files]
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        return load_image(self.files[i], self.size), self.labels[i]


def loaders(s: Settings, size: int, workers: int | None = None) -> tuple[DataLoader, DataLoader]:
    workers = s.workers if workers is None else workers
    train = DataLoader(FolderImages(s.data, "train", size), batch_size=s.bs, shuffle=True, drop_last=True,
                       num_workers=workers, generator=torch.Generator().manual_seed(0))
    valid = DataLoader(FolderImages(s.data, "valid", size), batch_size=s.bs, num_workers=workers)
    return train, valid


def to_input(images: torch.Tensor, stats) -> torch.Tensor:
    mean = torch.tensor(stats[0]).view(1, -1, 1, 1)
    std = torch.tensor(stats[1]).view(1, -1, 1, 1)
    return (images.float().div_(255) - mean) / std


def no_decay_ids(model: nn.Module) -> set[int]:
    """Biases and the parameters of norm layers: no weight decay, as in both libraries."""
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
    ids = {id(p) for m in model.modules() if isinstance(m, norms) for p in m.parameters()}
    return ids | {id(p) for name, p in model.named_parameters() if name.endswith("bias")}


def adamw(groups: list[list[nn.Parameter]], model: nn.Module) -> torch.optim.AdamW:
    skip = no_decay_ids(model)
    torch_groups = []
    for params in groups:
        torch_groups.append({"params": [p for p in params if id(p) not in skip]})
        torch_groups.append({"params": [p for p in params if id(p) in skip], "weight_decay": 0.0})
    return torch.optim.AdamW(torch_groups, lr=1e-3, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=WEIGHT_DECAY)


def one_cycle(opt, group_lrs: list[float], total_steps: int, pct_start: float, div: float):
    """torch's OneCycleLR with fastai's shape: cosine, lr_max/div up to lr_max down to lr_max/DIV_FINAL."""
    max_lr = [lr for lr in group_lrs for _ in range(2)]  # each group is split in decay / no decay
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start, anneal_strategy="cos",
        div_factor=div, final_div_factor=DIV_FINAL / div, base_momentum=MOMS[1], max_momentum=MOMS[0])


def validate(model: nn.Module, valid: DataLoader, stats) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``valid``."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in valid:
            out = model(to_input(images, stats))
            total_loss += float(F.cross_entropy(out, labels, reduction="sum"))
            correct += int((out.argmax(1) == labels).sum())
            count += len(labels)
    return total_loss / count, correct / count


def train_epochs(model, opt, sched, train, valid, epochs: int, stats) -> tuple[float, float]:
    for _ in range(epochs):
        model.train()
        for images, labels in train:
            loss = F.cross_entropy(model(to_input(images, stats)), labels)
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        result = validate(model, valid, stats)
    return result


def fit(s: Settings) -> dict:
    train, valid = loaders(s, s.fit_size)
    model = resnet18_model()
    opt = adamw([list(model.parameters())], model)
    sched = one_cycle(opt, [s.fit_lr], s.fit_epochs * len(train), 0.25, DIV)
    start_sum, setup_rss = checksum(model), rss_mb()
    with Timer() as t:
        valid_loss, acc = train_epochs(model, opt, sched, train, valid, s.fit_epochs, IMAGENET_STATS)
    return {**t.fields(), "epoch_s": t.seconds / s.fit_epochs, "accuracy": acc, "valid_loss": valid_loss,
            "setup_rss_mb": setup_rss, "peak_rss_mb": peak_rss_mb(), "checksum": start_sum}


def loading(s: Settings) -> dict:
    """Images per second through the training loader with 0, then 2 worker processes."""
    result = {}
    for workers in s.loading_workers:
        train, _ = loaders(s, s.fit_size, workers=workers)
        rates = []
        for i in range(s.loading_passes + 1):  # the first pass warms the file cache
            with Timer() as t:
                n = sum(len(to_input(images, IMAGENET_STATS)) for images, _ in train)
            if i:
                rates.append(n / t.seconds)
        result[f"images_per_s_w{workers}"] = sorted(rates)[len(rates) // 2]
    return {**result, "images": n}


def lr_find(s: Settings, start_lr: float = 1e-7, end_lr: float = 10.0) -> dict:
    """Exponentially rising lr for ``lr_find_it`` batches, smoothed loss recorded, then the model
    and optimizer put back (what both libraries' ``lr_find`` do)."""
    train, _ = loaders(s, s.fit_size)
    model = resnet18_model()
    opt = adamw([list(model.parameters())], model)
    with Timer() as t:
        saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
        model.train()
        losses, smooth, step = [], 0.0, 0
        while step < s.lr_find_it:
            for images, labels in train:
                lr = start_lr * (end_lr / start_lr) ** (step / max(1, s.lr_find_it - 1))
                for group in opt.param_groups:
                    group["lr"] = lr
                loss = F.cross_entropy(model(to_input(images, IMAGENET_STATS)), labels)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                smooth = 0.98 * smooth + 0.02 * float(loss.detach())
                losses.append(smooth / (1 - 0.98 ** step))
                if step >= s.lr_find_it:
                    break
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)
    return {**t.fields(), "batches": len(losses)}


def fine_tune(s: Settings) -> dict:
    """One frozen epoch on the head (norm layers train too), then ``tune_epochs`` unfrozen with
    discriminative learning rates: fastai's and fastlearn's ``fine_tune`` written out."""
    train, valid = loaders(s, s.tune_size)
    model = lite0_model()
    groups = lite0_groups(model)
    norm_ids = {id(p) for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))
                for p in m.parameters()}
    opt = adamw(groups, model)
    start_sum, setup_rss = checksum(model), rss_mb()
    n = len(groups)
    with Timer() as t:
        for index, params in enumerate(groups):  # freeze: only the head and norm layers train
            for p in params:
                p.requires_grad_(index == n - 1 or id(p) in norm_ids)
        frozen_lrs = [s.tune_lr / 10] * (n - 1) + [s.tune_lr]
        sched = one_cycle(opt, frozen_lrs, len(train), 0.99, DIV)
        train_epochs(model, opt, sched, train, valid, 1, LITE_STATS)
        for p in model.parameters():
            p.requires_grad_(True)
        top = s.tune_lr / 2
        low = top / 100
        lrs = [low * (top / low) ** (i / (n - 1)) for i in range(n)]
        sched = one_cycle(opt, lrs, s.tune_epochs * len(train), 0.3, 5.0)
        valid_loss, acc = train_epochs(model, opt, sched, train, valid, s.tune_epochs, LITE_STATS)
    return {**t.fields(), "epoch_s": t.seconds / (s.tune_epochs + 1), "error_rate": 1 - acc,
            "valid_loss": valid_loss, "setup_rss_mb": setup_rss, "peak_rss_mb": peak_rss_mb(),
            "checksum": start_sum}


def predict_one(model: nn.Module, classes: list[str], file, size: int) -> str:
    """One image through the model by hand (decode, resize, normalise, forward, softmax, argmax, class
    name); call it under ``torch.no_grad()``."""
    return classes[int(model(to_input(load_image(file, size)[None], IMAGENET_STATS)).softmax(1).argmax(1))]


def inference(s: Settings) -> dict:
    model = resnet18_model().eval()
    files = image_files(s.data, "train")[:s.infer_n]
    classes = class_names(s.data)

    class Files(Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            return load_image(files[i], s.infer_size)

    with Timer() as t, torch.no_grad():
        preds = torch.cat([model(to_input(images, IMAGENET_STATS)).softmax(1)
                           for images in DataLoader(Files(), batch_size=s.bs)])
    with torch.no_grad():
        predict_per_s, labels = median_pass_rate(lambda f: predict_one(model, classes, f, s.infer_size),
                                                 files[:s.predict_n], s.predict_passes)
    return {**t.fields(), "get_preds_per_s": len(preds) / t.seconds, "predict_per_s": predict_per_s,
            "n": len(preds), "top_class_share": float(torch.bincount(preds.argmax(1)).max()) / len(preds)}


class PlainTabular(nn.Module):
    """Embeddings (width ``min(600, round(1.6 * n ** 0.56))``) and batch-normed continuous columns,
    then Linear-ReLU-BatchNorm blocks and a linear output: the libraries' default tabular model."""

    def __init__(self, cards: list[int], n_cont: int, n_out: int, layers):
        super().__init__()
        widths = [min(600, round(1.6 * n ** 0.56)) for n in cards]
        self.embeds = nn.ModuleList(nn.Embedding(n, w) for n, w in zip(cards, widths))
        self.bn_cont = nn.BatchNorm1d(n_cont)
        sizes, blocks = [sum(widths) + n_cont, *layers], []
        for n_in, n_out_ in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(n_in, n_out_, bias=False), nn.ReLU(inplace=True), nn.BatchNorm1d(n_out_)]
        self.layers = nn.Sequential(*blocks, nn.Linear(sizes[-1], n_out))

    def forward(self, x_cat, x_cont):
        embedded = torch.cat([emb(x_cat[:, i]) for i, emb in enumerate(self.embeds)], dim=1)
        return self.layers(torch.cat([embedded, self.bn_cont(x_cont)], dim=1))


def tabular(s: Settings) -> dict:
    """The table as tensors by hand (codes from the training rows' categories, 0 for unseen ones;
    continuous columns standardised with the training rows' statistics), batches by index slices
    of a shuffled permutation, the last short training batch dropped."""
    import numpy as np
    df = tabular_frame(s.tab_rows)
    train_idx, valid_idx = tabular_splits(len(df))
    with Timer() as setup:
        train_df = df.iloc[train_idx]
        codes, cards = [], []
        for name in TAB_CATS:
            mapping = {c: i + 1 for i, c in enumerate(sorted(train_df[name].unique()))}
            codes.append(df[name].map(mapping).fillna(0).to_numpy("int64"))
            cards.append(len(mapping) + 1)
        x_cat = torch.from_numpy(np.stack(codes, 1))
        cont = df[list(TAB_CONTS)].to_numpy("float32")
        mean, std = cont[train_idx].mean(0), cont[train_idx].std(0) + 1e-7
        x_cont = torch.from_numpy((cont - mean) / std)
        y = torch.from_numpy((df["label"] == "yes").to_numpy().astype("int64"))
        train = [t[:len(train_idx)] for t in (x_cat, x_cont, y)]
        valid = [t[len(train_idx):] for t in (x_cat, x_cont, y)]
    torch.manual_seed(0)
    model = PlainTabular(cards, len(TAB_CONTS), 2, TAB_LAYERS)
    opt = adamw([list(model.parameters())], model)
    n_batches = len(train_idx) // s.tab_bs
    sched = one_cycle(opt, [s.tab_lr], s.tab_epochs * n_batches, 0.25, DIV)
    gen = torch.Generator().manual_seed(0)
    with Timer() as t:
        for _ in range(s.tab_epochs):
            model.train()
            order = torch.randperm(len(train_idx), generator=gen)
            for b in range(n_batches):
                idx = order[b * s.tab_bs:(b + 1) * s.tab_bs]
                loss = F.cross_entropy(model(train[0][idx], train[1][idx]), train[2][idx])
                loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
            model.eval()
            total, correct = 0.0, 0
            with torch.no_grad():
                for start in range(0, len(valid_idx), s.tab_bs):
                    xc, xn, yb = (part[start:start + s.tab_bs] for part in valid)
                    out = model(xc, xn)
                    total += float(F.cross_entropy(out, yb, reduction="sum"))
                    correct += int((out.argmax(1) == yb).sum())
    return {**t.fields(), "epoch_s": t.seconds / s.tab_epochs, "setup_s": setup.seconds,
            "accuracy": correct / len(valid_idx), "valid_loss": total / len(valid_idx), "rows": len(df),
            "params": sum(p.numel() for p in model.parameters())}


def text_lm(s: Settings) -> dict:
    """AWD-LSTM language-model training batches (``bench/text_speed.py``'s workload)."""
    from common import text_workload
    return text_workload("plain", "lm", s)


def text_clas(s: Settings) -> dict:
    """AWD-LSTM classifier training batches (``bench/text_speed.py``'s workload)."""
    from common import text_workload
    return text_workload("plain", "clas", s)

