# Sourced by the project's scripts: build settings shared by every command.
# - CARGO_TARGET_DIR outside the clone, so that CI and fresh clones reuse earlier builds.
# - A prebuilt librocksdb.a from ../shared/cache when present (links in seconds instead of a
#   20-minute C++ build); without it the rocksdb crate builds RocksDB from source.
ALPR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/alpr-central/target}"
rocksdb_cache="$ALPR_ROOT/../shared/cache/librocksdb-sys-0.19.0+11.8.1-lz4"
if [ -z "${ROCKSDB_LIB_DIR:-}" ] && [ -f "$rocksdb_cache/librocksdb.a" ]; then
    export ROCKSDB_LIB_DIR="$(cd "$rocksdb_cache" && pwd)"
    export ROCKSDB_STATIC=1
fi
export ALPR_ONNXRUNTIME_LIBRARY="${ALPR_ONNXRUNTIME_LIBRARY:-$ALPR_ROOT/.runtime/onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1}"
