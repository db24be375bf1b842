#!/usr/bin/env bash
# The main job on the embedded default: one node, local RocksDB, the camera simulator streaming
# the sample images, recognition, a justified search; the API stays up until Ctrl-C.
# Extra arguments go to `alpr-central demo` (e.g. --images ../shared/data/plates/scenes --exit).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ALPR_ROOT"
scripts/setup.sh
echo "building (the first build compiles RocksDB and takes a while)..."
cargo build --bin alpr-central
exec "$CARGO_TARGET_DIR/debug/alpr-central" demo "$@"
