#!/usr/bin/env bash
# Installs what building and running alpr-central needs beyond the Rust toolchain:
# - libclang (Debian libclang-dev): the rocksdb crate runs bindgen at build time;
# - ONNX Runtime 1.31.1: the `onnxruntime` wheel from PyPI, unpacked into .runtime/ (the
#   binary loads its libonnxruntime.so at run time).
# Idempotent: a second run only checks.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ALPR_ROOT"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; then
    echo "setup: installing libclang-dev (needed by the rocksdb crate's bindgen)"
    apt_install libclang-dev
fi

ORT_LIB=".runtime/onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1"
if [ ! -f "$ORT_LIB" ]; then
    if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
        echo "setup: installing python3-pip (to fetch the onnxruntime wheel from PyPI)"
        apt_install python3-pip
    fi
    echo "setup: installing ONNX Runtime 1.31.1 (PyPI wheel onnxruntime==1.31.1) into .runtime/onnxruntime"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target .runtime/onnxruntime "onnxruntime==1.31.1"
fi
[ -f "$ORT_LIB" ] || { echo "setup: $ORT_LIB is still missing" >&2; exit 1; }
echo "setup: ready (ONNX Runtime at $ORT_LIB, cargo target dir $CARGO_TARGET_DIR)"
