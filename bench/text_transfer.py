"""Text classification on the built-in food reviews, three ways; writes ``bench/TEXT.md``.

    OMP_WAIT_POLICY=PASSIVE nice .venv/bin/python bench/text_transfer.py [--arms minilm ulmfit tfidf] [--quick]

On the food reviews (4,000 training, 1,000 test reviews, great / other), each arm in its own
process, one after the other (so their timings do not share the cores):

- ``minilm``: the pretrained all-MiniLM-L6-v2 encoder as the library's one-liner writes it,
  ``TextDataLoaders.from_folder(path, valid="test", tokenizer="all-MiniLM-L6-v2")``,
  ``text_classifier_learner(dls, "all-MiniLM-L6-v2", metrics=accuracy).to_fp16()`` and
  ``fine_tune(EPOCHS)`` with the library's defaults (every group trains from the start);
- ``ulmfit``: ULMFiT from scratch (no pretrained text weights install offline): an AWD-LSTM
  language model trained ``LM_EPOCHS`` epochs on the training reviews, its encoder in a
  classifier trained with the course's gradual unfreezing (one epoch of the head, one with the
  last two layer groups, one with the last three, two with all, each stage at a lower rate),
  ``.to_fp16()`` too. The AWD-LSTM is sized to 4,000 reviews (``ULMFIT_CONFIG``: 2 layers, 128
  wide, embeddings of 64): an epoch is about 80 steps here, and the default configuration (3
  layers, 1,152 wide) still predicted the most frequent token only after 4 epochs at ``2e-2``
  (next-token accuracy 0.065, validation loss 5.88), so a classifier on its encoder learned the
  class prior and nothing more;
- ``tfidf``: TF-IDF of words and word pairs with a logistic regression (scikit-learn), its
  regularisation chosen by 5-fold cross-validation on the training reviews.

Each arm writes ``bench/out/text_transfer/<arm>.json`` and, unless ``--quick``, its entry in
``bench/text_results.json`` (kept in the repository); the page is rewritten from that file
after each arm (``--report`` only rewrites it). The time per epoch is the training pass alone
(validation excluded), from a callback; the machine's load average is recorded beside it.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out" / "text_transfer"
RESULTS = BENCH / "text_results.json"  # every arm's latest full run, kept in the repository with the page
PAGE = BENCH / "TEXT.md"
ARMS = ("minilm", "ulmfit", "tfidf")
EPOCHS = 1                         # MiniLM: fine_tune(EPOCHS) with its defaults
LM_EPOCHS, LM_LR = 6, 2e-2         # ULMFiT: the language model, from scratch
CLAS_LR = 2e-2                     # ULMFiT: the classifier's first (frozen) epoch
ULMFIT_CONFIG = dict(emb_sz=64, n_hid=128, n_layers=2)  # awd_lstm_lm_config / _clas_config otherwise


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _data(quick: bool):
    from fastlearn.datasets import food_reviews
    return food_reviews(n_train=200, n_test=100) if quick else food_reviews()


def _epoch_timer():
    from fastlearn.callback import Callback

    class EpochTimer(Callback):
        """Seconds of each training pass (validation excluded), with its kind (``label``)."""
        order = 100

        def __init__(self):
            self.times, self.label = [], None

        def before_train(self):
            self.start = time.perf_counter()

        def after_train(self):
            label = self.label
            if label is None:  # fine_tune: frozen while the embeddings (first group) do not all train
                first = self.learn.param_groups()[0]
                label = "unfrozen" if all(p.requires_grad for p in first) else "frozen"
            self.times.append((label, time.perf_counter() - self.start))
    return EpochTimer()


_SAVE = None  # set by worker(): writes what an arm has so far, so a stopped run still reports its stages


def _checkpoint(**fields) -> None:
    if _SAVE is not None:
        _SAVE(fields)


def _history(learn) -> list:
    return [[round(float(v), 4) for v in row] for row in learn.recorder.values]


def run_minilm(quick: bool) -> dict:
    import torch
    from fastlearn.metrics import accuracy
    from fastlearn.text import TextDataLoaders, text_classifier_learner
    torch.manual_seed(0)
    path = _data(quick)
    start = time.perf_counter()
    dls = TextDataLoaders.from_folder(path, valid="test", tokenizer="all-MiniLM-L6-v2", seed=0)
    data_s = time.perf_counter() - start
    timer = _epoch_timer()
    learn = text_classifier_learner(dls, "all-MiniLM-L6-v2", metrics=accuracy, cbs=timer).to_fp16()
    start = time.perf_counter()
    with learn.no_bar():
        learn.fine_tune(1 if quick else EPOCHS)  # the defaults: no frozen epoch for a transformer
    fit_s = time.perf_counter() - start
    loss, acc = learn.validate()[:2]
    return {"arm": "minilm", "accuracy": float(acc), "valid_loss": float(loss), "fit_s": fit_s, "data_s": data_s,
            "epochs": timer.times, "history": _history(learn), "bs": dls.train.bs,
            "max_len": dls.tokenizer.max_len, "n_train": len(dls.train_ds), "n_valid": len(dls.valid_ds),
            "settings": "fine_tune(%d) defaults, to_fp16()" % (1 if quick else EPOCHS)}


def run_ulmfit(quick: bool) -> dict:
    import torch
    from fastlearn.metrics import accuracy
    from fastlearn.text import AWD_LSTM, TextDataLoaders, language_model_learner, text_classifier_learner
    torch.manual_seed(0)
    path = _data(quick)
    start = time.perf_counter()
    dls_lm = TextDataLoaders.from_folder(path, valid="test", is_lm=True, bs=64, seq_len=72, seed=0)
    dls = TextDataLoaders.from_folder(path, valid="test", text_vocab=dls_lm.vocab, bs=64, seed=0)
    data_s = time.perf_counter() - start
    timer = _epoch_timer()
    lm = language_model_learner(dls_lm, AWD_LSTM, config=ULMFIT_CONFIG, drop_mult=0.3, pretrained=False,
                                metrics=accuracy, cbs=timer, path=OUT, model_dir="models").to_fp16()
    start = time.perf_counter()
    with lm.no_bar():
        timer.label = "language model"
        lm.fit_one_cycle(1 if quick else LM_EPOCHS, LM_LR)
    lm.save_encoder("ulmfit_encoder")
    lm_acc = float(lm.recorder.values[-1][-1])
    settings = (f"AWD-LSTM {ULMFIT_CONFIG['n_layers']} layers × {ULMFIT_CONFIG['n_hid']}, embeddings "
                f"{ULMFIT_CONFIG['emb_sz']}; LM fit_one_cycle({1 if quick else LM_EPOCHS}, {LM_LR}); "
                "classifier 1 + 1 + 1 + 2 epochs, gradual unfreezing, to_fp16()")
    _checkpoint(arm="ulmfit", accuracy=None, lm_accuracy=lm_acc, fit_s=time.perf_counter() - start,
                epochs=list(timer.times), stage="language model", settings=settings, vocab=len(dls_lm.vocab))
    clas = text_classifier_learner(dls, AWD_LSTM, config=ULMFIT_CONFIG, drop_mult=0.5, pretrained=False,
                                   metrics=accuracy, cbs=timer, path=OUT, model_dir="models").to_fp16()
    clas.load_encoder("ulmfit_encoder")
    with clas.no_bar():
        timer.label = "classifier, head"
        clas.fit_one_cycle(1, CLAS_LR)
        _checkpoint(arm="ulmfit", accuracy=float(clas.recorder.values[-1][-1]), lm_accuracy=lm_acc,
                    fit_s=time.perf_counter() - start, epochs=list(timer.times), stage="classifier head epoch",
                    settings=settings, vocab=len(dls_lm.vocab), history=_history(clas))
        stages = (("classifier, last 2 groups", -2, CLAS_LR / 2, 1), ("classifier, last 3 groups", -3, CLAS_LR / 4, 1),
                  ("classifier, all", None, CLAS_LR / 20, 2))
        for label, groups, lr, epochs in stages:   # the course's rates: slice(lr / 2.6 ** 4, lr)
            timer.label = label
            clas.unfreeze() if groups is None else clas.freeze_to(groups)
            clas.fit_one_cycle(epochs, slice(lr / 2.6 ** 4, lr))
            _checkpoint(arm="ulmfit", accuracy=float(clas.recorder.values[-1][-1]), lm_accuracy=lm_acc,
                        fit_s=time.perf_counter() - start, epochs=list(timer.times), stage=label,
                        settings=settings, vocab=len(dls_lm.vocab), history=_history(clas))
    fit_s = time.perf_counter() - start
    loss, acc = clas.validate()[:2]
    return {"arm": "ulmfit", "accuracy": float(acc), "valid_loss": float(loss), "fit_s": fit_s, "data_s": data_s,
            "lm_accuracy": lm_acc, "epochs": timer.times, "history": _history(clas), "vocab": len(dls_lm.vocab),
            "settings": settings}


def run_tfidf(quick: bool) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from fastlearn.data import get_text_files, parent_label
    path = _data(quick)
    split = {s: sorted(get_text_files(path, folders=[s])) for s in ("train", "test")}
    texts = {s: [f.read_text(encoding="utf-8") for f in fs] for s, fs in split.items()}
    labels = {s: [parent_label(f) for f in fs] for s, fs in split.items()}
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    train = vectorizer.fit_transform(texts["train"])
    search = GridSearchCV(LogisticRegression(max_iter=2000), {"C": [0.3, 1, 3, 10, 30]}, cv=5)
    search.fit(train, labels["train"])
    fit_s = time.perf_counter() - start
    acc = float(search.score(vectorizer.transform(texts["test"]), labels["test"]))
    return {"arm": "tfidf", "accuracy": acc, "fit_s": fit_s, "epochs": [["fit (5-fold search of C)", fit_s]],
            "settings": f"word 1-2-grams, min_df=2, sublinear tf; C={search.best_params_['C']} by 5-fold CV"}


def worker(arm: str, quick: bool) -> None:
    import torch
    load_start = os.getloadavg()
    commit = _git("rev-parse", "--short", "HEAD")  # the code this run imports: read before it starts
    dirty = bool(_git("status", "--porcelain", "--", "lib", "data_blocks", "applications", "bench"))
    global _SAVE

    def save(result: dict, complete: bool = False) -> None:
        result = {**result, "complete": complete}
        result.update(load_start=load_start, load_end=os.getloadavg(), torch=torch.__version__, quick=quick,
                      threads=torch.get_num_threads(), commit=commit, dirty=dirty,
                      finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        try:
            import transformers
            result["transformers"] = transformers.__version__
        except ImportError:
            pass
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{arm}.json").write_text(json.dumps(result, indent=1))
        if not quick:
            kept = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
            RESULTS.write_text(json.dumps({**kept, arm: result}, indent=1) + "\n")
    _SAVE = save
    result = {"run_minilm": run_minilm, "run_ulmfit": run_ulmfit, "run_tfidf": run_tfidf}[f"run_{arm}"](quick)
    save(result, complete=True)
    print(f"{arm}: accuracy {result['accuracy']:.4f}, {result['fit_s']:.0f} s", flush=True)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _epoch_times(epochs) -> list[str]:
    """``label: seconds`` per stage, ``label: n × median`` where a stage ran several epochs."""
    stages: dict[str, list[float]] = {}
    for label, seconds in epochs:
        stages.setdefault(label, []).append(seconds)
    return [f"{label}: {times[0]:.0f}" if len(times) == 1
            else f"{label}: {len(times)} × {statistics.median(times):.0f}" for label, times in stages.items()]


NAMES = {"minilm": "all-MiniLM-L6-v2 fine-tuned (`text_classifier_learner(dls, \"all-MiniLM-L6-v2\")`)",
         "ulmfit": "ULMFiT from scratch (AWD-LSTM language model, then classifier)",
         "tfidf": "TF-IDF + logistic regression (scikit-learn)"}


def report(quick: bool = False) -> str:
    if quick:
        results = {arm: json.loads((OUT / f"{arm}.json").read_text()) for arm in ARMS
                   if (OUT / f"{arm}.json").is_file()}
    else:
        kept = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        results = {arm: kept[arm] for arm in ARMS if arm in kept}
    lines = ["# Text classification: a pretrained transformer, ULMFiT from scratch, TF-IDF", "",
             "Written by `bench/text_transfer.py` (`make bench-text-transfer`). The built-in food reviews "
             "(`fastlearn.datasets.food_reviews()`: 4,000 training and 1,000 test reviews, labelled great / "
             "other), accuracy on the 1,000 test reviews. Time per epoch is the training pass alone "
             "(validation excluded), in seconds on this machine's 2 CPU cores.", "",
             "| method | test accuracy | time per epoch (s) | total fit (s) | settings | load (1 min) start → end | commit |",
             "| --- | ---: | --- | ---: | --- | --- | --- |"]
    for arm, r in results.items():
        epochs = "; ".join(_epoch_times(r["epochs"]))
        stopped = "" if r.get("complete", True) else f" (stopped after the {r['stage']})"
        acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        lines.append(f"| {NAMES[arm]}{' (quick)' if r.get('quick') else ''}{stopped} | {acc} | {epochs} | "
                     f"{r['fit_s']:.0f} | {r['settings']} | {r['load_start'][0]:.1f} → {r['load_end'][0]:.1f} | "
                     f"{r['commit']}{' (uncommitted changes)' if r.get('dirty') else ''} |")
    lines.append("")
    if "minilm" in results and "bs" in results["minilm"]:
        r = results["minilm"]
        lines.append(f"- MiniLM: batches of {r['bs']} reviews sorted by length and padded per batch, at most "
                     f"{r['max_len']} tokens each; per-epoch history (train loss, valid loss, accuracy): "
                     f"{r['history']}.")
    if "ulmfit" in results:
        r = results["ulmfit"]
        lines.append(f"- ULMFiT: vocab {r['vocab']} tokens; language-model next-token accuracy "
                     f"{r['lm_accuracy']:.3f}; classifier history {r.get('history', [])}.")
    for arm, r in results.items():
        if r.get("source"):
            lines.append(f"- {arm}: {r['source']}.")
    if results:
        any_r = next(iter(results.values()))
        commits = list(dict.fromkeys(r["commit"] + (" + uncommitted changes" if r.get("dirty") else "")
                                     for r in results.values()))
        lines += [f"- fastlearn at commit {', '.join(commits)} (each row names its own).",
                  f"- Machine: {_cpu()}, {os.cpu_count()} cores shared with other jobs (see the load average), "
                  f"torch {any_r['torch']} with torch threads "
                  + ", ".join(f"{a} {r.get('threads', '?')}" for a, r in results.items()) + ", "
                  f"transformers {results.get('minilm', {}).get('transformers', '?')}, Python "
                  f"{platform.python_version()}; `OMP_WAIT_POLICY=PASSIVE`, run with `nice`.",
                  "- Finished: " + ", ".join(f"{a} {r['finished']}" for a, r in results.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--quick", action="store_true", help="200 / 100 reviews, one epoch: a smoke run")
    parser.add_argument("--report", action="store_true", help="only rewrite bench/TEXT.md from the results")
    parser.add_argument("--worker", choices=ARMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.quick)
        return
    page = OUT / "TEXT-quick.md" if args.quick else PAGE  # a smoke run leaves the published page alone
    page.parent.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for arm in args.arms:
            command = [sys.executable, __file__, "--worker", arm] + (["--quick"] if args.quick else [])
            subprocess.run(command, check=True)
            page.write_text(report(args.quick))
    page.write_text(report(args.quick))
    print(page.read_text())


if __name__ == "__main__":
    main()
