#!/usr/bin/env bash
# make bench: figures as ratios against a baseline measured in the same run
# (the machine is shared and noisy: absolute numbers mean little).
#  1. decoding: proto_batch_decode vs msgpack-c's msgpack_unpack (bench_proto)
#  2. ingest: clustermon-agent -> clustermond vs the same agent -> nullsink
#     (a ROUTER that only decodes and acks), 200,000+ samples, best of 3.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-build}
TMP=$(mktemp -d /tmp/clustermon-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "== decode (1000-sample batches)"
"$BIN/bench_proto"

echo
echo "== ingest: agent -> daemon vs agent -> nullsink"
cut -d, -f1 daemon/demo/registry.csv | tail -n +2 > "$TMP/firms"
awk '{ f[NR] = $1 } END { for (y = 2100; y < 2170; y++) for (m = 1; m <= 12; m++)
       for (i = 1; i <= NR; i++) printf "%s,revenue,%d.5,%d-%02d\n", f[i], i * 1000 + m, y, m }' \
    "$TMP/firms" > "$TMP/load.csv"
rows=$(wc -l < "$TMP/load.csv")
batches=$(( (rows + 999) / 1000 ))
sed -e "s|^ingest = .*|ingest = ipc://$TMP/ingest|" -e "s|^alerts = .*|alerts = ipc://$TMP/alerts|" \
    -e "s|^control = .*|control = ipc://$TMP/control|" -e "s|^state_dir = .*|state_dir = $TMP/state|" \
    -e "s|^registry = .*|registry = $PWD/daemon/demo/registry.csv|" daemon/clustermond.conf > "$TMP/b.conf"

now() { date +%s.%N; }
run_agent() { # ENDPOINT -> seconds (a fresh spool each run: a spool resumes a file it finished)
    local t0 t1
    rm -rf "$TMP/spool"
    t0=$(now)
    timeout 120 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$1" -a bench -b 1000 "$TMP/load.csv" || return 1
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
best() { printf '%s\n' "$@" | sort -g | head -1; }

dtimes=() ntimes=()
for round in 1 2 3; do
    "$BIN/tests/tools/nullsink" "ipc://$TMP/null$round" "$batches" &
    PIDS+=($!)
    ntimes+=("$(run_agent "ipc://$TMP/null$round")")
    "$BIN/clustermond" -c "$TMP/b.conf" -l warn &
    dpid=$!
    PIDS+=($dpid)
    for _ in $(seq 1 100); do "$BIN/clustermonctl" -e "ipc://$TMP/control" -t 200 ping >/dev/null 2>&1 && break; sleep 0.05; done
    dtimes+=("$(run_agent "ipc://$TMP/ingest")")
    kill -TERM $dpid; wait $dpid
done
dn=$(best "${ntimes[@]}")
dd=$(best "${dtimes[@]}")
printf 'samples: %d in %d batches of 1000\n' "$rows" "$batches"
printf 'nullsink (baseline): %.3f s  %8.0f samples/s\n' "$dn" "$(echo "$rows / $dn" | bc -l)"
printf 'clustermond:         %.3f s  %8.0f samples/s\n' "$dd" "$(echo "$rows / $dd" | bc -l)"
printf 'ratio daemon/baseline throughput: %.2f\n' "$(echo "$dn / $dd" | bc -l)"

echo
echo "== restart: time to ready with a WAL of 1,000,000+ samples vs an empty state dir"
awk '{ f[NR] = $1 } END { for (y = 2000; y < 2200; y++) for (m = 1; m <= 12; m++)
       for (i = 1; i <= NR; i++) { printf "%s,energy,%d,%d-%02d\n", f[i], i + m, y, m;
                                   printf "%s,profit,%d,%d-%02d\n", f[i], i * m, y, m } }' \
    "$TMP/firms" > "$TMP/wal.csv"
wrows=$(wc -l < "$TMP/wal.csv")
sed -i -e "s|^state_dir = .*|state_dir = $TMP/walstate|" -e "s|^\[daemon\]|[daemon]\nsnapshot_interval_s = 1000000\nsnapshot_wal_mb = 100000|" "$TMP/b.conf"
ready_ms() { # starts the daemon, prints its recovery figures, stops it
    "$BIN/clustermond" -c "$TMP/b.conf" -l warn &
    local pid=$!
    for _ in $(seq 1 200); do "$BIN/clustermonctl" -e "ipc://$TMP/control" -t 200 ping >/dev/null 2>&1 && break; sleep 0.05; done
    "$BIN/clustermonctl" -e "ipc://$TMP/control" status --json | jq -r '"\(.recovery.ready_ms) \(.recovery.wal_records) \(.samples_applied)"'
    kill -TERM $pid; wait $pid
}
read -r empty_ms _ _ < <(ready_ms)
"$BIN/clustermond" -c "$TMP/b.conf" -l warn &
pid=$!
for _ in $(seq 1 100); do "$BIN/clustermonctl" -e "ipc://$TMP/control" -t 200 ping >/dev/null 2>&1 && break; sleep 0.05; done
timeout 300 "$BIN/clustermon-agent" -s "$TMP/spool" -e "ipc://$TMP/ingest" -a walbench -b 1000 "$TMP/wal.csv" || echo "agent failed"
kill -TERM $pid; wait $pid
best_ms=
for round in 1 2 3; do
    read -r ms recs samples < <(ready_ms)
    [ -z "$best_ms" ] || [ "$ms" -lt "$best_ms" ] && best_ms=$ms
done
printf 'WAL: %d samples in %d records (%s)\n' "$samples" "$recs" "$(du -sh "$TMP/walstate" | cut -f1)"
printf 'ready after replaying it: %d ms (best of 3; goal < 2000 ms)\n' "$best_ms"
printf 'ready on an empty state dir (baseline): %d ms\n' "$empty_ms"
