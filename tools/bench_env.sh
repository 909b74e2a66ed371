#!/usr/bin/env bash
# Build .venv-bench: a virtual environment with fastai, for the three-way benchmarks in bench/compare.
#
# It shares the main environment's torch and torchvision (and every other package there) instead of
# installing its own: a .pth file in .venv-bench appends .venv's site-packages to sys.path, after
# .venv-bench's own site-packages, so a package installed in .venv-bench wins over the main one.
# pip sees the shared packages as installed and leaves them alone. fastai goes in with --no-deps plus
# every other dependency it declares (pyyaml, scipy, scikit-learn, cloudpickle...), so that a fresh
# clone gets an importable fastai whatever the main environment happens to hold; torch and
# torchvision stay the main environment's, and spacy (for fastai.text's tokenizer only) is left out.
# The last step imports fastai.vision.all (what the benchmark uses) and fails loudly if it cannot.
# fastlearn itself is importable there too (the main environment's editable install is processed by
# site.addsitedir); bench/compare uses it in the fastai process only to build the shared models.
#
#     bash tools/bench_env.sh [MAIN_VENV] [BENCH_VENV]      # defaults: .venv .venv-bench
set -euo pipefail

MAIN=${1:-.venv}
BENCH=${2:-.venv-bench}

if [ ! -x "$MAIN/bin/python" ]; then
    echo "bench_env: $MAIN/bin/python not found; run 'make install' first" >&2
    exit 1
fi
main_abs=$(cd "$MAIN" && pwd)
base_python=$("$MAIN/bin/python" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
main_site=$("$MAIN/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# the torch the main environment imports (it may itself come from a base environment it layers on)
main_torch=$("$MAIN/bin/python" -c 'import torch; print(torch.__file__)')

test -x "$BENCH/bin/python" || "$base_python" -m venv "$BENCH"
bench_site=$("$BENCH/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# "zz" sorts last: other .pth files of .venv-bench are processed first. addsitedir appends, and runs
# the .pth files of the main environment (fastlearn's editable install).
echo "import site; site.addsitedir('$main_site')" > "$bench_site/zz_main_venv.pth"

PIP=("$BENCH/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --quiet --no-deps 'fastai>=2.8,<2.9'
# fastai's own requirement list, read from its metadata, less the ones left out on purpose
mapfile -t requirements < <("$BENCH/bin/python" - <<'EOF'
import importlib.metadata as md
import re
from packaging.requirements import Requirement
skipped = {"torch", "torchvision", "spacy"}
for text in md.requires("fastai") or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    if re.sub(r"[-_.]+", "-", req.name).lower() not in skipped:
        print(str(req))
EOF
)
echo "bench_env: installing fastai's requirements: ${requirements[*]}"
"${PIP[@]}" install --quiet "${requirements[@]}"
"${PIP[@]}" install --quiet py-spy || echo "bench_env: py-spy did not install (profiles fall back to cProfile)"

"$BENCH/bin/python" - "$main_abs" "$main_torch" <<'EOF'
import sys
import torch
import torchvision
import fastai
import fastai.vision.all  # noqa: F401  (what bench/compare imports: fails here, not in the benchmark)
main_env, main_torch = sys.argv[1], sys.argv[2]
if torch.__file__ != main_torch:
    sys.exit(f"bench_env: torch comes from {torch.__file__}, not from the main environment's {main_torch}")
print(f"bench_env: fastai {fastai.__version__} imports fastai.vision.all; torch {torch.__version__} and "
      f"torchvision {torchvision.__version__} shared with {main_env}")
EOF
