"""Run one workload of one implementation in this process and print its measurements as JSON.

    OMP_WAIT_POLICY=PASSIVE python bench/compare/worker.py --lib fastlearn --workload fit \
        --settings '{"data": "/path/to/fashion_mnist", "fit_epochs": 1}' [--profile out.prof]

``--lib`` picks ``workloads_<lib>.py`` (fastlearn, fastai or plain); the fastai one needs the
interpreter of ``.venv-bench``. The last line of stdout is ``BENCH_RESULT {json}``; everything the
libraries print comes before it. ``--profile`` runs the workload under cProfile, writes the stats
to the given file and prints the 30 functions with the most cumulative time to stderr.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: no spinning threads

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

LIBS = ("fastlearn", "fastai", "plain")
WORKLOADS = ("fit", "loading", "lr_find", "fine_tune", "inference", "tabular", "text_lm", "text_clas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", choices=LIBS, required=True)
    parser.add_argument("--workload", choices=WORKLOADS, required=True)
    parser.add_argument("--settings", default="{}", help="JSON of common.Settings fields")
    parser.add_argument("--profile", default=None, help="write cProfile stats of the workload to this file")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation notes on import
    start = time.perf_counter()
    module = importlib.import_module(f"workloads_{args.lib}")
    import_s = time.perf_counter() - start
    import torch
    from common import Settings, set_threads
    settings = Settings(**json.loads(args.settings))
    set_threads(settings.threads)
    workload = getattr(module, args.workload)
    if args.profile:
        import cProfile
        import pstats
        profiler = cProfile.Profile()
        result = profiler.runcall(workload, settings)
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    else:
        result = workload(settings)
    result.update(lib=args.lib, workload=args.workload, import_s=import_s, threads=torch.get_num_threads(),
                  torch=torch.__version__, python=platform.python_version(), loadavg=os.getloadavg())
    if args.lib == "fastai":
        import fastai
        result["fastai"] = fastai.__version__
    sys.stdout.flush()
    print("\nBENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
