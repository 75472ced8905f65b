#!/usr/bin/env bash
# The realistic load of `make bench`: clustermon-sim's province-scale world
# (20,000 firms in 32 clusters of 16 cities, 192 rules of every type, three
# years of months and readings) fed to a fresh clustermond through 4 agent
# streams, flat out, its alerts scored against the answer key. Prints one row
# per rule type and writes $BIN/bench-sim.json (the run's figures and the
# daemon's CPU time). tests/bench.sh calls it when it exists.
#
#   BIN=build bash tests/bench_sim.sh      SIM_FIRMS=20000 SIM_SEED=1 SIM_STREAMS=4 SIM_RATE=0
SUITE=bench_sim
source "$(dirname "$0")/lib.sh"

SIM=$BIN/tests/tools/clustermon-sim
FIRMS=${SIM_FIRMS:-20000}
SEED=${SIM_SEED:-1}
OUT=${BENCH_SIM_JSON:-$BIN/bench-sim.json}
W=$TMP/world
"$SIM" world --seed "$SEED" --firms "$FIRMS" --ingest "$INGEST" --alerts "$ALERTS" \
    --control "$CONTROL" --state "$STATE" "$W" > "$TMP/world.out" || { cat "$TMP/world.out"; exit 2; }
LOG_LEVEL=warn start_daemon "$W/clustermond.conf" || { echo "clustermond did not start"; exit 2; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
cpu0=$(cpu_s "$DPID")
timeout 900 "$SIM" run --streams "${SIM_STREAMS:-4}" --rate "${SIM_RATE:-0}" --json "$TMP/run.json" \
    "$W" > "$TMP/run.out" 2>&1
rc=$?
cpu1=$(cpu_s "$DPID")
rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$DPID/status")
applied=$(status_field samples_applied)
stop_daemon
[ -s "$TMP/run.json" ] || { cat "$TMP/run.out"; echo "clustermon-sim run failed (exit $rc)"; exit 1; }
jq --argjson cpu "$(echo "$cpu1 - $cpu0" | bc)" --argjson rss "${rss:-0}" --argjson applied "$applied" \
    --argjson rc "$rc" '. + {daemon_cpu_s: $cpu, daemon_peak_rss_kb: $rss, samples_applied: $applied, exit: $rc}' \
    "$TMP/run.json" > "$OUT"
jq -r '"clustermon-sim (seed \(.seed)): \(.firms) firms, \(.clusters) clusters, \(.rules) rules, " +
       "\(.samples) samples in \(.seconds) s = \(.samples_per_s) samples/s; daemon CPU \(.daemon_cpu_s) s " +
       "(\((.daemon_cpu_s * 1e9 / .samples) | floor) ns/sample), peak RSS \(.daemon_peak_rss_kb / 1024 | floor) MB"' "$OUT"
printf '%-14s %9s %9s %9s %9s %10s\n' "rule type" expected published matched recall precision
jq -r '.types | to_entries[] | [.key, .value.expected, .value.published, .value.matched,
       (.value.recall | tostring) + "%", (.value.precision | tostring) + "%"] | @tsv' "$OUT" |
    awk -F'\t' '{ printf "%-14s %9s %9s %9s %9s %10s\n", $1, $2, $3, $4, $5, $6 }'
grep -E '^(miss|false alarm):' "$TMP/run.out" | head -20
echo "written: $OUT"
[ "$rc" = 0 ] && [ "$applied" = "$(jq .samples "$OUT")" ]
