#!/usr/bin/env bash
# The test command: set-up, formatting and lint checks, then every test (unit, integration with
# real node processes over QUIC and HTTPS).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ALPR_ROOT"
scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test 2>&1
