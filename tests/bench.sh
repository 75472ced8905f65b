#!/usr/bin/env bash
# make bench: figures as ratios against a baseline measured in the same run
# (the machine is shared and noisy: absolute numbers mean little).
#  1. decoding: proto_batch_decode vs msgpack-c's msgpack_unpack (bench_proto)
#  2. ingest: clustermon-agent -> clustermond vs the same agent -> nullsink
#     (a ROUTER that only decodes and acks), 200,000+ samples, best of 3.
#  3. CURVE: the same load over tcp://127.0.0.1 to a daemon with CURVE and a
#     gateway key bound to every firm (per-sample authorisation) vs plain TCP.
#  4. window: clustermon-agent -w 16 vs the default stop and wait (-w 1), in
#     batches of 100, to the daemon: what keeping batches in flight buys.
#  5. restart: time to ready after replaying a 1,000,000+ sample WAL.
# lib.sh: the temp dir, children reaped on exit, and TCP ports (free_ports,
# retry_bind)
SUITE=bench
source "$(dirname "$0")/lib.sh"

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
    -e "s|^registry = .*|registry = $PWD/daemon/demo/registry.csv|" \
    -e "s|^rate_per_connection = .*|rate_per_connection = 0|" -e "s|^rate_global = .*|rate_global = 0|" \
    -e "s|^future_slack_days = .*|future_slack_days = 100000|" \
    daemon/clustermond.conf > "$TMP/b.conf"

now() { date +%s.%N; }
run_agent() { # ENDPOINT [AGENT OPTION...] -> seconds (a fresh spool each run: a spool resumes a file it finished)
    local t0 t1 ep=$1
    shift
    rm -rf "$TMP/spool"
    t0=$(now)
    # a fresh stream each run: a new agent id, or the daemon would take the
    # second run for a second agent on the first one's id (agent_conflict)
    timeout 120 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$ep" -a "ee-001.bench-$SRANDOM" -b 1000 "$@" \
        "$TMP/load.csv" || return 1
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
best() { printf '%s\n' "$@" | sort -g | head -1; }

dtimes=() ntimes=()
for round in 1 2 3; do
    "$BIN/tests/tools/nullsink" "ipc://$TMP/null$round" "$batches" &
    PIDS+=($!)
    ntimes+=("$(run_agent "ipc://$TMP/null$round")")
    "$BIN/clustermond" -c "$TMP/b.conf" -l warn 2>> "$TMP/daemon.log" &
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
echo "== CURVE: agent -> daemon over tcp://127.0.0.1, CURVE + per-sample key check vs plain"
mkdir -p "$TMP/keys"
for k in server gw; do "$BIN/clustermonctl" keygen "$k" -o "$TMP/keys" > /dev/null; done
gw=$(sed -n 's/^public = //p' "$TMP/keys/gw.pub")
# one gateway key on every firm's row: the check is a binary search per sample
awk -F, -v k="$gw" 'NR == 1 { print $0 ",key"; next } { print $0 "," k }' daemon/demo/registry.csv \
    > "$TMP/keyed.csv"
tcp_conf() { # FILE [extra daemon line]: on three ports picked now (lib.sh)
    local ports
    ports=($(free_ports 3))
    port=${ports[0]}
    sed -e "s|^ingest = .*|ingest = tcp://127.0.0.1:$port|" -e "s|^control = .*|control = tcp://127.0.0.1:${ports[2]}|" \
        -e "s|^alerts = .*|alerts = tcp://127.0.0.1:${ports[1]}|" -e "s|^state_dir = .*|state_dir = $TMP/tcpstate|" \
        -e "s|^registry = .*|registry = $TMP/keyed.csv|" "$TMP/b.conf" > "$1"
    [ -n "${2:-}" ] && sed -i "s|^\[daemon\]|[daemon]\n$2|" "$1"
    return 0
}
# tcp_start EXTRA: a daemon on fresh ports, until ingest listens; fails if
# it exits first (retry_bind picks new ports if a port was taken).
tcp_start() {
    tcp_conf "$TMP/tcp.conf" "$1"
    rm -rf "$TMP/tcpstate"
    "$BIN/clustermond" -c "$TMP/tcp.conf" -l warn 2>> "$TMP/daemon.log" &
    tpid=$!
    PIDS+=($tpid)
    for _ in $(seq 1 100); do # until ingest listens
        (exec 3<> "/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 $tpid 2> /dev/null || { wait $tpid; return 1; }
        sleep 0.05
    done
    return 1
}
tcp_round() { # EXTRA [AGENT OPTION...] -> seconds
    local extra=$1
    shift
    retry_bind "$TMP/daemon.log" tcp_start "$extra" || { echo "daemon did not start" >&2; return 1; }
    run_agent "tcp://127.0.0.1:$port" "$@"
    kill -TERM $tpid; wait $tpid
}
KEYS=(--server-key "$TMP/keys/server.pub" --key "$TMP/keys/gw.key")
ptimes=() ctimes=()
for round in 1 2 3; do
    ptimes+=("$(tcp_round "")")
    ctimes+=("$(tcp_round "curve_secret_key = $TMP/keys/server.key" "${KEYS[@]}")")
done
tp=$(best "${ptimes[@]}")
tc=$(best "${ctimes[@]}")
printf 'plain TCP (baseline): %.3f s  %8.0f samples/s\n' "$tp" "$(echo "$rows / $tp" | bc -l)"
printf 'CURVE + key check:    %.3f s  %8.0f samples/s\n' "$tc" "$(echo "$rows / $tc" | bc -l)"
printf 'ratio CURVE/plain throughput: %.2f\n' "$(echo "$tp / $tc" | bc -l)"

echo
echo "== window: batches of 100, -w 16 vs stop and wait (-w 1), agent -> daemon over ipc"
"$BIN/clustermond" -c "$TMP/b.conf" -l warn 2>> "$TMP/daemon.log" &
dpid=$!
PIDS+=($dpid)
for _ in $(seq 1 100); do "$BIN/clustermonctl" -e "ipc://$TMP/control" -t 200 ping >/dev/null 2>&1 && break; sleep 0.05; done
w1=() w16=()
for round in 1 2 3; do
    w1+=("$(run_agent "ipc://$TMP/ingest" -b 100 -w 1)")
    w16+=("$(run_agent "ipc://$TMP/ingest" -b 100 -w 16)")
done
kill -TERM $dpid; wait $dpid
t1=$(best "${w1[@]}")
t16=$(best "${w16[@]}")
printf 'stop and wait (baseline): %.3f s  %8.0f samples/s\n' "$t1" "$(echo "$rows / $t1" | bc -l)"
printf 'window of 16:             %.3f s  %8.0f samples/s\n' "$t16" "$(echo "$rows / $t16" | bc -l)"
printf 'ratio window/stop-and-wait throughput: %.2f\n' "$(echo "$t1 / $t16" | bc -l)"

echo
echo "== restart: time to ready with a WAL of 1,000,000+ samples vs an empty state dir"
awk '{ f[NR] = $1 } END { for (y = 2000; y < 2200; y++) for (m = 1; m <= 12; m++)
       for (i = 1; i <= NR; i++) { printf "%s,energy,%d,%d-%02d\n", f[i], i + m, y, m;
                                   printf "%s,profit,%d,%d-%02d\n", f[i], i * m, y, m } }' \
    "$TMP/firms" > "$TMP/wal.csv"
wrows=$(wc -l < "$TMP/wal.csv")
sed -i -e "s|^state_dir = .*|state_dir = $TMP/walstate|" -e "s|^snapshot_interval_s = .*|snapshot_interval_s = 1000000|" \
    -e "s|^snapshot_wal_mb = .*|snapshot_wal_mb = 100000|" "$TMP/b.conf"
ready_ms() { # starts the daemon, prints its recovery figures, stops it
    "$BIN/clustermond" -c "$TMP/b.conf" -l warn 2>> "$TMP/daemon.log" &
    local pid=$!
    for _ in $(seq 1 200); do "$BIN/clustermonctl" -e "ipc://$TMP/control" -t 200 ping >/dev/null 2>&1 && break; sleep 0.05; done
    "$BIN/clustermonctl" -e "ipc://$TMP/control" status --json | jq -r '"\(.recovery.ready_ms) \(.recovery.wal_records) \(.samples_applied)"'
    kill -TERM $pid; wait $pid
}
read -r empty_ms _ _ < <(ready_ms)
"$BIN/clustermond" -c "$TMP/b.conf" -l warn 2>> "$TMP/daemon.log" &
pid=$!
for _ in $(seq 1 100); do "$BIN/clustermonctl" -e "ipc://$TMP/control" -t 200 ping >/dev/null 2>&1 && break; sleep 0.05; done
timeout 300 "$BIN/clustermon-agent" -s "$TMP/spool" -e "ipc://$TMP/ingest" -a "walbench-$SRANDOM" -b 1000 "$TMP/wal.csv" || echo "agent failed"
kill -TERM $pid; wait $pid
best_ms=
for round in 1 2 3; do
    read -r ms recs samples < <(ready_ms)
    [ -z "$best_ms" ] || [ "$ms" -lt "$best_ms" ] && best_ms=$ms
done
printf 'WAL: %d samples in %d records (%s)\n' "$samples" "$recs" "$(du -sh "$TMP/walstate" | cut -f1)"
printf 'ready after replaying it: %d ms (best of 3; goal < 2000 ms)\n' "$best_ms"
printf 'ready on an empty state dir (baseline): %d ms\n' "$empty_ms"
