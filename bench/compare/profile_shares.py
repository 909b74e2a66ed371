"""Where a workload's time goes: run it under cProfile in a worker and split the time into torch's
kernels, each library's own Python code and the rest.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/compare/profile_shares.py fine_tune --libs fastlearn plain \
        [--settings '{"data": "..."}'] [--top 12]

Shares are of the profiled workload's total (tottime: time spent in a function itself, not in
what it calls). Under contention absolute times move; the shares are what to read.
"""
from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FASTLEARN_DIRS = ("lib/", "data_blocks/", "applications/")


def bucket(filename: str, function: str) -> str:
    if filename == "~" and ("torch" in function or "method" in function and "Tensor" in function):
        return "torch kernels"
    if filename == "~" and any(w in function for w in ("acquire", "poll", "select", "posix.read", "wait")):
        return "waiting (locks, pipes: loader workers)"
    if filename == "~":
        return "built-ins (PIL, I/O, Python)"
    relative = os.path.relpath(filename, REPO)
    if relative.startswith(FASTLEARN_DIRS):
        return "model code" if filename.endswith("efficientnet_lite.py") else "fastlearn"
    if "/fastai/" in filename or "/fastcore/" in filename or "/fasttransform/" in filename or "/plum/" in filename:
        return "fastai (+fastcore, fasttransform, plum)"
    if "/torch/" in filename or "/torchvision/" in filename:
        return "torch Python"
    if "/bench/compare/" in filename:
        return "bench code"
    return "other Python"


def summarize(path: Path, top: int) -> str:
    stats = pstats.Stats(str(path)).stats
    total = sum(v[2] for v in stats.values())
    shares: dict[str, float] = {}
    own: list[tuple[float, str]] = []
    for (filename, line, function), (_, _, tottime, cumtime, _) in stats.items():
        kind = bucket(filename, function)
        shares[kind] = shares.get(kind, 0.0) + tottime
        if kind in ("fastlearn", "fastai (+fastcore, fasttransform, plum)", "bench code"):
            own.append((tottime, f"{Path(filename).relative_to(REPO) if filename.startswith(str(REPO)) else filename}"
                                 f":{line}({function}) tottime {tottime:.3f}s cumtime {cumtime:.3f}s"))
    lines = [f"total {total:.2f}s"] + [f"  {k:<40} {v:7.2f}s {100 * v / total:5.1f}%"
                                       for k, v in sorted(shares.items(), key=lambda kv: -kv[1])]
    builtins = sorted(((v[2], k[2]) for k, v in stats.items() if k[0] == "~"), reverse=True)[:4]
    lines += ["  built-ins with most time: " + ", ".join(f"{name} {t:.2f}s" for t, name in builtins)]
    lines += ["  library functions with most own time:"] + [f"    {text}" for _, text in sorted(own, reverse=True)[:top]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload")
    parser.add_argument("--libs", nargs="+", default=["fastlearn", "fastai", "plain"])
    parser.add_argument("--settings", default=None, help="JSON settings (default: the small quick data)")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    if args.settings is None:
        from fastlearn.datasets import fashion_mnist
        args.settings = json.dumps({"data": str(fashion_mnist(n_per_class=20))})
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    for lib in args.libs:
        python = str(REPO / ".venv-bench" / "bin" / "python") if lib == "fastai" else sys.executable
        prof = out / f"{args.workload}_{lib}.prof"
        proc = subprocess.run([python, str(HERE / "worker.py"), "--lib", lib, "--workload", args.workload,
                               "--settings", args.settings, "--profile", str(prof)], capture_output=True, text=True,
                              env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
        if proc.returncode:
            print(f"== {lib}: failed\n{proc.stderr[-2000:]}")
            continue
        print(f"== {lib} {args.workload} (load {os.getloadavg()[0]:.2f})\n{summarize(prof, args.top)}")


if __name__ == "__main__":
    main()
