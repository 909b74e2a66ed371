"""The Markdown page of ``bench/transfer.py`` from its results record (no torch needed, so
``--from-json`` re-renders in a moment)."""
from __future__ import annotations

import math
import statistics

LABELS = {"one-liner": "one-liner", "plain": "plain fine-tune", "linear-probe": "linear probe",
          "pixels-logreg": "pixel log-reg", "constant": "constant guess"}
ARROWS = {True: "↑ higher is better", False: "↓ lower is better"}


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value == math.inf:
        return "not reached"
    return f"{value:.{digits}f}" if abs(value) >= 0.1 or value == 0 else f"{value:.{digits + 1}f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value == math.inf:
        return "not reached"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def main_value(run: dict, info: dict) -> float | None:
    return None if "error" in run else run["scores"][info["metric"]]


def runs_of(record: dict, task: str, method: str) -> list[dict]:
    return sorted((r for r in record["runs"] if r["task"] == task and r["method"] == method), key=lambda r: r["seed"])


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def probe_target(record: dict, task: str) -> float | None:
    """The linear probe's median error on ``task``: the level "time to probe accuracy" waits for."""
    return median([r["scores"]["error"] for r in runs_of(record, task, "linear-probe") if "error" not in r])


def time_to(run: dict, target: float | None) -> float | None:
    """Seconds from the start of ``run`` to the end of the first epoch whose validation error is at
    most ``target`` (inf if none is), None without a target or a per-epoch curve."""
    if target is None or "error" in run or not run.get("curve"):
        return None
    return next((t for t, error in run["curve"] if error <= target), math.inf)


def compare(one: float | None, other: float | None, higher_better: bool) -> str:
    if one is None or other is None:
        return "—"
    gain = (one - other) if higher_better else (other - one)
    if abs(gain) < 1e-9:
        return "equal"
    return f"{'better' if gain > 0 else 'worse'} by {fmt(abs(gain))}"


def ordered_tasks(record: dict) -> list[str]:
    """The tasks that have runs, in the benchmark's order."""
    order = record.get("task_order", [])
    ran = [name for name in record["tasks"] if any(r["task"] == name for r in record["runs"])]
    return sorted(ran, key=lambda name: order.index(name) if name in order else len(order))


def results_table(record: dict) -> list[str]:
    methods = [m for m in LABELS if any(r["method"] == m for r in record["runs"])]
    lines = ["| task | seeds | metric | " + " | ".join(LABELS[m] for m in methods) + " | best | one-liner vs plain "
             "| one-liner vs linear probe |",
             "| --- | ---: | --- | " + " | ".join("---:" for _ in methods) + " | --- | --- | --- |"]
    for name in ordered_tasks(record):
        info = record["tasks"][name]
        values = {}
        cells = []
        for method in methods:
            runs = runs_of(record, name, method)
            good = [v for v in (main_value(r, info) for r in runs) if v is not None]
            values[method] = median(good)
            failed = len(runs) - len(good)
            cells.append("" if not runs else fmt(values[method]) + (f" ({failed} failed)" if failed else ""))
        ranked = [m for m in methods if values[m] is not None and m != "constant"]
        top = (max if info["higher_better"] else min)((values[m] for m in ranked), default=None)
        best = " = ".join(LABELS[m] for m in ranked if values[m] == top) or "—"
        seeds = len({r["seed"] for r in record["runs"] if r["task"] == name})
        probe = compare(values.get("one-liner"), values.get("linear-probe"), info["higher_better"]) \
            if info["kind"] == "single" else ""
        lines.append(f"| {info['title']} | {seeds} | {info['metric']} {ARROWS[info['higher_better']][0]} | "
                     + " | ".join(cells) + f" | {best} | "
                     f"{compare(values.get('one-liner'), values.get('plain'), info['higher_better'])} | {probe} |")
    return lines


def time_table(record: dict) -> list[str]:
    methods = [m for m in LABELS if m != "constant" and any(r["method"] == m for r in record["runs"])]
    lines = ["| task | " + " | ".join(f"{LABELS[m]} s" for m in methods)
             + " | one-liner s to probe accuracy | plain s to probe accuracy | optimizer steps (one-liner / plain) "
             "| batch size | median load |",
             "| --- | " + " | ".join("---:" for _ in methods) + " | ---: | ---: | ---: | ---: | ---: |"]
    for name in ordered_tasks(record):
        info = record["tasks"][name]
        target = probe_target(record, name) if info["kind"] == "single" else None
        cells = [seconds(median([r["seconds"] for r in runs_of(record, name, m) if "error" not in r])) for m in methods]
        for method in ("one-liner", "plain"):
            reached = [time_to(r, target) for r in runs_of(record, name, method)]
            reached = [t for t in reached if t is not None]
            hit = sum(t != math.inf for t in reached)
            cells.append(seconds(median(reached)) + (f" ({hit}/{len(reached)} reach it)" if 0 < hit < len(reached)
                                                     else ""))
        steps = ["/".join(sorted({str(r["steps"]) for r in runs_of(record, name, m) if "steps" in r})) or "—"
                 for m in ("one-liner", "plain")]
        mismatch = " **differ**" if "—" not in steps and steps[0] != steps[1] else ""
        batch = sorted({r["batch_size"] for r in record["runs"] if r["task"] == name and "batch_size" in r})
        loads = [r["loadavg"][0] for r in record["runs"] if r["task"] == name and "loadavg" in r]
        lines.append(f"| {info['title']} | " + " | ".join(cells) + f" | {steps[0]} / {steps[1]}{mismatch} | "
                     f"{'/'.join(map(str, batch)) or '—'} | {fmt(median(loads), 2)} |")
    return lines


def every_run(record: dict) -> list[str]:
    lines = ["| task | method | seed | result | seconds | per epoch: (s, main metric) | load | commit |",
             "| --- | --- | ---: | --- | ---: | --- | ---: | --- |"]
    for name in ordered_tasks(record):
        for method in LABELS:
            for run in runs_of(record, name, method):
                if "error" in run:
                    result, curve = f"failed: {run['error'][:160]}", ""
                else:
                    result = ", ".join(f"{k} {fmt(v)}" for k, v in run["scores"].items())
                    curve = " ".join(f"({t:.0f}, {fmt(v)})" for t, v in run.get("curve", []))
                lines.append(f"| {name} | {method} | {run['seed']} | {result} | {seconds(run.get('seconds'))} | "
                             f"{curve} | {fmt(run.get('loadavg', [None])[0], 2)} | "
                             f"{run.get('commit', '?')}{' (dirty)' if run.get('dirty') else ''} |")
    return lines


def provenance(record: dict) -> list[str]:
    start, end = record["start"], record.get("end", record["start"])
    commits = sorted({r.get("commit", "?") + (" + uncommitted changes" if r.get("dirty") else "")
                      for r in record["runs"]})
    lines = [f"- fastlearn at commit {', '.join(commits) or start['commit']}"
             + (" (runs of several invocations merged: each run's commit is in the last table)"
                if len(commits) > 1 else "")]
    if start["dirty"]:
        lines.append(f"- **the working tree had uncommitted changes when this ran** ({', '.join(start['dirty'][:8])}"
                     f"{', ...' if len(start['dirty']) > 8 else ''}): the figures may not match the commit")
    if end["commit"] != start["commit"] or end["dirty"] != start["dirty"]:
        changed = f" with uncommitted changes in {', '.join(end['dirty'][:8])}" if end["dirty"] else ""
        lines.append(f"- **the tree changed during the run** (ended at {end['commit']}{changed}): later runs "
                     "may have run other code")
    machine, runs = record["machine"], [r for r in record["runs"] if "error" not in r]
    versions = sorted({r["torch"] for r in runs if "torch" in r})
    threads = sorted({str(r["threads"]) for r in runs if "threads" in r})
    devices = sorted({r["device"] for r in runs if "device" in r})
    load_end = record.get("load_end", record["load_start"])
    busy = (" (above the core count: other processes competed for the CPU and the seconds are inflated)"
            if max(record["load_start"][0], load_end[0]) > machine["cores"] else "")
    lines += [f"- {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB memory; "
              f"device: {', '.join(devices) or '?'}",
              f"- Python {machine['python']}, torch {', '.join(versions) or '?'}, torch threads per worker "
              f"{', '.join(threads) or '?'}, `OMP_WAIT_POLICY=PASSIVE`",
              f"- load average (1, 5, 15 min) at start {tuple(round(v, 2) for v in record['load_start'])}, at end "
              f"{tuple(round(v, 2) for v in load_end)}{busy}",
              f"- {record['date']}, {record.get('wall_min', 0):.0f} min in all; `bench/transfer.py "
              f"{' '.join(record.get('argv', []))}`"]
    return lines


METHOD_NOTES = """\
- **one-liner**: the course's code for the task with the library's defaults at this commit (below),
  then `learn.fine_tune(epochs)`; scored on `learn.get_preds()` of the validation set. A callback
  that only reads the clock and the recorder is added to time the epochs.
- **plain fine-tune**: `bench/transfer_plain.py`, a hand-written PyTorch fine-tune of the same
  packaged EfficientNet-Lite0 weights on the same files and image size, with the one-liner's batch
  size and number of optimizer steps (frozen epochs from `fine_tune`'s default, then `epochs`):
  head = the network's own pool + dropout 0.2 + a new `nn.Linear` (PyTorch init), body frozen with
  BatchNorm in eval mode at lr 3e-3, then all layers at 1e-3 with cosine decay, AdamW; random flips
  (shifts for digits). Those two rates were picked among four pairs by the seed-0 validation error
  of the two small Fashion-MNIST rows, in the baseline's favour. Keypoints: `tanh` outputs, MSE. Segmentation: a small U-Net decoder written
  in that file (upsample + concatenate + conv-BN-ReLU per skip), not the library's.
- **linear probe** / **pixel log-reg**: `fastlearn.vision.baselines.linear_probe` /
  `pixel_logistic_regression` on the one-liner's loaders (training images through the validation
  transforms): multinomial logistic regression, L2 strength chosen on 20% of the training set.
- **constant guess**: no tags, the training set's mean point, all background (for scale).
- Metrics (`bench/transfer_tasks.py: score`, the same for every method): error rate;
  `accuracy_multi` at threshold 0.5; MSE of points in the [-1, 1] scale of `PointBlock`;
  foreground IoU = IoU over the whole validation set of each item class, averaged.
- Time to probe accuracy: seconds from the start of a run to the end of the first epoch whose
  validation error is at most the linear probe's median error on that task."""


def render(record: dict) -> str:
    title = "# Transfer learning: the one-liner, a plain fine-tune and two baselines"
    lines = [title + (" (quick smoke sizes)" if record["quick"] else ""), "",
             "Written by `make bench-transfer` (`bench/transfer.py`). Each figure is the median over the runs "
             "with seeds 0 to `seeds` - 1 (the seed of the weights' new layers, of the shuffling and of the "
             "augmentation); every run is its own process. Seconds are wall time of the whole run after "
             "imports (reading the images, building the model, training, scoring).", "",
             "## Machine and code", ""] + provenance(record) + ["", "## Results", ""]
    lines += results_table(record) + ["", "Seconds per run (median), and how soon the fine-tunes first reach the "
                                      "linear probe's accuracy (per-epoch validation):", ""]
    lines += time_table(record) + ["", "## The tasks", "", "| task | data | image size | `fine_tune(epochs)` |",
                                   "| --- | --- | ---: | ---: |"]
    for name in ordered_tasks(record):
        info = record["tasks"][name]
        lines.append(f"| `{name}`: {info['title']} | {info['data']} | {info['size']} | {info['epochs']} |")
    lines += ["", "## The methods", "", METHOD_NOTES, "", "The one-liners, as they ran:", ""]
    for kind, source in record.get("one_liner_source", {}).items():
        if any(record["tasks"][name]["kind"] == kind for name in ordered_tasks(record)):
            lines += ["```python", source.rstrip(), "```", ""]
    lines += ["## Every run", ""] + every_run(record) + [""]
    return "\n".join(lines)
