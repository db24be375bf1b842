#!/usr/bin/env bash
# Stops every node of the local cluster (SIGINT, then SIGKILL after 20 s). With --wipe, also
# deletes data/cluster.
set -uo pipefail
cd "$(dirname "$0")/.."
run="data/cluster"
for pidfile in "$run"/node-*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    kill -INT "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null
    rm -f "$pidfile"
done
if [ "${1:-}" = "--wipe" ]; then rm -rf "$run"; fi
echo "stop: cluster stopped"
