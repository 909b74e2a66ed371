"""AWD-LSTM training speed, three ways: fastlearn, fastai and a plain PyTorch loop
(``bench/awd_lstm_plain.py``), on the same token ids; writes ``bench/TEXT_SPEED.md``.

    OMP_WAIT_POLICY=PASSIVE nice .venv/bin/python bench/text_speed.py [--rounds 3] [--batches 6] [--quick]

The food reviews (4,000 training, 1,000 test) are tokenized and numericalized once with
fastlearn (``bench/out/text/data.pt``), so every side trains on the same ids and vocab. Each
measurement is its own process (fastai's with ``.venv-bench/bin/python``, ``make bench-env``):

- ``lm``: language-model training batches of 32 × 48 tokens (``awd_lstm_lm_config``,
  ``drop_mult=0.3``), the seconds between one batch's end and the next, after two warm-up batches;
- ``clas``: classifier training batches of 32 reviews (``awd_lstm_clas_config``, ``drop_mult=0.5``),
  the same padded batches on every side (``clas_order``);
- ``lm_acc``: one ``fit_one_cycle`` epoch of the language model on the first ``acc_docs`` reviews,
  then next-token accuracy on the first ``acc_valid`` test reviews ("at equal accuracy"); its CPU
  seconds per batch over the whole epoch are the headline: after a few steps an AWD-LSTM's values
  drift into subnormal floats, which a CPU computes ~100x slower unless they are flushed to zero
  (fastlearn does that while training on a CPU, config ``flush_denormal``), so the first batches
  (``lm``) understate what a real epoch costs fastai and the plain loop.

Sides: fastlearn as the course writes it (``language_model_learner(...)``, and with ``.to_fp16()``,
which is bfloat16 autocast on a CPU), fastai (its ``.to_fp16()`` does nothing on a CPU), the plain
loop in float32 and in bfloat16. Runs alternate between sides, round after round, so contention
from other processes hits all alike; the tables give medians and the load average.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out" / "text"
SIDES = ("fastlearn", "fastlearn-bf16", "fastai", "plain", "plain-bf16")
BS, SEQ_LEN, LR = 32, 48, 2e-2


# --- data, made once in the main environment ---------------------------------------------------

def prepare(n_train: int = 4000, n_test: int = 1000) -> Path:
    """The food reviews as token ids (fastlearn's Tokenizer and a min_freq=3 vocab on the training texts)."""
    target = OUT / "data.pt"
    if target.is_file():
        return target
    import torch
    from fastlearn.datasets import food_reviews
    from fastlearn.text import Numericalize, Tokenizer
    from fastlearn.data import get_text_files, parent_label
    path = food_reviews(n_train=n_train, n_test=n_test)
    files = {split: sorted(get_text_files(path, folders=[split])) for split in ("train", "test")}
    tok = Tokenizer()
    tokens = {split: tok.tokenize(fs) for split, fs in files.items()}
    num = Numericalize(min_freq=3)
    num.setup(tokens["train"])
    classes = sorted({parent_label(f) for f in files["train"]})
    data = {"vocab": num.vocab, "classes": classes}
    for split in files:
        data[f"{split}_ids"] = num.encode_all(tokens[split])
        data[f"{split}_labels"] = torch.tensor([classes.index(parent_label(f)) for f in files[split]])
    OUT.mkdir(parents=True, exist_ok=True)
    torch.save(data, target)
    return target


# --- the worker: one side, one workload ---------------------------------------------------------

def timer_callback(base, cancel):
    """A callback (fastai's and fastlearn's share the API) recording wall and CPU seconds between
    training batches, stopping the fit after ``n`` of them."""
    class BatchTimer(base):
        def __init__(self, n):
            self.n, self.wall, self.cpu, self.tokens, self.last = n, [], [], [], None

        def before_train(self):
            self.last = (time.perf_counter(), time.process_time())

        def after_batch(self):
            if not self.training:
                return
            now = (time.perf_counter(), time.process_time())
            self.wall.append(now[0] - self.last[0])
            self.cpu.append(now[1] - self.last[1])
            self.tokens.append(self.learn.xb[0].numel())
            self.last = now
            if self.n and len(self.wall) >= self.n:
                raise cancel()
    return BatchTimer


def run_library(side: str, workload: str, data: dict, cfg: dict) -> dict:
    """fastlearn or fastai, written as the course writes them."""
    import torch
    if side.startswith("fastai"):
        from fastai.text.all import (AWD_LSTM, Callback, CancelFitException, CrossEntropyLossFlat, DataLoaders,
                                     LMDataLoader, Perplexity, SortedDL, accuracy, language_model_learner, pad_input,
                                     text_classifier_learner)
        from fastcore.foundation import L
        make_dls = lambda *dl: DataLoaders(*dl, device="cpu")  # noqa: E731
        lm_dl = lambda docs, shuffle: LMDataLoader(docs, bs=BS, seq_len=SEQ_LEN, shuffle=shuffle)  # noqa: E731
        sorted_dl = lambda items, shuffle: SortedDL(items, bs=BS, shuffle=shuffle, drop_last=shuffle,  # noqa: E731
                                                    before_batch=pad_input)
        clas_vocab = lambda: L([data["vocab"], data["classes"]])  # noqa: E731
    else:
        from fastlearn.callback import Callback, CancelFitException
        from fastlearn.losses import CrossEntropyLossFlat
        from fastlearn.metrics import Perplexity, accuracy
        from fastlearn.text import (AWD_LSTM, LMDataLoader, SortedDL, TextDataBunch, language_model_learner,
                                    text_classifier_learner)
        make_dls = lambda *dl: TextDataBunch(*dl, device="cpu")  # noqa: E731
        lm_dl = lambda docs, shuffle: LMDataLoader(docs, bs=BS, seq_len=SEQ_LEN, shuffle=shuffle, seed=0)  # noqa: E731
        sorted_dl = lambda items, shuffle: SortedDL(items, bs=BS, shuffle=shuffle, drop_last=shuffle, seed=0)  # noqa: E731
        clas_vocab = lambda: [data["vocab"], data["classes"]]  # noqa: E731
    timer = timer_callback(Callback, CancelFitException)(cfg["batches"] + 2 if workload != "lm_acc" else 0)
    torch.manual_seed(0)
    if workload in ("lm", "lm_acc"):
        train = data["train_ids"][:cfg["acc_docs"]] if workload == "lm_acc" else data["train_ids"]
        dls = make_dls(lm_dl(list(train), True), lm_dl(list(data["test_ids"][:cfg["acc_valid"]]), False))
        dls.vocab = data["vocab"]
        learn = language_model_learner(dls, AWD_LSTM, drop_mult=0.3, pretrained=False,
                                       metrics=[accuracy, Perplexity()], cbs=timer)
    else:
        items = lambda split: list(zip(data[f"{split}_ids"], data[f"{split}_labels"]))  # noqa: E731
        train = items("train")
        train = [train[i] for i in clas_order(data, cfg["batches"] + 2)]
        dls = make_dls(sorted_dl(train, False), sorted_dl(items("test")[:cfg["acc_valid"]], False))
        dls.vocab, dls.c = clas_vocab(), len(data["classes"])
        learn = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, pretrained=False, metrics=accuracy, cbs=timer,
                                        loss_func=CrossEntropyLossFlat())
    if side.endswith("bf16"):
        learn = learn.to_fp16()  # the course's call: bfloat16 autocast on a CPU
    start = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, LR)
    result = {"fit_s": time.perf_counter() - start, "train_s": sum(timer.wall), "wall": timer.wall[2:],
              "cpu": timer.cpu[2:], "tokens": timer.tokens[2:]}
    if workload == "lm_acc":
        with learn.no_bar():
            loss, acc = learn.validate()[:2]
        result.update(valid_loss=float(loss), accuracy=float(acc), batches=len(timer.wall))
    return result


def clas_order(data: dict, n_batches: int) -> list[int]:
    """The training reviews every side's classifier trains on, in order: ``n_batches`` batches of
    ``BS`` drawn as a shuffled ``SortedDL`` epoch draws them (the items shuffled, sorted by length
    in chunks of 50 batches, the batches shuffled), then put longest first (a stable sort, so
    fastai's unshuffled ``SortedDL``, which sorts, and fastlearn's, which keeps the order, batch
    them alike). The sides time the same padded batches: with each side's own shuffle they would
    not, and s per 1,000 padded tokens depends on the batch (its length in chunks of 72, and how
    much of it is padding)."""
    import torch
    ids = data["train_ids"]
    shuffled = torch.randperm(len(ids), generator=torch.Generator().manual_seed(0)).tolist()
    order = [i for k in range(0, len(shuffled), BS * 50)
             for i in sorted(shuffled[k:k + BS * 50], key=lambda i: -len(ids[i]))]
    chunks = [order[i:i + BS] for i in range(0, len(order) - BS + 1, BS)]
    chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=torch.Generator().manual_seed(1))]
    return sorted((i for c in chunks[:n_batches] for i in c), key=lambda i: -len(ids[i]))


def run_plain(side: str, workload: str, data: dict, cfg: dict) -> dict:
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, str(BENCH))
    from awd_lstm_plain import PlainAWDLSTM, classifier_step, lm_step, optimizer_and_schedule
    torch.manual_seed(0)
    lower = torch.bfloat16 if side.endswith("bf16") else None
    vocab_sz = len(data["vocab"])

    def lm_batches(docs, seed):
        stream = torch.cat([docs[i] for i in torch.randperm(len(docs), generator=torch.Generator().manual_seed(seed))])
        rows = (len(stream) - 1) // BS
        xs, ys = stream[:BS * rows].view(BS, rows), stream[1:BS * rows + 1].view(BS, rows)
        return [(xs[:, i:i + SEQ_LEN], ys[:, i:i + SEQ_LEN]) for i in range(0, rows - SEQ_LEN + 1, SEQ_LEN)]

    wall, cpu, tokens = [], [], []
    if workload in ("lm", "lm_acc"):
        train = lm_batches(data["train_ids"][:cfg["acc_docs"]] if workload == "lm_acc" else data["train_ids"], 0)
        train = train if workload == "lm_acc" else train[:cfg["batches"] + 2]
        model = PlainAWDLSTM(vocab_sz, drop_mult=0.3, lower=lower).train()
        opt, sched = optimizer_and_schedule(model, LR, max(len(train), 20))
        step = lambda b: lm_step(model, opt, sched, *b)  # noqa: E731
    else:
        ids, labels = data["train_ids"], data["train_labels"]
        order = clas_order(data, cfg["batches"] + 2)
        chunks = [order[i:i + BS] for i in range(0, len(order), BS)]
        train = [(torch.nn.utils.rnn.pad_sequence([ids[i] for i in c], batch_first=True, padding_value=1),
                  labels[c]) for c in chunks]
        model = PlainAWDLSTM(vocab_sz, n_class=len(data["classes"]), drop_mult=0.5, lower=lower).train()
        opt, sched = optimizer_and_schedule(model, LR, max(len(train), 20))
        step = lambda b: classifier_step(model, opt, sched, *b)  # noqa: E731
    start = time.perf_counter()
    last = (time.perf_counter(), time.process_time())
    for batch in train:
        step(batch)
        now = (time.perf_counter(), time.process_time())
        wall.append(now[0] - last[0])
        cpu.append(now[1] - last[1])
        tokens.append(batch[0].numel())
        last = now
    result = {"fit_s": time.perf_counter() - start, "train_s": sum(wall), "wall": wall[2:], "cpu": cpu[2:],
              "tokens": tokens[2:]}
    if workload == "lm_acc":
        model.eval()
        model.hidden, correct, total, losses = None, 0, 0, []
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=lower is not None):
            for x, y in lm_batches(data["test_ids"][:cfg["acc_valid"]], 0):
                logits = model(x)[0].float()
                losses.append(F.cross_entropy(logits.reshape(-1, vocab_sz), y.reshape(-1)).item())
                correct += int((logits.argmax(-1) == y).sum())
                total += y.numel()
        result.update(valid_loss=statistics.mean(losses), accuracy=correct / total, batches=len(train))
    return result


def worker(side: str, workload: str, cfg: dict) -> None:
    import torch
    torch.set_num_threads(cfg["threads"])
    data = torch.load(OUT / "data.pt", weights_only=True)
    run = run_plain if side.startswith("plain") else run_library
    result = run(side, workload, data, cfg)
    result.update(side=side, workload=workload, load=os.getloadavg()[0], threads=torch.get_num_threads())
    print("BENCH_RESULT " + json.dumps(result), flush=True)


# --- the page ------------------------------------------------------------------------------------

LABELS = {"fastlearn": "fastlearn", "fastlearn-bf16": "fastlearn `.to_fp16()`", "fastai": "fastai",
          "plain": "plain fp32", "plain-bf16": "plain bf16"}


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}g}"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.strip()


# what the measured code is: the library and the bench's own scripts (not its result pages)
CODE_PATHS = ("lib", "data_blocks", "applications", "bench/text_speed.py", "bench/awd_lstm_plain.py")


def code_state() -> dict:
    """The commit, and whether the measured code has uncommitted changes."""
    return {"commit": _git("rev-parse", "--short", "HEAD"),
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS))}


def _code_line(start: dict, end: dict) -> str:
    line = f"at commit {start['commit']}{' (with uncommitted changes)' if start['dirty'] or end['dirty'] else ''}"
    if end["commit"] != start["commit"]:
        changed = _git("diff", "--name-only", start["commit"], end["commit"], "--", *CODE_PATHS)
        line += (f" (HEAD moved to {end['commit']} during the runs, "
                 + ("with no change to the measured code" if not changed else
                    f"changing {', '.join(changed.splitlines()[:6])}") + ")")
    return line


def report(results: list[dict], sides: list[str], pythons: dict, cfg: dict, started: str, load_start, load_end,
           code: tuple[dict, dict]) -> str:
    import platform
    import torch

    def runs(side, workload):
        return [r for r in results if r["side"] == side and r["workload"] == workload]

    def median(side, workload, k):
        values = [v[k] for v in (per_unit(r, workload) for r in runs(side, workload)) if v is not None]
        return statistics.median(values) if values else None

    def acc(side, key):
        found = [r[key] for r in runs(side, "lm_acc") if key in r]
        return statistics.median(found) if found else None

    rows = [(f"language model, one epoch ({cfg['acc_docs']} reviews): CPU s per batch of 32×48 tokens",
             "lm_acc", 1),
            ("… wall s per batch", "lm_acc", 0),
            (f"language model, first {cfg['batches']} batches after 2 warm-up ones (fresh weights): CPU s per batch",
             "lm", 1),
            ("… wall s per batch", "lm", 0),
            ("classifier, ms per 1,000 padded tokens (wall)", "clas", 0),
            ("classifier, CPU ms per 1,000 padded tokens", "clas", 1)]
    head = "| | " + " | ".join(LABELS[s] for s in sides) + " | fastai ÷ fastlearn | fastai ÷ fastlearn bf16 | " \
           "fastlearn ÷ plain | fastlearn bf16 ÷ plain bf16 |"
    lines = [head, "|" + " --- |" * (len(sides) + 5)]
    for label, workload, k in rows:
        values = {side: median(side, workload, k) for side in sides}

        def ratio(a, b):
            return _fmt(values[a] / values[b], 3) if values.get(a) and values.get(b) else "—"
        lines.append(f"| {label} | " + " | ".join(_fmt(values[s]) for s in sides) + " | "
                     + " | ".join([ratio("fastai", "fastlearn"), ratio("fastai", "fastlearn-bf16"),
                                   ratio("fastlearn", "plain"), ratio("fastlearn-bf16", "plain-bf16")]) + " |")
    for label, key, digits in (("language model after one epoch on "
                                f"{cfg['acc_docs']} reviews: next-token accuracy", "accuracy", 3),
                               ("… validation loss", "valid_loss", 3),
                               ("… training batches", "batches", 3), ("… training time (no validation), s", "train_s", 3)):
        lines.append(f"| {label} | " + " | ".join(_fmt(acc(s, key), digits) for s in sides) + " |" + " |" * 4)
    every = ["| run | " + " | ".join(LABELS[s] for s in sides) + " |", "|" + " --- |" * (len(sides) + 1)]
    for label, workload, k in rows:
        cells = []
        for side in sides:
            values = [per_unit(r, workload) for r in runs(side, workload)]
            cells.append(", ".join(_fmt(v[k]) if v else "error" for v in values) or "—")
        every.append(f"| {label} | " + " | ".join(cells) + " |")
    loads = [r["load"] for r in results if "load" in r]
    errors = sorted({f"{r['side']} {r['workload']}: {r['error']}" for r in results if "error" in r})
    fastai_note = "" if pythons.get("fastai") else (
        "\n**fastai is not importable here** (`.venv-bench` missing or broken: `make bench-env`), so its "
        "column is empty; no number is shown for it.\n")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return "\n".join([
        "# Text: AWD-LSTM training speed, fastlearn against fastai and a plain PyTorch loop", "",
        f"Generated by `bench/text_speed.py` (rounds {max((r.get('round', 0) for r in results), default=0) + 1}, "
        f"{cfg['batches']} timed batches per run after 2 warm-up ones, {cfg['threads']} torch thread per process) "
        f"{_code_line(*code)}, {started}.", "",
        f"- {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, torch {torch.__version__}",
        f"- load average (1 min) at start {load_start[0]:.2f}, at end {load_end[0]:.2f}; during the runs "
        f"{min(loads, default=0):.2f}–{max(loads, default=0):.2f}: the machine is shared, so the CPU seconds "
        "(time this process ran) are the steadier measure", fastai_note,
        "## Medians", "", *lines, "",
        "Ratios above 1 in the fastai columns: fastlearn is that many times faster. `.to_fp16()` is the course's call; "
        "on a CPU fastlearn trains with bfloat16 autocast (the LSTM recurrence in bfloat16, weights and their "
        "gradients in float32), while fastai's `.to_fp16()` is a no-op without CUDA, so its column is float32.", "",
        "The epoch rows are what training costs: within ten steps an AWD-LSTM's activations and gradients "
        "drift into subnormal floats (below 1.2e-38), which a CPU computes ~100x slower than normal ones. "
        "fastlearn flushes them to zero while it trains or predicts on a CPU (config `flush_denormal`, as "
        "TensorFlow does by default); fastai and the plain loop, written as usual, do not, and their batches "
        "grow from about 2 s to 20 s. The first-batches rows, on fresh weights, show the kernels alone.", "",
        "## Every run", "", *every, "",
        *(["## Errors", "", *[f"- {e}" for e in errors], ""] if errors else []),
    ])


# --- the driver ------------------------------------------------------------------------------------

def interpreter(side: str) -> str | None:
    if not side.startswith("fastai"):
        return sys.executable
    python = REPO / ".venv-bench" / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import fastai.text.all"], capture_output=True).returncode == 0:
        return str(python)
    return None


def run_one(python: str, side: str, workload: str, cfg: dict, timeout: int) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--worker", side, workload, "--cfg", json.dumps(cfg)]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="ignore")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])}
    return json.loads(lines[-1][len("BENCH_RESULT "):])


def per_unit(result: dict, workload: str) -> tuple[float, float] | None:
    """Median wall and CPU seconds per batch (language model), per 1,000 padded tokens (classifier)."""
    if "error" in result or not result.get("wall"):
        return None
    if workload == "lm":
        return statistics.median(result["wall"]), statistics.median(result["cpu"])
    if workload == "lm_acc":  # the mean: the slow batches are the point
        return statistics.mean(result["wall"]), statistics.mean(result["cpu"])
    rates = [(w / t * 1000, c / t * 1000) for w, c, t in zip(result["wall"], result["cpu"], result["tokens"])]
    return statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("SIDE", "WORKLOAD"))
    parser.add_argument("--cfg", default="{}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--acc-docs", type=int, default=300)
    parser.add_argument("--acc-valid", type=int, default=250)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--workloads", default="lm,clas")
    parser.add_argument("--out", default=str(BENCH / "TEXT_SPEED.md"))
    parser.add_argument("--report", action="store_true", help="only rewrite the page from bench/out/text/results.json")
    args = parser.parse_args()
    cfg = {"batches": args.batches, "threads": args.threads, "acc_docs": args.acc_docs, "acc_valid": args.acc_valid}
    if args.worker:
        worker(*args.worker, {**cfg, **json.loads(args.cfg)})
        return
    sides = [s for s in args.sides.split(",") if s]
    pythons = {side: interpreter(side) for side in sides}
    if args.report:
        run = json.loads((OUT / "results.json").read_text())
        Path(args.out).write_text(report(run["results"], run["sides"], pythons, run["cfg"], run["started"],
                                         run["load_start"], run["load_end"], (run["code_start"], run["code_end"])))
        print(f"wrote {args.out}")
        return
    prepare()
    results: list[dict] = []
    started, load_start, code_start = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg(), code_state()
    workloads = args.workloads.split(",") + ([] if args.skip_accuracy else ["lm_acc"])
    for r in range(args.rounds):
        for workload in workloads:
            for side in sides if r % 2 == 0 else sides[::-1]:
                if pythons[side] is None:
                    continue
                result = run_one(pythons[side], side, workload, cfg, timeout=7200)
                results.append({**result, "side": side, "workload": workload, "round": r})
                print(side, workload, r, per_unit(result, workload),
                      {k: result[k] for k in ("accuracy", "error") if k in result}, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    run = {"results": results, "sides": sides, "cfg": cfg, "started": started, "load_start": load_start,
           "load_end": os.getloadavg(), "code_start": code_start, "code_end": code_state()}
    (OUT / "results.json").write_text(json.dumps(run))
    Path(args.out).write_text(report(results, sides, pythons, cfg, started, load_start, run["load_end"],
                                     (run["code_start"], run["code_end"])))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
