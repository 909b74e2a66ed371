"""Run every benchmark workload three ways — fastlearn, fastai, a hand-written PyTorch loop — and
write ``bench/RESULTS.md``.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/run_all.py [--quick] [--repeats 3] [--threads 1]

Each run is its own process (``bench/compare/worker.py``) with the right interpreter: this one
for fastlearn and the plain loop, ``.venv-bench/bin/python`` for fastai (``make bench-env``). The
runs alternate (fastlearn, fastai, plain, fastlearn, ...) so that contention from other processes
hits all three alike; the table gives the median of each and the ratios of the medians, with the
load average of the runs. Without ``.venv-bench`` the fastai column says so and the rest runs.
``--quick`` is a smoke run on tiny sizes that writes ``bench/out/RESULTS-quick.md`` instead.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKER = BENCH / "compare" / "worker.py"
NOTES = BENCH / "compare" / "notes.md"
LIBS = ("fastlearn", "fastai", "plain")
NOT_INSTALLED = "not installed (make bench-env)"

JPEG_SIZE = 128
# (run name, worker workload, settings changed for it)
RUNS = (
    ("fit", "fit", {}),
    ("loading", "loading", {}),
    ("loading_jpeg", "loading", {"data": "jpeg", "fit_size": JPEG_SIZE}),  # "jpeg": the JPEG copy of the data
    ("lr_find", "lr_find", {}),
    ("fine_tune", "fine_tune", {}),
    ("inference", "inference", {}),
    ("tabular", "tabular", {}),
    ("text_lm", "text_lm", {}),
    ("text_clas", "text_clas", {}),
)
TEXT_RUNS = ("text_lm", "text_clas")

FULL = dict(n_per_class=100, bs=64, fit_size=32, fit_epochs=3, fit_lr=2e-3, loading_passes=3, lr_find_it=40,
            tune_size=64, tune_epochs=1, tune_lr=2e-3, infer_size=32, infer_n=1000, predict_n=100,
            predict_passes=3, tab_rows=120_000, tab_bs=512, tab_epochs=1, tab_lr=1e-2, text_batches=4, text_docs=300)
QUICK = dict(n_per_class=20, bs=64, fit_size=32, fit_epochs=1, fit_lr=2e-3, loading_passes=1, lr_find_it=8,
             tune_size=32, tune_epochs=1, tune_lr=2e-3, infer_size=32, infer_n=200, predict_n=10,
             predict_passes=1, tab_rows=20_000, tab_bs=512, tab_epochs=1, tab_lr=1e-2, text_batches=1, text_docs=60)


def rows(cfg: dict) -> list[tuple]:
    """(label, run, how to read a value from a result, kind); kind: time (lower is better), rate
    (higher is better), memory (lower is better) or value (a result, no ratio)."""
    return [
        (f"1. fit_one_cycle, resnet18 from scratch, {cfg['fit_size']} px, {cfg['fit_epochs']} epoch{'s' if cfg['fit_epochs'] != 1 else ''}: s/epoch",
         "fit", "epoch_s", "time"),
        ("1. fit: final accuracy", "fit", "accuracy", "value"),
        ("1. fit: peak RSS, MiB", "fit", "peak_rss_mb", "memory"),
        ("1. fit: RSS added by training, MiB", "fit", lambda r: r["peak_rss_mb"] - r["setup_rss_mb"], "memory"),
        ("2. data loading, 0 workers: images/s", "loading", "images_per_s_w0", "rate"),
        ("2. data loading, 2 workers: images/s", "loading", "images_per_s_w2", "rate"),
        (f"2. data loading, {JPEG_SIZE} px JPEGs, 0 workers: images/s", "loading_jpeg", "images_per_s_w0", "rate"),
        (f"2. data loading, {JPEG_SIZE} px JPEGs, 2 workers: images/s", "loading_jpeg", "images_per_s_w2", "rate"),
        (f"3. lr_find, {cfg['lr_find_it']} batches: s", "lr_find", "seconds", "time"),
        (f"4. fine_tune({cfg['tune_epochs']}), efficientnet_lite0 pretrained, {cfg['tune_size']} px: s/epoch",
         "fine_tune", "epoch_s", "time"),
        ("4. fine_tune: error rate", "fine_tune", "error_rate", "value"),
        (f"5. get_preds, {cfg['infer_n']} images: images/s", "inference", "get_preds_per_s", "rate"),
        (f"5. predict, {cfg['predict_n']} images one by one (median of {cfg.get('predict_passes', 1)} passes): images/s",
         "inference", "predict_per_s", "rate"),
        ("5. predict ÷ the plain loop in the same process (medians of 5 alternating passes)", "inference",
         lambda r: r.get("predict_same_process_ratio"), "value"),
        (f"6. tabular, {cfg['tab_rows']:,} rows (6 categorical, 6 continuous columns), bs {cfg['tab_bs']}: s/epoch",
         "tabular", "epoch_s", "time"),
        ("6. tabular: CPU s/epoch (steadier on a shared machine)", "tabular",
         lambda r: r["cpu_seconds"] / cfg["tab_epochs"], "time"),
        ("6. tabular: set-up (procs, loaders), s", "tabular", "setup_s", "time"),
        ("6. tabular: accuracy", "tabular", "accuracy", "value"),
        (f"7. text, AWD-LSTM language model, one epoch on {cfg.get('text_docs', 300)} reviews, batches of 32×48 "
         "tokens: s/batch", "text_lm", "batch_s", "time"),
        ("7. text: language model, CPU s/batch (steadier on a shared machine)", "text_lm", "per_unit_cpu_s", "time"),
        ("7. text, AWD-LSTM classifier, batches of 32 reviews: s per 1,000 padded tokens", "text_clas",
         "per_unit_s", "time"),
        ("7. text: classifier, CPU s per 1,000 padded tokens", "text_clas", "per_unit_cpu_s", "time"),
        ("import (torch + library), s", "fit", "import_s", "time"),
    ]


def interpreters() -> dict[str, str | None]:
    bench_python = REPO / ".venv-bench" / "bin" / "python"
    fastai_python = None
    if bench_python.exists():
        check = subprocess.run([str(bench_python), "-c", "import fastai"], capture_output=True)
        fastai_python = str(bench_python) if check.returncode == 0 else None
    return {"fastlearn": sys.executable, "fastai": fastai_python, "plain": sys.executable}


def run_one(python: str, lib: str, workload: str, settings: dict, timeout_s: int) -> dict:
    cmd = [python, str(WORKER), "--lib", lib, "--workload", workload, "--settings", json.dumps(settings)]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    result = json.loads(lines[-1][len("BENCH_RESULT "):])
    result["process_s"] = time.perf_counter() - start
    return result


def value_of(result: dict, field) -> float | None:
    if "error" in result:
        return None
    value = field(result) if callable(field) else result[field]
    return None if value is None else float(value)


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=REPO).stdout.strip() or "?"


def tree_state() -> tuple[str, str]:
    """``(HEAD commit, changes)``: the full commit and ``git status --porcelain`` (tracked and
    untracked files, ignored ones left out): a page names a commit only if it was measured there."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    changes = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=REPO).stdout
    return head or "?", changes.strip("\n")


def publish_problem(before: tuple[str, str], after: tuple[str, str] | None = None) -> str | None:
    """Why a page measured between ``before`` and ``after`` must not be published as the results
    of a commit, or None.

    >>> publish_problem(("abc", ""), ("abc", ""))
    >>> publish_problem(("abc", " M lib/learner.py"))
    'the working tree has uncommitted changes ( M lib/learner.py)'
    >>> publish_problem(("abc", ""), ("def", ""))
    'HEAD moved during the run (abc → def)'
    """
    head, changes = before
    if changes:
        shown = "; ".join(changes.splitlines()[:5]) + ("; ..." if len(changes.splitlines()) > 5 else "")
        return f"the working tree has uncommitted changes ({shown})"
    if after is not None and after[0] != head:
        return f"HEAD moved during the run ({head[:12]} → {after[0][:12]})"
    if after is not None and after[1]:
        return "files changed during the run: " + "; ".join(after[1].splitlines()[:5])
    return None


def machine(results: list[dict], threads: int, load_start, load_end, date: str, commit: str) -> list[str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    by_lib = {r["lib"]: r for r in results if "error" not in r}
    torch_version = by_lib.get("fastlearn", by_lib.get("plain", {})).get("torch", "?")
    fastai_version = by_lib.get("fastai", {}).get("fastai", NOT_INSTALLED)
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB memory, no GPU used",
        f"- Python {platform.python_version()}, torch {torch_version}, fastai {fastai_version} "
        f"(same torch, shared from the main environment), fastlearn at commit {commit}",
        f"- torch intra-op threads: {threads} in every process; `OMP_WAIT_POLICY=PASSIVE`",
        f"- load average (1, 5, 15 min) at start {tuple(round(v, 2) for v in load_start)}, "
        f"at end {tuple(round(v, 2) for v in load_end)}",
        f"- {date}",
    ]


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def ratio(ours: float | None, theirs: float | None, kind: str) -> str:
    if ours is None or theirs is None or kind == "value" or not ours or not theirs:
        return ""
    return f"{(theirs / ours if kind == 'rate' else ours / theirs):.2f}"


def table(results: list[dict], cfg: dict, available: dict) -> list[str]:
    out = ["| workload | fastlearn | fastai | plain PyTorch | fastlearn ÷ fastai | fastlearn ÷ plain | load |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ran = {r["run"] for r in results}
    for label, run, field, kind in rows(cfg):
        if run not in ran:
            continue
        medians, loads = {}, []
        for lib in LIBS:
            mine = [r for r in results if r["run"] == run and r["lib"] == lib]
            values = [v for v in (value_of(r, field) for r in mine) if v is not None]
            medians[lib] = statistics.median(values) if values else None
            loads += [r["loadavg"][0] for r in mine if "loadavg" in r]
        cells = []
        for lib in LIBS:
            if available[lib] is None:
                cells.append(NOT_INSTALLED)
            elif medians[lib] is None:
                failed = any("error" in r for r in results if r["run"] == run and r["lib"] == lib)
                cells.append("failed" if failed else "")  # or a figure only one side measures
            else:
                cells.append(fmt(medians[lib]))
        load = f"{statistics.median(loads):.2f}" if loads else ""
        out.append(f"| {label} | {' | '.join(cells)} | {ratio(medians['fastlearn'], medians['fastai'], kind)} "
                   f"| {ratio(medians['fastlearn'], medians['plain'], kind)} | {load} |")
    return out


def run_details(results: list[dict], cfg: dict) -> list[str]:
    out = ["| run | fastlearn | fastai | plain PyTorch |", "| --- | --- | --- | --- |"]
    ran = {r["run"] for r in results}
    for label, run, field, kind in rows(cfg):
        if kind == "value" or run not in ran:
            continue
        cells = []
        for lib in LIBS:
            mine = [r for r in results if r["run"] == run and r["lib"] == lib]
            cells.append(", ".join("err" if "error" in r else fmt(value_of(r, field)) for r in mine))
        out.append(f"| {label} | {' | '.join(cells)} |")
    return out


def checks(results: list[dict]) -> list[str]:
    """Whether the sides really did the same work: starting weights, lr_find batches."""
    out = []
    for run, key, what in (("fit", "checksum", "resnet18 starting weights"),
                           ("fine_tune", "checksum", "EfficientNet-Lite0 starting weights (body and head)"),
                           ("lr_find", "batches", "lr_find batches"),
                           ("tabular", "params", "tabular model parameters"),
                           ("text_lm", "tokens_per_batch", "language-model tokens per batch"),
                           ("inference", "n", "images through get_preds")):
        seen = {(r["lib"], r[key]) for r in results if r["run"] == run and "error" not in r}
        if not seen:
            continue
        values = {v for _, v in seen}
        state = "the same on every side" if len(values) == 1 else f"DIFFER: {sorted(seen)}"
        out.append(f"- {what}: {state} ({', '.join(str(v) for v in sorted(values))})")
    errors = [f"- {r['lib']} {r['run']}: {r['error']}" for r in results if "error" in r]
    return out + (["", "Failed runs:"] + errors if errors else [])


def report(run: dict) -> str:
    """The Markdown page for a finished run (what ``--from-json`` re-renders)."""
    cfg, results, repeats = run["cfg"], run["results"], run["repeats"]
    available = run["available"]
    commit = (run.get("commit") or head_commit()) + (f" (**not a clean measurement: {run['unpublished']}**)"
                                                     if run.get("unpublished") else "")
    lines = ["# Benchmarks: fastlearn, fastai and a plain PyTorch loop", "",
             "Written by `make bench` (`bench/run_all.py`" + (" --quick" if run["quick"] else "") + "). "
             "Every workload runs three ways on the same data with the same settings, each run in its own "
             f"process, alternating fastlearn, fastai, plain ({repeats} run{'s' if repeats != 1 else ''} each); "
             "the figures are medians. "
             "The ratios are fastlearn's time (or memory) over the other's, throughputs inverted: "
             "**below 1 fastlearn is faster**, above 1 slower. `load` is the median 1-minute load "
             "average during the runs (2 cores: above 2, other processes competed for the CPU).", "",
             "## Machine", ""] + machine(results, run["threads"], run["load_start"], run["load_end"], run["date"],
                                             commit) + [
             "", "## Results", "",
             f"Data: Fashion-MNIST from `fastlearn.datasets.fashion_mnist(n_per_class={cfg['n_per_class']})` "
             f"({cfg['n_per_class'] * 10} training, {max(1, cfg['n_per_class'] // 4) * 10} validation 28 px PNGs), "
             f"Resize + Normalize, no augmentation, bs {cfg['bs']}, 0 loader workers unless stated. "
             f"Tabular: a seeded synthetic table (`bench/compare/common.py` `tabular_frame`), the last fifth for "
             f"validation, `[Categorify, FillMissing, Normalize]`, `tabular_learner(layers=[200, 100])`, "
             f"`fit_one_cycle({cfg['tab_epochs']}, {cfg['tab_lr']})` with validation. Text: `bench/text_speed.py`'s "
             f"AWD-LSTM workloads on the food reviews' token ids: the language model's whole first epoch on "
             f"{cfg.get('text_docs', 300)} reviews (mean batch after 2 warm-up ones: within ten steps its "
             "activations drift into subnormal floats, ~100x slower on a CPU unless flushed to zero, which "
             f"fastlearn does while training), the classifier's {cfg['text_batches']} timed batches after 2 "
             "warm-up ones (medians).", ""]
    lines += table(results, cfg, available)
    lines += ["", "Same work on every side:", ""] + checks(results)
    lines += ["", "## Every run", "", "Each cell lists the runs in the order they ran.", ""]
    lines += run_details(results, cfg)
    lines += ["", f"Wall time of the whole benchmark: {run['wall_min']:.1f} min.", ""]
    if NOTES.exists():
        lines += [NOTES.read_text().rstrip(), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each workload per side (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads in every worker")
    parser.add_argument("--only", nargs="*", default=None, choices=[r[0] for r in RUNS], help="these runs only")
    parser.add_argument("--out", default=None, help="the Markdown file to write (default bench/RESULTS.md, "
                        "with --quick bench/out/RESULTS-quick.md)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed for one run")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="change a setting of the run, e.g. --set tab_bs=64 text_batches=2")
    parser.add_argument("--from-json", default=None, help="re-render the page from a saved bench/out/results*.json "
                        "(after editing bench/compare/notes.md) without running anything")
    args = parser.parse_args()
    if args.from_json:
        run = json.loads(Path(args.from_json).read_text())
        out_path = Path(args.out) if args.out else (BENCH / "out" / "RESULTS-quick.md" if run["quick"]
                                                    else BENCH / "RESULTS.md")
        if run.get("unpublished") and out_path.resolve() == (BENCH / "RESULTS.md").resolve():
            sys.exit(f"run_all: {args.from_json} was not a clean measurement ({run['unpublished']}); "
                     "not writing bench/RESULTS.md from it")
        out_path.write_text(report(run))
        print(f"wrote {out_path}", file=sys.stderr)
        return
    cfg = dict(QUICK if args.quick else FULL)
    for change in args.set:
        key, _, value = change.partition("=")
        if key not in cfg or not value:
            sys.exit(f"run_all: --set {change!r}: expected KEY=VALUE with KEY one of {sorted(cfg)}")
        cfg[key] = type(cfg[key])(value)
    repeats = args.repeats or (1 if args.quick else 3)
    out_path = Path(args.out) if args.out else (BENCH / "out" / "RESULTS-quick.md" if args.quick
                                                else BENCH / "RESULTS.md")

    publishing = out_path.resolve() == (BENCH / "RESULTS.md").resolve()
    state_before = tree_state()
    problem = publish_problem(state_before)
    if publishing and problem:
        sys.exit(f"run_all: refusing to measure for {out_path.relative_to(REPO)}: {problem}. Commit first "
                 "(the page names the commit it was measured at), or pass --out to write a page elsewhere.")
    from fastlearn.datasets import fashion_mnist  # the driver runs in the main environment
    data = fashion_mnist(n_per_class=cfg["n_per_class"])
    settings = {k: v for k, v in cfg.items() if k != "n_per_class"}
    settings.update(data=str(data), threads=args.threads)
    available = interpreters()
    libs = [lib for lib in LIBS if available[lib] is not None]
    print(f"data {data}; sides: {', '.join(libs)}" + ("" if available["fastai"] else f"; fastai {NOT_INSTALLED}"),
          file=sys.stderr)

    load_start, started, commit = os.getloadavg(), time.perf_counter(), head_commit()
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    results: list[dict] = []
    selected = [r for r in RUNS if args.only is None or r[0] in args.only]
    if any(name in TEXT_RUNS for name, _, _ in selected):
        sys.path.insert(0, str(BENCH))
        import text_speed
        text_speed.prepare()  # the token ids every side trains on, made once with fastlearn
    sys.path.insert(0, str(BENCH / "compare"))
    from common import jpeg_copy
    for name, workload, changes in selected:
        for repeat in range(repeats):
            for lib in libs:
                if changes.get("data") == "jpeg":
                    changes = {**changes, "data": jpeg_copy(settings["data"], JPEG_SIZE)}
                result = run_one(available[lib], lib, workload, {**settings, **changes}, args.timeout)
                result.update(run=name, lib=lib, repeat=repeat)
                results.append(result)
                shown = result.get("error") or ", ".join(
                    f"{k}={fmt(result[k])}" for k in ("seconds", "epoch_s", "images_per_s_w0", "images_per_s_w2",
                                                      "get_preds_per_s", "batch_s", "per_unit_s") if k in result)
                print(f"[{time.perf_counter() - started:6.0f}s] {name} {repeat + 1}/{repeats} {lib}: {shown} "
                      f"(load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    run = {"quick": args.quick, "cfg": cfg, "settings": settings, "repeats": repeats, "threads": args.threads,
           "available": available, "commit": commit, "load_start": load_start, "load_end": os.getloadavg(),
           "date": date,
           "wall_min": (time.perf_counter() - started) / 60, "results": results}
    raw = BENCH / "out" / ("results-quick.json" if args.quick else "results.json")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(run, indent=1))
    print("\n".join(table(results, cfg, available)))
    problem = publish_problem(state_before, tree_state())
    if problem:
        run["unpublished"] = problem
        raw.write_text(json.dumps(run, indent=1))
        if publishing:
            held = BENCH / "out" / "RESULTS-unpublished.md"
            held.write_text(report(run))
            sys.exit(f"run_all: not publishing {out_path.relative_to(REPO)}: {problem}; the page is in {held} "
                     f"(raw runs: {raw}). Run again on a clean, unmoving checkout.")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(report(run))
    print(f"wrote {out_path} (raw runs: {raw})", file=sys.stderr)

if __name__ == "__main__":
    main()
