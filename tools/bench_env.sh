#!/usr/bin/env bash
# Build .venv-bench: a virtual environment with fastai, for the three-way benchmarks in bench/compare.
#
# It shares the main environment's torch and torchvision (and every other package there) instead of
# installing its own: a .pth file in .venv-bench appends .venv's site-packages to sys.path, after
# .venv-bench's own site-packages, so a package installed in .venv-bench wins over the main one.
# pip sees the shared packages as installed and leaves them alone. fastai goes in with --no-deps plus
# the dependencies its vision part imports (its spacy dependency is for fastai.text only).
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

test -x "$BENCH/bin/python" || "$base_python" -m venv "$BENCH"
bench_site=$("$BENCH/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# "zz" sorts last: other .pth files of .venv-bench are processed first. addsitedir appends, and runs
# the .pth files of the main environment (fastlearn's editable install).
echo "import site; site.addsitedir('$main_site')" > "$bench_site/zz_main_venv.pth"

PIP=("$BENCH/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --quiet --no-deps fastai
"${PIP[@]}" install --quiet 'fastdownload>=0.0.8,<2' 'fasttransform>=0.0.3' 'plum-dispatch<2.10' requests
"${PIP[@]}" install --quiet py-spy || echo "bench_env: py-spy did not install (profiles fall back to cProfile)"

"$BENCH/bin/python" - "$main_abs" <<'EOF'
import sys
import torch
import torchvision
import fastai
import fastai.vision.all  # noqa: F401
main_torch = sys.argv[1]
if not torch.__file__.startswith(main_torch):
    sys.exit(f"bench_env: torch comes from {torch.__file__}, not from the main environment {main_torch}")
print(f"bench_env: fastai {fastai.__version__}, torch {torch.__version__} and torchvision "
      f"{torchvision.__version__} shared with {main_torch}")
EOF
