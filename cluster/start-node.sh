#!/usr/bin/env bash
# Starts node N of the local cluster (127.0.0.N) in the background with its data in
# data/cluster/node-N, and waits until its API answers. A node that has data rejoins with it.
set -euo pipefail
cd "$(dirname "$0")/.."
i="$1"
run="data/cluster"
source scripts/env.sh
bin="$CARGO_TARGET_DIR/debug/alpr-central"
mkdir -p "$run/node-$i"
ALPR__NODE__ID="node-$i" \
ALPR__NODE__DATA_DIR="$run/node-$i" \
ALPR__API__LISTEN="127.0.0.$i:8443" \
ALPR__CAMERA__LISTEN="127.0.0.$i:4433" \
ALPR__CLUSTER__NODE_ID="$i" \
ALPR__CLUSTER__LISTEN="127.0.0.$i:7001" \
ALPR__CLUSTER__CERTS_DIR="$run/certs" \
ALPR__CLUSTER__CERT_NAME="node-$i" \
    nohup "$bin" node --config config/cluster-node.toml >>"$run/node-$i.log" 2>&1 &
echo $! > "$run/node-$i.pid"
for _ in $(seq 1 300); do
    if curl -ks -o /dev/null "https://127.0.0.$i:8443/health"; then
        echo "start-node: node $i is up (pid $(cat "$run/node-$i.pid"), log $run/node-$i.log)"
        exit 0
    fi
    if ! kill -0 "$(cat "$run/node-$i.pid")" 2>/dev/null; then
        echo "start-node: node $i exited; see $run/node-$i.log" >&2
        tail -5 "$run/node-$i.log" >&2
        exit 1
    fi
    sleep 0.2
done
echo "start-node: node $i did not answer within 60 s; see $run/node-$i.log" >&2
exit 1
