#!/usr/bin/env bash
# Starts a local cluster of N real node processes on 127.0.0.1..127.0.0.N (default 3) and creates
# it with `alpr-central cluster init`. Everything lives in data/cluster/ (certificates, one data
# directory and log per node, pid files). Stop it with cluster/stop.sh; add a node with
# cluster/start-node.sh N and `alpr-central cluster join` (see cluster/RUNBOOKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
nodes="${1:-3}"
shards="${SHARDS:-16}"
run="data/cluster"
source scripts/env.sh
cargo build --quiet --bin alpr-central
bin="$CARGO_TARGET_DIR/debug/alpr-central"
if [ -e "$run/node-1" ]; then
    echo "launch: $run already holds a cluster; run cluster/stop.sh --wipe first" >&2
    exit 1
fi
mkdir -p "$run"
specs=()
for i in $(seq 1 5); do specs+=(--node "node-$i=127.0.0.$i"); done
"$bin" cluster certs --dir "$run/certs" "${specs[@]}" >/dev/null
members=""
for i in $(seq 1 "$nodes"); do
    cluster/start-node.sh "$i"
    members="${members:+$members,}$i=127.0.0.$i:7001"
done
echo "launch: creating the cluster ($nodes nodes, $shards shards)"
"$bin" cluster init --certs "$run/certs" --via 127.0.0.1:7001 --members "$members" --shards "$shards"
cat "$run"/node-*/tls/node-cert.pem > "$run/camera-trust.pem"
# Wait (up to 20 s) until every group reports all its replicas caught up, then show the status.
want=$(( nodes < 3 ? nodes : 3 ))
for _ in $(seq 1 40); do
    status="$("$bin" cluster status --certs "$run/certs" --via 127.0.0.1:7001)"
    if ! grep -q 'lag [1-9]' <<<"$status" && awk -v want="$want" '
        /^(meta|audit|shard-)/ { n = gsub(/\(lag /, "&"); if (n < want) bad = 1 }
        END { exit bad }' <<<"$status"; then
        break
    fi
    sleep 0.5
done
echo "$status"
echo "launch: cameras: alpr-central camera --server-cert $run/camera-trust.pem $(for i in $(seq 1 "$nodes"); do printf -- '--server 127.0.0.%s:4433 ' "$i"; done)..."
