#!/usr/bin/env bash
# clustermon-sim on a small world (300 firms, 16 clusters, 96 rules, three
# years): the daemon's alerts against the sim's answer key.
#  1. The world is deterministic: the same seed writes the same registry, key
#     and planted anomalies; another seed writes another key.
#  2. Fed through 4 agent streams, every alert of the key is published and
#     nothing else: recall 100 % and precision >= 99 % for every rule type
#     (the tool's exit status), exact totals (published = expected = the
#     key's rows, per type), no alert lost, samples_applied = samples sent.
#  3. The checker can fail: the same world against a daemon whose change rule
#     says drop = 20 instead of 50 (the key still says 50) flags the Spring
#     Festival dips (-20 to -30 %), which the key does not hold; the run exits
#     1 and names them.
#
#   BIN=build bash tests/sim_e2e.sh        (part of make check)
SUITE=sim_e2e
source "$(dirname "$0")/lib.sh"

SIM=$BIN/tests/tools/clustermon-sim
W=$TMP/world
world() { # DIR SEED
    "$SIM" world --seed "$2" --firms 300 --ingest "$INGEST" --alerts "$ALERTS" \
        --control "$CONTROL" --state "$STATE" "$1"
}

# ---- 1. determinism --------------------------------------------------------------------
check "world: writes config, registry, key" world "$W" 7
world "$TMP/again" 7 > /dev/null
world "$TMP/other" 8 > /dev/null
check "world: the same seed gives the same registry, key and planted anomalies" \
    sh -c "cmp -s '$W/key.csv' '$TMP/again/key.csv' && cmp -s '$W/registry.csv' '$TMP/again/registry.csv' &&
           cmp -s '$W/planted.csv' '$TMP/again/planted.csv'"
check "world: another seed gives another key" sh -c "! cmp -s '$W/key.csv' '$TMP/other/key.csv'"
check "world: the daemon accepts the config and registry" "$BIN/clustermond" -n -c "$W/clustermond.conf"
KEYROWS=$(($(wc -l < "$W/key.csv") - 1))
check "world: the key holds every rule type" \
    test "$(tail -n +2 "$W/key.csv" | cut -d, -f1 | sort -u | wc -l)" = 7

# ---- 2. the daemon against the key -------------------------------------------------------
start_daemon "$W/clustermond.conf" || { no "daemon started"; finish; exit 1; }
timeout 120 "$SIM" run --json "$TMP/run.json" "$W" > "$TMP/run.out" 2>&1
rc=$?
sed 's/^/   /' "$TMP/run.out"
check "run: exit 0 (recall 100 %, precision >= 99 % for every rule type)" test "$rc" = 0
check "run: every expected alert published (recall 100 %)" jqe '.types.all.recall == 100' "$TMP/run.json"
check "run: precision >= 99 %" jqe '.types.all.precision >= 99' "$TMP/run.json"
check "run: exact totals per type (expected = published = matched)" \
    jqe '[.types[] | select(.expected == .published and .published == .matched)] | length == 8' \
    "$TMP/run.json"
check "run: the key's $KEYROWS rows are the alerts expected" \
    jqe ".types.all.expected == $KEYROWS" "$TMP/run.json"
check "run: no alert lost (per-cluster seqs without gaps)" jqe '.lost == 0' "$TMP/run.json"
SENT=$(jq .samples "$TMP/run.json")
check "run: samples_applied = samples sent ($SENT)" test "$(status_field samples_applied)" = "$SENT"
stop_daemon

# ---- 3. a daemon that disagrees with the key ----------------------------------------------
rm -rf "$STATE"
sed -i 's/^drop = 50$/drop = 20/' "$W/clustermond.conf"
start_daemon "$W/clustermond.conf" || { no "daemon restarted"; finish; exit 1; }
timeout 120 "$SIM" run --json "$TMP/bad.json" "$W" > "$TMP/bad.out" 2>&1
rc=$?
check "disagreeing daemon: exit 1" test "$rc" = 1
check "disagreeing daemon: change precision below 100 %" \
    jqe '.types.change.precision < 100 and .types.change.recall == 100' "$TMP/bad.json"
check "disagreeing daemon: the false alarms are listed with firm and period" \
    grep -Eq '^false alarm: change +[a-z0-9-]+-drop:f[0-9]{5} [0-9]{4}-[0-9]{2} ' "$TMP/bad.out"
stop_daemon
finish
