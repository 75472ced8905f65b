#!/usr/bin/env bash
# Prometheus remote-write from the WAL (README "Long-term history in
# Prometheus"), against a real Prometheus (Debian's 2.42, its remote-write
# receiver on, out_of_order_time_window 10y so 2021's months are taken):
#  1. the daemon with [remote_write] sends 2021's demo figures;
#  2. Prometheus is stopped; 2022's figures, the COD readings and
#     restatements (20 firm-months of 2021 sent again with new values) arrive
#     meanwhile; the forwarder retries (counted) and loses nothing;
#     the daemon is SIGKILLed and restarted meanwhile;
#  3. Prometheus is started again on the same TSDB; the daemon is SIGKILLed
#     again early in the catch-up; the forwarder catches up (lag 0, nothing
#     pending, nothing refused: what is sent twice is identical);
#  4. per cluster and month of 2021 and 2022, revenue and profit summed in
#     Prometheus (at each month's start + 1 min: the latest statement) equal
#     the daemon's `series` figures to the milli-yuan, restated months
#     included; the COD readings are all there, once;
#  5. the daemon restarted: nothing is sent twice (samples_sent 0 after);
#  6. the cursor of the end of 2021 put back (a lost commit at its largest):
#     everything after is sent again, taken as identical duplicates, and the
#     copy still equals the figures.
#
#   BIN=build bash tests/remotewrite_e2e.sh        (part of make check)
SUITE=remotewrite
source "$(dirname "$0")/lib.sh"

if ! command -v prometheus > /dev/null; then
    echo "SKIP - prometheus is not installed (Debian package prometheus)"
    exit 0
fi

ports=($(free_ports 2))
PPORT=${ports[0]}
HPORT=${ports[1]}
PROM=http://127.0.0.1:$PPORT
cat > "$TMP/prom.yml" <<'EOT'
global:
  scrape_interval: 1m
storage:
  tsdb:
    out_of_order_time_window: 10y
EOT
# start_prom: Prometheus on PPORT with the receiver on; waits (bounded) for /-/ready
start_prom() {
    prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/tsdb" \
        --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$PPORT" \
        --web.enable-remote-write-receiver --log.level=warn >> "$TMP/prom.log" 2>&1 &
    PROM_PID=$!
    PIDS+=($!)
    wait_for 30 curl -sf "$PROM/-/ready"
}
check "prometheus starts with its remote-write receiver" start_prom
check "  it is 2.42 or later (out_of_order_time_window)" \
    sh -c "prometheus --version 2>&1 | head -1 | grep -Eq 'version 2\.(4[2-9]|[5-9][0-9])|version [3-9]\.'"

make_config "$TMP/d.conf" "http=127.0.0.1:$HPORT"
cat >> "$TMP/d.conf" <<EOT

[remote_write]
url = http://127.0.0.1:$PPORT/api/v1/write
metrics = revenue, profit, cod
batch_size = 200
timeout_ms = 2000
EOT
check "clustermond -n takes [remote_write]" "$BIN/clustermond" -n -c "$TMP/d.conf"
check "the daemon starts" start_daemon "$TMP/d.conf"
metric() { curl -sf "http://127.0.0.1:$HPORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
caught_up() { [ "$(metric clustermon_remote_write_pending_samples)" = 0 ] &&
              [ "$(metric clustermon_remote_write_lag_seconds)" = 0 ]; }
AG() { "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" "$@" > /dev/null 2>> "$TMP/agent.log"; }

# ---- 1. 2021 -------------------------------------------------------------------------
# A first start snapshots the firms' first-seen times at its first tick; taken
# before any data it leaves the WAL alone, taken after 2021 it would close
# segment 1 there and step 6's cursor would point into a segment the forwarder
# has since released (the daemon rightly refuses that cursor). Wait for it.
check "  the first start's snapshot is written before any data" \
    wait_for 10 sh -c "ls '$STATE'/snap-*.snap > /dev/null 2>&1"
AG -a demo-2021 daemon/demo/2021.csv
check "2021's revenue and profit are sent (5832 samples)" wait_for 30 sh -c "[ \"\$(curl -sf http://127.0.0.1:$HPORT/metrics | awk '\$1 == \"clustermon_remote_write_samples_sent_total\" { print \$2 }')\" = 5832 ]"

check "  (caught up)" wait_for 10 caught_up
# the forwarder's durable state as it is now, to play a lost commit at the end
cp -p "$STATE/remote_write/cursor" "$STATE/remote_write/revisions" "$TMP/"

# ---- 2. Prometheus down --------------------------------------------------------------
stop_pid "$PROM_PID"
AG -a demo-2022 daemon/demo/2022.csv
AG -a demo-readings daemon/demo/readings.csv
# restatements: 20 firm-months of 2021 again, each revenue + 1234.5 yuan, profit - 7
awk -F, 'NR > 1 && $2 != "energy" && NR % 300 == 0 { print $1 "," $2 "," ($2 == "revenue" ? $3 + 1234.5 : $3 - 7) "," $4 }' \
    daemon/demo/2021.csv > "$TMP/restate.csv"
sed -i '1i enterprise,metric,value,period' "$TMP/restate.csv"
AG -a restate "$TMP/restate.csv"
# and one firm-month restated twice
head -2 "$TMP/restate.csv" | sed '2s/,\([0-9.]*\),\(2021-[0-9]*\)$/,4242,\2/' > "$TMP/restate2.csv"
AG -a restate2 "$TMP/restate2.csv"
nrestate=$(($(wc -l < "$TMP/restate.csv") - 1))
check "  ($nrestate restatements and one more)" [ "$nrestate" -ge 10 ]
check "while Prometheus is down the forwarder retries (counted) and holds what it read" \
    wait_for 15 sh -c "[ \"\$(curl -sf http://127.0.0.1:$HPORT/metrics | awk '\$1 == \"clustermon_remote_write_retries_total\" { print \$2 }')\" -ge 3 ]"
check "  and its lag grows" wait_for 5 sh -c "[ \"\$(curl -sf http://127.0.0.1:$HPORT/metrics | awk '\$1 == \"clustermon_remote_write_lag_seconds\" { print \$2 }' | cut -d. -f1)\" -ge 1 ]"
# the daemon SIGKILLed meanwhile: its forwarder starts again from its cursor
kill -KILL "$DPID"
wait "$DPID" 2> /dev/null
check "the daemon, SIGKILLed while Prometheus is down, starts again" start_daemon "$TMP/d.conf"
check "  and its forwarder resumes from its cursor with the revisions counted so far" \
    grep -q 'remote_write: to http://127.0.0.1:.*, from WAL segment .* ([1-9][0-9]* periods stated before)' "$TMP/daemon.log"

# ---- 3. Prometheus back --------------------------------------------------------------
check "prometheus starts again on the same TSDB" start_prom
# and the daemon SIGKILLed again early in the catch-up: samples the TSDB took
# but the cursor had not passed are sent again, identical (same revisions)
for _ in $(seq 1 300); do
    sent=$(metric clustermon_remote_write_samples_sent_total)
    [ "${sent:-0}" -gt 0 ] && break
    sleep 0.02
done
kill -KILL "$DPID"
echo "note - SIGKILLed after $sent samples of the catch-up were taken"
wait "$DPID" 2> /dev/null
check "the daemon, SIGKILLed early in the catch-up, starts again" start_daemon "$TMP/d.conf"
check "the forwarder catches up (nothing pending, lag 0)" wait_for 60 caught_up
check "  nothing was refused" [ "$(metric clustermon_remote_write_samples_refused_total)" = 0 ]

# ---- 4. the copy equals the daemon's figures -------------------------------------------
# pq QUERY TIME: the instant query's result vector as "cluster value" lines
pq() {
    curl -sf "$PROM/api/v1/query" --data-urlencode "query=$1" --data-urlencode "time=$2" |
        jq -r '.data.result[] | "\(.metric.cluster // "-") \(.value[1])"'
}
# compare: every month's revenue and profit per cluster, Prometheus's and the daemon's
compare() {
: > "$TMP/prom.txt"
: > "$TMP/daemon.txt"
for metric in revenue profit; do
    for cluster in energy-env new-energy; do
        ctl series --metric "$metric" --cluster "$cluster" --from 2021-01 --to 2022-12 --json |
            jq -r --arg m "$metric" --arg c "$cluster" \
                '.points[] | select(.value != null) | "\($m) \($c) \(.period) \(.value)"' \
            >> "$TMP/daemon.txt"
    done
    for y in 2021 2022; do
        for mo in 01 02 03 04 05 06 07 08 09 10 11 12; do
            t=$(date -u -d "$y-$mo-01T00:01:00Z" +%s)
            pq "sum by (cluster) (clustermon_$metric{period=\"month\"})" "$t" |
                awk -v m="$metric" -v p="$y-$mo" '{ printf "%s %s %s %.3f\n", m, $1, p, $2 }' \
                >> "$TMP/prom.txt"
        done
    done
done
sort -o "$TMP/daemon.txt" "$TMP/daemon.txt"
sort -o "$TMP/prom.txt" "$TMP/prom.txt"
[ -s "$TMP/daemon.txt" ] && diff "$TMP/daemon.txt" "$TMP/prom.txt"
}
check "per cluster and month, revenue and profit in Prometheus equal the daemon's to the milli-yuan" compare
check "  ($(wc -l < "$TMP/daemon.txt") figures)" [ "$(wc -l < "$TMP/daemon.txt")" = 72 ]
check "  (the figures compared include 2022's, sent after the outage)" grep -q ' 2022-06 ' "$TMP/prom.txt"
# the doubly restated firm-month: its value is the last statement's
read -r f m v p < <(tail -1 "$TMP/restate2.csv" | tr , ' ')
t=$(date -u -d "$p-01T00:01:00Z" +%s)
check "a firm-month restated twice reads its last value ($f $m $p = $v)" \
    [ "$(pq "clustermon_$m{firm=\"$f\",period=\"month\"}" "$t" | awk '{ print $2 }')" = "$v" ]
check "  and keeps its three statements at start + 0, 1, 2 ms" \
    [ "$(pq "count_over_time(clustermon_$m{firm=\"$f\",period=\"month\"}[1m])" "$t" | awk '{ print $2 }')" = 3 ]
now=$(date -u +%s)
check "the COD readings are all there, once (286)" \
    [ "$(pq 'sum(count_over_time(clustermon_cod[10y]))' "$now" | awk '{ print $2 }')" = 286 ]
check "series carry firm, cluster, chain, metric labels" \
    jqe '.data.result[0].metric | .firm == "ee-001" and .cluster == "energy-env" and .chain == "water-pollution-control" and .metric == "revenue"' \
    <<< "$(curl -sf "$PROM/api/v1/query" --data-urlencode 'query=clustermon_revenue{firm="ee-001",period="month"}' \
        --data-urlencode "time=$(date -u -d 2021-03-01T00:01:00Z +%s)")"

# ---- 5. a restart sends nothing twice ------------------------------------------------
stop_pid "$DPID"
check "the daemon restarts" start_daemon "$TMP/d.conf"
sleep 1
check "  and sends nothing (its cursor is at the WAL's end)" [ "$(metric clustermon_remote_write_samples_sent_total)" = 0 ]
check "  the WAL holder is in the log" grep -q 'remote_write: to http://127.0.0.1' "$TMP/daemon.log"

# ---- 6. a lost commit: everything after 2021 sent again --------------------------
# (what a kill between the receiver's 2xx and the cursor's write leaves, at its
# largest): the same samples at the same timestamps, which the TSDB takes
stop_pid "$DPID"
check "  (WAL segment 1, which the old cursor points into, is still there)" \
    test -f "$STATE/wal-0000000000000001.log"
cp -p "$TMP/cursor" "$TMP/revisions" "$STATE/remote_write/"
check "the daemon restarts with the cursor of the end of 2021" start_daemon "$TMP/d.conf"
check "  it sends 2022, the readings and the restatements again" \
    wait_for 60 sh -c "[ \"\$(curl -sf http://127.0.0.1:$HPORT/metrics | awk '\$1 == \"clustermon_remote_write_samples_sent_total\" { print \$2 }')\" -gt 3000 ]"
check "  and catches up" wait_for 60 caught_up
check "  the receiver took them all (identical duplicates): nothing refused" \
    [ "$(metric clustermon_remote_write_samples_refused_total)" = 0 ]
check "  and the copy still equals the daemon's figures" compare
check "  the readings still once each (286)" \
    [ "$(pq 'sum(count_over_time(clustermon_cod[10y]))' "$(date -u +%s)" | awk '{ print $2 }')" = 286 ]
check "  the twice-restated month still three statements" \
    [ "$(pq "count_over_time(clustermon_$m{firm=\"$f\",period=\"month\"}[1m])" "$(date -u -d "$p-01T00:01:00Z" +%s)" | awk '{ print $2 }')" = 3 ]

finish
