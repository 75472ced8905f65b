#!/usr/bin/env bash
# The rule engine and alert lifecycle end to end, with the real daemon on the
# default config's rules and the demo data replayed month by month:
#  1. every rule type raises the alert the demo data was built to raise, each
#     explaining itself (details), and the ones the data fixes resolve;
#  2. a late subscriber, and one stalled into a gap, end with exactly the
#     daemon's set of firing alerts (Clone pattern: snapshot + resync);
#  3. a flood becomes one grouped alert; reminders repeat; --exec runs per
#     alert (flapping and silences: tests/check_alertbook.c);
#  4. a restart does not re-announce what is still true;
#  5. a growth rule on its defaults (quorum 80 %) is not moved by one early
#     firm's month;
#  6. a fresh daemon with a registry and no data announces no "never
#     reported" firm in its first minutes, then one summary per rule, with
#     the grace counted from first sight across a restart.
SUITE=rules
source "$(dirname "$0")/lib.sh"

AG() { "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" "$@"; }
SUB() { "$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" "$@"; } # foreground only: $! of a
                                                                   # function is its subshell
# count FILE JQ-FILTER: how many live alerts (not snapshot copies) of FILE match
count() { jq -s "[.[] | select((.snapshot | not) and ($2))] | length" "$1"; }

# Floods must not flap here; the flapping case has its own rule below.
make_config "$TMP/r.conf" alerts_hwm=100
sed -i 's/^flap_max = 6/flap_max = 1000000/' "$TMP/r.conf"
cat >> "$TMP/r.conf" <<'EOF'

[rule cod-flap]
type = threshold
metric = cod
cluster = energy-env
chain = water-pollution-control
above = 100
clear = 90
severity = info

[rule ne-growth-defaults]
type = growth
metric = revenue
cluster = new-energy
year = 2022
target = 15

[rule cod-remind]
type = threshold
metric = cod
cluster = energy-env
chain = water-pollution-control
above = 500
severity = critical
repeat = 1s
EOF
sed -i 's/^\[alerting\]/[alerting]\nflap_window = 1h/' "$TMP/r.conf"
check "daemon starts with the default rules" start_daemon "$TMP/r.conf"

"$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --state-file "$TMP/early.state" --timeout 120000 -x "cat >> '$TMP/exec.out'" \
    > "$TMP/early.jsonl" 2> "$TMP/early.err" &
EARLY=$!
PIDS+=("$EARLY")
sleep 0.5

# ---- 1. the demo's problems, month by month --------------------------------------
AG -a r2021 "$ROOT/daemon/demo/2021.csv"
for m in 01 02 03 04 05 06; do
    grep ",2022-$m\$" "$ROOT/daemon/demo/2022.csv" | AG -a "r2022-$m" -
done
AG -a rcod "$ROOT/daemon/demo/readings.csv"
sleep 1
E=$TMP/early.jsonl
check "growth: new-energy misses +15 %, critical, with its arithmetic" \
    [ "$(count "$E" '.id == "ne-revenue-growth:new-energy" and .state == "firing" and .severity == "critical"
        and .details.target_pct == 15 and .details.growth_pct < 13 and .details.growth_pct > 8
        and (.details.coverage | test("of 46 firms")) and .details.prorate == "seasonal"
        and .details.last_year_same_months > 0 and .details.projection > 0')" = 1 ]
# ---- 5. one early firm's month under the default quorum ---------------------------
GD='.id == "ne-growth-defaults:new-energy"'
check "growth on defaults: fires, like for like through June" \
    jqe -s '[.[] | select((.snapshot | not) and .id == "ne-growth-defaults:new-energy")] | last
        | .state != "resolved" and .details.months == "2022-01..2022-06" and .details.quorum_pct == 80
        and (.summary | test("like for like")) and .details.growth_pct < 13' "$E"
gd_before=$(count "$E" "$GD")
gd_pct=$(ctl alerts --json | jq '.alerts[] | select(.id == "ne-growth-defaults:new-energy") | .details.growth_pct')
first_ne=$(awk -F, '$3 == "new-energy" { print $1; exit }' "$ROOT/daemon/demo/registry.csv")
printf '%s,revenue,1000,2022-07\n' "$first_ne" | AG -a rearly -
sleep 0.5
check "one early firm's July does not move it: no event, same figure" \
    [ "$(count "$E" "$GD")" = "$gd_before" -a -n "$gd_pct" -a \
      "$(ctl alerts --json | jq '.alerts[] | select(.id == "ne-growth-defaults:new-energy") | .details.growth_pct')" = "$gd_pct" ]
check "clustermonctl cluster says what the rule measures" \
    sh -c "'$BIN/clustermonctl' -e '$CONTROL' cluster new-energy --through 2022-06 | grep -q 'like for like 2022-01..06, [0-9]* of [0-9]* firms'"
check "growth: late months revise it (never left stale)" \
    [ "$(count "$E" '.id == "ne-revenue-growth:new-energy" and .state == "revised"')" -ge 4 ]
check "change: ee-007 halves in May (firing) and recovers in June (resolved)" \
    sh -c "[ \"\$(jq -r 'select(.id == \"revenue-drop:ee-007\" and (.snapshot | not)) | \"\\(.state) \\(.details.period)\"' '$E' | tr '\n' ,)\" = 'firing 2022-05,resolved 2022-06,' ]"
check "change: only ee-007 (Spring Festival does not trip it)" \
    [ "$(count "$E" '.rule == "revenue-drop" and .state == "firing"')" = 1 ]
check "outlier: ee-007's May, by its own history; resolved in June" \
    sh -c "[ \"\$(jq -r 'select(.rule == \"revenue-outlier\" and (.snapshot | not)) | \"\\(.firm) \\(.state)\"' '$E' | tr '\n' ,)\" = 'ee-007 firing,ee-007 resolved,' ]"
check "silence: ne-037 late after March, then silent (revised)" \
    [ "$(count "$E" '.id == "monthly-report:ne-037" and ((.state == "firing" and .details.state == "late"
        and .details.due_period == "2022-04") or (.state == "revised" and .details.state == "silent"))')" -ge 2 ]
check "threshold: COD fires on the second breaching sample, resolves at 36.4" \
    [ "$(count "$E" '.id == "cod-limit:ee-024" and ((.state == "firing" and .observed == 67.2)
        or (.state == "resolved" and .observed == 36.4))')" = 2 ]
check "every alert carries its inputs (details)" [ "$(count "$E" '(.details | length) == 0')" = 0 ]
check "sequence numbers are contiguous in each cluster (no gap so far)" \
    jqe -s '[.[] | select(.snapshot | not)] | group_by(.cluster) | length >= 2 and
        all(map(.seq) as $s | $s == [range($s[0]; $s[0] + ($s | length))])' "$E"
check "each cluster counts from 1" \
    jqe -s '[.[] | select(.snapshot | not)] | group_by(.cluster) | all(.[0].seq == 1)' "$E"
check "--exec ran once per live alert" \
    [ "$(grep -c '"seq"' "$TMP/exec.out")" = "$(count "$E" 'true')" ]

# ---- 2. a flood, grouped; the subscriber resyncs to learn its members --------------
# every firm of the water-pollution-control chain: two readings over 100 mg/L
ts=$(date -d '2022-07-02T10:00:00+08:00' +%s)000
firms_wpc=$(awk -F, '$4 == "water-pollution-control" { print $1 }' "$ROOT/daemon/demo/registry.csv")
for f in $firms_wpc; do
    printf '%s,cod,120,%s\n%s,cod,130,%s\n' "$f" "$ts" "$f" "$((ts + 60000))"
done > "$TMP/flood.csv"
AG -a rflood "$TMP/flood.csv"
sleep 1
nwpc=$(echo "$firms_wpc" | wc -w)
check "a flood of $nwpc firing alerts is published as one grouped alert" \
    [ "$(count "$E" '.id == "cod-flap:energy-env:group" and .count == '"$nwpc"' and .state == "firing"')" = 1 ]
check "the subscriber took a snapshot to learn the group's members" \
    grep -q "grouped alert cod-flap:energy-env:group stands for $nwpc alerts: resynchronising" "$TMP/early.err"
check "its firing set now lists them one by one" \
    [ "$(jq '[.firing[] | select(.id | startswith("cod-flap:"))] | length' "$TMP/early.state")" = "$nwpc" ]

# ---- 3. reminders ----------------------------------------------------------
printf 'ee-024,cod,600,%s\n' "$((ts + 240000))" | AG -a rremind -
sleep 2.5
check "a firing alert with repeat = 1s is repeated as a reminder" \
    [ "$(count "$E" '.id == "cod-remind:ee-024" and .reminder == true')" -ge 1 ]
printf 'ee-024,cod,10,%s\n' "$((ts + 300000))" | AG -a rremind2 -

# ---- silences -----------------------------------------------------------------------------
check "silence add" ctl silence add --rule cod-remind --cluster energy-env --firm ee-031 --for 1h \
    --reason "sensor maintenance"
check "silence list shows it" sh -c "'$BIN/clustermonctl' -e '$CONTROL' silence list | grep -q 'cod-remind .*ee-031 .*sensor maintenance'"
printf 'ee-031,cod,800,%s\n' "$((ts + 320000))" | AG -a rsilenced -
sleep 0.5
check "a silenced alert is not published" [ "$(count "$E" '.id == "cod-remind:ee-031"')" = 0 ]
check "but it is tracked: clustermonctl alerts lists it" \
    sh -c "'$BIN/clustermonctl' -e '$CONTROL' alerts --json | jq -e '.alerts | any(.id == \"cod-remind:ee-031\")' > /dev/null"
check "silence rm" ctl silence rm 1
printf 'ee-031,cod,10,%s\n' "$((ts + 330000))" | AG -a rsilenced2 -
sleep 0.5
check "after the silence, its transitions are published again" \
    [ "$(count "$E" '.id == "cod-remind:ee-031" and .state == "resolved"')" = 1 ]
check "a silence for an unknown rule is refused" \
    sh -c "! '$BIN/clustermonctl' -e '$CONTROL' silence add --rule nope --cluster energy-env --for 1h --reason x 2>/dev/null"

# ---- 4. a late subscriber, and one stalled into a gap ----------------------------------
"$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --state-file "$TMP/late.state" --hwm 2 --timeout 60000 > "$TMP/late.jsonl" 2> "$TMP/late.err" &
LATE=$!
PIDS+=("$LATE")
sleep 0.5
check "a late subscriber starts from the snapshot" \
    [ "$(jq -s '[.[] | select(.snapshot == true)] | length' "$TMP/late.jsonl")" -ge 3 ]
kill -STOP "$LATE"
# 1000 transitions of cod-flap for one firm while the subscriber is stalled:
# the publisher's queue for it (alerts_hwm = 100, plus what the socket
# buffers hold) overflows and drops
awk -v t0="$ts" 'BEGIN { for (i = 0; i < 500; i++) {
    printf "ee-009,cod,%d,%.0f\n", 150, t0 + 400000 + i * 2000;
    printf "ee-009,cod,%d,%.0f\n", 50, t0 + 401000 + i * 2000 } }' > "$TMP/churn.csv"
check "the daemon applied all 1000 churn rows (none refused)" AG -a rchurn -b 2 "$TMP/churn.csv"
kill -CONT "$LATE"
sleep 2
SUB --state-file "$TMP/truth.state" --timeout 1000 > /dev/null 2>&1
# wait (bounded) until both subscribers have caught up with the daemon
truth_seqs=$(jq -cS .seqs "$TMP/truth.state")
for _ in $(seq 1 100); do
    [ "$(jq -cS .seqs "$TMP/late.state")" = "$truth_seqs" ] &&
        [ "$(jq -cS .seqs "$TMP/early.state")" = "$truth_seqs" ] && break
    sleep 0.2
done
check "the truth has a seq per cluster" jqe 'keys == ["energy-env", "new-energy"]' <<< "$truth_seqs"
check "the stalled subscriber caught up with every cluster's seq" \
    [ "$(jq -cS .seqs "$TMP/late.state")" = "$truth_seqs" ]
check "so did the early one" [ "$(jq -cS .seqs "$TMP/early.state")" = "$truth_seqs" ]
check "the stalled subscriber noticed energy-env's gap and resynchronised" \
    grep -qE "^clustermon-sub: gap: (expected energy-env seq|heartbeat says energy-env is at seq)" "$TMP/late.err"
check "no gap was ever seen in new-energy, which lost nothing" \
    sh -c "! grep -q 'gap: .*new-energy' '$TMP/late.err' '$TMP/early.err'"
check "the late subscriber ends with exactly the daemon's firing set" \
    sh -c "[ \"\$(jq -c '[.firing[].id]' '$TMP/late.state')\" = \"\$(jq -c '[.firing[].id]' '$TMP/truth.state')\" ]"
check "so does the early one" \
    sh -c "[ \"\$(jq -c '[.firing[].id]' '$TMP/early.state')\" = \"\$(jq -c '[.firing[].id]' '$TMP/truth.state')\" ]"

# ---- 5. a restart reconciles without re-announcing --------------------------------------
before=$(wc -l < "$E")
last_seq=$(jq -s '[.[] | select(.cluster == "energy-env")][-1].seq' "$E")
stop_daemon TERM
start_daemon "$TMP/r.conf"
sleep 1.5
after_restart=$(tail -n +$((before + 1)) "$E")
check "after a restart nothing still true is announced again" \
    [ -z "$(printf '%s' "$after_restart" | jq -c 'select(.state == "firing" and (.reminder | not))')" ]
printf 'ee-030,cod,700,%s\nee-030,cod,700,%s\n' "$((ts + 9000000))" "$((ts + 9060000))" | AG -a rafter -
sleep 0.5
check "the seqs are kept per cluster in state_dir/alert-seqs" test -s "$STATE/alert-seqs"
check "and energy-env's sequence numbers go on from where they were" \
    [ "$(jq -s '[.[] | select(.id == "cod-remind:ee-030" and .state == "firing")][0].seq' "$E")" -gt "$last_seq" ]

kill -TERM "$EARLY" "$LATE" 2>/dev/null
wait "$EARLY" "$LATE" 2>/dev/null
stop_daemon TERM

# ---- 6. a fresh deployment: a registry, no data ------------------------------------
# fresh-wall: the schedule's default (first report due next month); fresh-grace:
# a 6 s grace, counted from when the daemon first saw the firms
STATE=$TMP/fresh-state
make_config "$TMP/fresh.conf"
cat >> "$TMP/fresh.conf" <<'EOF'

[rule fresh-wall]
type = silence
cluster = new-energy
metric = revenue

[rule fresh-grace]
type = silence
cluster = new-energy
metric = revenue
grace = 6s
EOF
check "a fresh daemon starts" start_daemon "$TMP/fresh.conf"
t_start=$(date +%s)
SUB --timeout 60000 > "$TMP/fresh.jsonl" 2> /dev/null &
FRESH=$!
PIDS+=("$FRESH")
sleep 3
never() { jq -s '[.[] | select(.state == "firing" and (.details.state // "") == "never reported")] | length' "$TMP/fresh.jsonl"; }
check "no never-reported alert in its first seconds" [ "$(never)" = 0 ]
check "and none listed by clustermonctl alerts" \
    [ "$(ctl alerts --json | jq '[.alerts[] | select(.id | test("^(fresh-|monthly-report)"))] | length')" = 0 ]
stop_daemon TERM
start_daemon "$TMP/fresh.conf"
# first seen survives the restart: the grace ends 6 s after the first start,
# not 6 s after this one
for _ in $(seq 1 60); do
    [ "$(never)" -ge 1 ] && break
    sleep 0.1
done
t_fired=$(date +%s)
nne=$(grep -c '^ne-' "$ROOT/daemon/demo/registry.csv") # the demo's new-energy firms, all active
check "after the grace: one summary alert for the cluster, naming the count ($nne)" \
    [ "$(jq -s '[.[] | select(.state == "firing" and .id == "fresh-grace:new-energy" and .details.count == '"$nne"')] | length' "$TMP/fresh.jsonl")" = 1 ]
check "the grace was counted from the first start (fired $((t_fired - t_start)) s after it)" \
    [ $((t_fired - t_start)) -le 8 ]
check "never one alert per firm" [ "$(jq -s '[.[] | select(.firm != null and .firm != "")] | length' "$TMP/fresh.jsonl")" = 0 ]
check "the schedule's default stays quiet until the first report is due" \
    [ "$(jq -s '[.[] | select(.id | test("^(fresh-wall|monthly-report)"))] | length' "$TMP/fresh.jsonl")" = 0 ]
kill -TERM "$FRESH" 2>/dev/null
wait "$FRESH" 2>/dev/null
stop_daemon TERM
finish
