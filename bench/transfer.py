"""Transfer-learning benchmark: the library's one-liner (``vision_learner`` + ``fine_tune`` with its
defaults) against a plain PyTorch fine-tune of the same weights, a linear probe on the frozen
body and a logistic regression on pixels, on small offline image tasks; medians over seeds.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/transfer.py [--tasks fashion10 fashion5 ...]
        [--methods one-liner plain ...] [--seeds 3] [--quick] [--merge] [--allow-dirty]
    .venv/bin/python bench/transfer.py --from-json bench/transfer_results.json   # re-render only

Writes ``bench/TRANSFER.md`` and the raw runs to ``bench/transfer_results.json`` (``--quick``: tiny
smoke sizes, written to ``bench/out/``). Every run (task x method x seed) is a fresh worker
process (this file with ``--worker``), so runs share no state, with ``OMP_WAIT_POLICY=PASSIVE``.
A full run refuses a working tree with uncommitted changes (``--allow-dirty`` runs anyway and the
page says so), since the page names the commit it measured. ``--merge`` keeps the runs of an
existing results file that this invocation does not redo (the page then lists every commit).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: no spinning threads

import argparse  # noqa: E402
import datetime  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
METHODS = ("one-liner", "plain", "linear-probe", "pixels-logreg", "constant")
SINGLE_LABEL_ONLY = ("linear-probe", "pixels-logreg")
OUTPUTS = {False: (BENCH / "TRANSFER.md", BENCH / "transfer_results.json"),
           True: (BENCH / "out" / "TRANSFER-quick.md", BENCH / "out" / "transfer_results-quick.json")}
RESULT_PREFIX = "TRANSFER_RESULT "


def applies(method: str, kind: str) -> bool:
    """The baselines on features are for single-label rows; the constant guess for the others."""
    if method in SINGLE_LABEL_ONLY:
        return kind == "single"
    return kind != "single" if method == "constant" else True


# --- one run, in a worker process -------------------------------------------------------------

def worker(spec: dict) -> dict:
    sys.path.insert(0, str(BENCH))
    import torch
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    import transfer_plain
    from transfer_tasks import ARCH, course_schedule, run_baseline, run_one_liner, score, tasks
    task, seed, method = tasks(spec["quick"])[spec["task"]], spec["seed"], spec["method"]
    load_start = os.getloadavg()
    if method == "one-liner":
        result = run_one_liner(task, seed)
    elif method == "plain":
        schedule = course_schedule(task)
        result = transfer_plain.fine_tune(task, seed, schedule, ARCH, score)
        result["schedule"] = {k: v for k, v in schedule.items() if k != "valid_files"}
    elif method == "constant":
        result = transfer_plain.constant_guess(task, course_schedule(task), score)
    else:
        result = run_baseline(task, seed, method)
    result.update(threads=torch.get_num_threads(), torch=torch.__version__,
                  device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                  loadavg=[round((a + b) / 2, 2) for a, b in zip(load_start, os.getloadavg())])
    return result


def run_in_worker(spec: dict, timeout_s: int) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-4:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["process_s"] = time.perf_counter() - started
    return result


# --- the tree and the machine -------------------------------------------------------------------

def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout


def tree_state() -> dict:
    """The commit, and the changed or untracked files (this benchmark's own outputs excepted)."""
    own = {str(p.relative_to(REPO)) for pair in OUTPUTS.values() for p in pair}
    paths = [line[3:].split(" -> ")[-1] for line in git("status", "--porcelain", "--untracked-files=all").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or "?", "dirty": [p for p in paths if p not in own]}


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1), "python": platform.python_version(),
            "omp_wait_policy": "PASSIVE"}


# --- the driver -------------------------------------------------------------------------------

def one_liner_sources() -> dict[str, str]:
    sys.path.insert(0, str(BENCH))
    from transfer_tasks import ONE_LINERS
    return {kind: "\n".join(inspect.getsource(f) for f in pair) for kind, pair in ONE_LINERS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=None, help="task names (default: all)")
    parser.add_argument("--methods", nargs="+", default=None, choices=METHODS, help="methods (default: all)")
    parser.add_argument("--seeds", type=int, default=None, help="runs per task and method, seeds 0..N-1 "
                        "(default 3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke sizes; output under bench/out/")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed for one run")
    parser.add_argument("--merge", action="store_true", help="keep the other runs of the existing results file")
    parser.add_argument("--missing", action="store_true", help="with --merge: run only the task, method and seed "
                        "combinations the results file lacks (or holds as errors)")
    parser.add_argument("--allow-dirty", action="store_true", help="run with uncommitted changes (marked on the page)")
    parser.add_argument("--out", default=None, help="the page to write (default bench/TRANSFER.md)")
    parser.add_argument("--json", default=None, help="the raw results file (default bench/transfer_results.json)")
    parser.add_argument("--from-json", default=None, help="only re-render the page from this results file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH))
    from transfer_report import render

    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    if args.from_json:
        record = json.loads(Path(args.from_json).read_text())
        out = Path(args.out) if args.out else OUTPUTS[record["quick"]][0]
        out.write_text(render(record))
        print(f"wrote {out}", file=sys.stderr)
        return 0

    from transfer_tasks import METRICS, describe_data, tasks
    all_tasks = tasks(args.quick)
    unknown = sorted(set(args.tasks or ()) - set(all_tasks))
    if unknown:
        parser.error(f"unknown task(s) {unknown}; the tasks are {list(all_tasks)}")
    chosen = [all_tasks[name] for name in (args.tasks or all_tasks)]
    methods = args.methods or list(METHODS)
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    out_page, out_json = OUTPUTS[args.quick]
    out_page, out_json = Path(args.out or out_page), Path(args.json or out_json)
    state = tree_state()
    if state["dirty"] and not args.quick and not args.allow_dirty:
        print(f"refusing to run: uncommitted changes in {', '.join(state['dirty'][:8])}; commit them so that the "
              "page names the code it measured, or pass --allow-dirty (the page will say so)", file=sys.stderr)
        return 2

    runs, kept_tasks = [], {}
    planned = {(t.name, m, s) for t in chosen for m in methods for s in seeds}
    if args.merge and out_json.exists():
        previous = json.loads(out_json.read_text())
        if args.missing:
            planned -= {(r["task"], r["method"], r["seed"]) for r in previous["runs"] if "error" not in r}
        runs = [r for r in previous["runs"] if (r["task"], r["method"], r["seed"]) not in planned]
        kept_tasks = {name: info for name, info in previous["tasks"].items() if any(r["task"] == name for r in runs)}
    record = {"quick": args.quick, "argv": sys.argv[1:], "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
              "machine": machine(), "start": state, "load_start": os.getloadavg(),
              "tasks": kept_tasks | {t.name: {"title": t.title, "kind": t.kind, "epochs": t.epochs, "size": t.size,
                                 "metric": METRICS[t.kind][0], "higher_better": METRICS[t.kind][1],
                                 "data": describe_data(t)} for t in chosen},
              "task_order": list(all_tasks),
              "one_liner_source": one_liner_sources(), "runs": runs}
    started = time.perf_counter()
    for task in chosen:
        for seed in seeds:
            for method in (m for m in METHODS if m in methods and applies(m, task.kind)):
                if (task.name, method, seed) not in planned:
                    continue  # --missing: this run is already in the results file
                spec = {"task": task.name, "method": method, "seed": seed, "quick": args.quick, "threads": args.threads}
                result = run_in_worker(spec, args.timeout)
                result.update(task=task.name, method=method, seed=seed, commit=state["commit"],
                              dirty=bool(state["dirty"]))
                record["runs"].append(result)
                shown = result.get("error") or (", ".join(f"{k} {v:.4f}" for k, v in result["scores"].items())
                                                + f" in {result['seconds']:.1f} s")
                print(f"[{time.perf_counter() - started:6.0f} s] {task.name} seed {seed} {method}: {shown}",
                      file=sys.stderr, flush=True)
                record.update(end=tree_state(), load_end=os.getloadavg(), wall_min=(time.perf_counter() - started) / 60)
                out_json.parent.mkdir(parents=True, exist_ok=True)
                out_json.write_text(json.dumps(record, indent=1))
                out_page.write_text(render(record))
    print(f"wrote {out_page} and {out_json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
