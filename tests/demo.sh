#!/usr/bin/env bash
# make demo: the daemon on its embedded default config (endpoints on
# 127.0.0.1:7601-7603) with a temporary state directory, a subscriber, the demo
# data set replayed through agents, the 2021 report and the alerts received.
# Everything it starts is stopped and reaped; the temp dir is removed.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-build}
TMP=$(mktemp -d /tmp/clustermon-demo.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

if "$BIN/clustermonctl" -t 300 ping > /dev/null 2>&1; then
    echo "demo: a clustermond already answers on tcp://127.0.0.1:7603; stop it first" >&2
    exit 1
fi
say "clustermond on the embedded default config (state in $TMP/state)"
"$BIN/clustermond" -S "$TMP/state" 2> "$TMP/daemon.log" &
DPID=$!
PIDS+=("$DPID")
for _ in $(seq 1 100); do
    "$BIN/clustermonctl" -t 200 ping > /dev/null 2>&1 && break
    if ! kill -0 "$DPID" 2> /dev/null; then
        echo "demo: clustermond did not start:" >&2
        cat "$TMP/daemon.log" >&2
        exit 1
    fi
    sleep 0.1
done
# the ready line, and the first line of the warning if run as root without a user
awk '/WARNING/ && !w++ || /ready in/' "$TMP/daemon.log"

timeout 50 "$BIN/clustermon-sub" --no-snapshot --timeout 20000 > "$TMP/alerts.jsonl" 2> "$TMP/sub.err" &
SUBPID=$!
PIDS+=("$SUBPID")
sleep 0.3

say "agents replay the demo data set (daemon/demo/): 2021, then 2022 month by month, then COD readings"
agent() { timeout 30 "$BIN/clustermon-agent" -s "$TMP/spool" -v "$@" 2>&1 | tail -1; }
agent -a demo-2021 daemon/demo/2021.csv || exit 1
for m in 01 02 03 04 05 06; do
    grep ",2022-$m\$" daemon/demo/2022.csv > "$TMP/2022-$m.csv"
    agent -a "demo-2022-$m" "$TMP/2022-$m.csv" || exit 1
done
agent -a demo-readings daemon/demo/readings.csv || exit 1

say "clustermonctl report --year 2021"
"$BIN/clustermonctl" report --year 2021 || exit 1

sleep 0.5
kill -TERM "$SUBPID" 2> /dev/null
wait "$SUBPID" 2> /dev/null
say "alerts received by clustermon-sub ($(wc -l < "$TMP/alerts.jsonl"))"
while IFS= read -r line; do
    printf '%s\n' "$line" | jq -r '"#\(.seq) \(.severity) \(.state | ascii_upcase) \(.id): \(.summary)"'
done < "$TMP/alerts.jsonl"
say "alerts still firing at the end (clustermonctl alerts)"
"$BIN/clustermonctl" alerts 2>/dev/null ||
    jq -s -r 'group_by(.id)[] | last | select(.state != "resolved") | "\(.severity) \(.id)"' "$TMP/alerts.jsonl"

say "stopping"
kill -TERM "$DPID"
wait "$DPID"
rc=$?
tail -2 "$TMP/daemon.log"
exit $rc
