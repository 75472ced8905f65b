#!/usr/bin/env bash
# Restarts change nothing: alert transitions and silences are durable when
# they happen (WAL records of their own), so a SIGKILL at any moment and a
# clean stop (SIGTERM, which also leaves a snapshot) come back to the same
# alerts -- ids, states, since, seqs -- and the same silences, and publish
# nothing new.
#  1. The demo data set, no snapshot yet: a SIGKILL and a start show the same
#     alerts with the same seqs (rebuilt from the WAL alone).
#  2. 5 restarts alternating SIGTERM and SIGKILL in a quiet period: a
#     subscriber connected throughout hears no alert, status counts none
#     published, `alerts --json` is identical each time; then one new alert
#     reaches that same subscriber (it was listening all along).
#  3. Silences: add A, add B, (snapshot), rm A; SIGKILL: only B; SIGTERM: only
#     B. A silence that expires stays expired and its id is never given again.
#  4. A reload that removes a rule that fires and narrows the scope of
#     another: the alerts they end are published as resolved and journaled
#     so; SIGKILL, start: they do not come back.
SUITE=restart
source "$(dirname "$0")/lib.sh"

agent() { timeout 30 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" "$@" > /dev/null 2>&1; }
# A continuous silence rule on the water plants' COD: it fires from the
# rules tick (not from a batch), for many firms at once (a grouped alert).
# Its observed value is how long each firm has been quiet, which grows by
# itself every second: the one field compared without.
quiet_rule() {
    printf '\n[rule cod-quiet]\ntype = silence\nmetric = cod\ncluster = energy-env\n'
    printf 'chain = water-pollution-control\nschedule = continuous\nquiet = 3s\nseverity = info\n'
}
alerts_json() { ctl alerts --json | jq -S '.alerts |= map(if .rule == "cod-quiet" then del(.observed) else . end)'; }
# published: alert lines the daemon logged ("alert firing X: ... (cluster seq N)")
published() { grep -cE '\[info\] alert (firing|resolved|revised|flapping) ' "$TMP/daemon.log"; }
snapshots() { ls "$STATE" | grep -c '^snap-.*\.snap$'; }
CONF=$TMP/quiet.conf
restart() { # restart SIGNAL: stop with SIGNAL, start again on $CONF
    stop_daemon "$1"
    start_daemon "$CONF"
}

# ---- 1. right after the demo ingest, no snapshot --------------------------------
# no snapshot but the one a clean stop writes
make_config "$TMP/quiet.conf" snapshot_interval_s=86400
quiet_rule >> "$TMP/quiet.conf"
check "daemon starts" start_daemon "$TMP/quiet.conf" || { cat "$TMP/daemon.log"; exit 1; }
# a new state dir snapshots the registry's first-seen times at once: let it,
# so that no snapshot holds any of the data below
for _ in $(seq 1 50); do [ "$(snapshots)" -ge 1 ] && break; sleep 0.1; done
agent -a demo-2021 daemon/demo/2021.csv
for m in 01 02 03 04 05 06; do
    grep ",2022-$m\$" daemon/demo/2022.csv > "$TMP/2022-$m.csv"
    agent -a "demo-2022-$m" "$TMP/2022-$m.csv"
done
agent -a demo-readings daemon/demo/readings.csv
sleep 1.2 # one rules tick: the time-based rules have had their say
alerts_json > "$TMP/before.json"
nfiring=$(jq '.alerts | length' "$TMP/before.json")
check "the demo data fires 2+ alerts ($nfiring)" [ "$nfiring" -ge 2 ]
check "...among them the quiet water plants, from the rules tick, as a group" \
    grep -q "alert firing cod-quiet:energy-env:group" "$TMP/daemon.log"
check "the demo's own (growth, monthly report) have seqs past 1: not first publications" \
    jqe '[.alerts[] | select(.rule != "cod-quiet") | .seq] | length >= 2 and min > 1' "$TMP/before.json"
check "no snapshot taken since the data (only the first-seen one)" [ "$(snapshots)" = 1 ]
before_pub=$(published)
check "SIGKILL, start" restart KILL
alerts_json > "$TMP/after-kill.json"
check "same alerts, states, since and seqs, rebuilt from the WAL alone" \
    cmp -s "$TMP/before.json" "$TMP/after-kill.json"
cmp -s "$TMP/before.json" "$TMP/after-kill.json" ||
    diff <(jq -c '.seqs, (.alerts[] | [.id, .state, .seq, .since_ms])' "$TMP/before.json") \
         <(jq -c '.seqs, (.alerts[] | [.id, .state, .seq, .since_ms])' "$TMP/after-kill.json")
check "nothing published by the restart" [ "$(published)" = "$before_pub" ]

# ---- 2. five restarts in a quiet period ------------------------------------------
# The operator's case: a snapshot is taken after the last batch, then an
# alert fires from the rules tick alone. A fresh COD reading ends ee-024's
# quiet (resolved, from the batch); 3 s later the tick fires it again.
stop_daemon TERM
make_config "$TMP/snap.conf" snapshot_interval_s=1
quiet_rule >> "$TMP/snap.conf"
CONF=$TMP/snap.conf
check "daemon starts (snapshot every second)" start_daemon "$CONF"
fired() { grep -c "alert firing cod-quiet:ee-024:" "$TMP/daemon.log"; }
f0=$(fired)
printf 'ee-024,cod,21.5,%s\n' "$(date -Iseconds)" | agent -a fresh-cod -
for _ in $(seq 1 100); do [ "$(fired)" -gt "$f0" ] && break; sleep 0.1; done
check "ee-024's quiet resolved by a batch, then fired again by the rules tick" \
    bash -c "grep -q 'alert resolved cod-quiet:ee-024:' '$TMP/daemon.log' && [ $(fired) -gt $f0 ]"
sleep 1.5
alerts_json > "$TMP/before.json"
before_pub=$(published)
timeout -k 5 120 "$BIN/clustermon-sub" -e "$ALERTS" --no-snapshot --timeout 60000 \
    > "$TMP/quiet.jsonl" 2> "$TMP/quiet.err" &
SUBPID=$!
PIDS+=("$SUBPID")
sleep 0.5
same=1 none=1 snap_ok=1
for sig in TERM KILL TERM KILL TERM; do
    restart "$sig" || { no "restart after SIG$sig"; break; }
    [ "$sig" = TERM ] && [ "$(snapshots)" -lt 1 ] && snap_ok=0
    sleep 1.5 # the reconcile ran at start; let the cron's rules tick run too
    alerts_json > "$TMP/now.json"
    cmp -s "$TMP/before.json" "$TMP/now.json" || { same=0; echo "after SIG$sig:"; diff "$TMP/before.json" "$TMP/now.json" | head -20; }
    [ "$(status_field alerts_published)" = 0 ] || { none=0; echo "after SIG$sig: status says $(status_field alerts_published) published"; }
done
check "5 restarts (SIGTERM, SIGKILL alternating): alerts --json identical each time" [ "$same" = 1 ]
check "5 restarts: status counts 0 alerts published after each" [ "$none" = 1 ]
check "5 restarts: the daemon logged no publication" [ "$(published)" = "$before_pub" ]
check "a clean stop leaves a snapshot" [ "$snap_ok" = 1 ]
check "the stop snapshot was logged" grep -q "snapshot at stop: .* written" "$TMP/daemon.log"
# (A publication in the reconcile at start-up can go out before the
# subscriber has reconnected, so status and the log above are the proof for
# those; the subscriber catches any from the rules tick after it.)
check "the subscriber connected throughout heard no alert" [ ! -s "$TMP/quiet.jsonl" ]
[ -s "$TMP/quiet.jsonl" ] && jq -c '[.id, .state, .seq]' "$TMP/quiet.jsonl" | head
# It was listening: a real transition now reaches it (cod above 50, twice).
printf 'ee-024,cod,91.5,2022-08-01T08:00:00+08:00\nee-024,cod,92.5,2022-08-01T09:00:00+08:00\n' |
    agent -a late-cod -
for _ in $(seq 1 50); do [ -s "$TMP/quiet.jsonl" ] && break; sleep 0.1; done
check "...and hears the next real transition, once" \
    jqe -s 'length == 1 and .[0].id == "cod-limit:ee-024" and .[0].state == "firing"' "$TMP/quiet.jsonl"
stop_pid "$SUBPID"
alerts_json > "$TMP/before.json"
check "SIGKILL right after it, start: that alert too comes back with its seq" restart KILL
check "...identical alerts --json" cmp -s "$TMP/before.json" <(alerts_json)

# ---- 3. silences --------------------------------------------------------------------
silence_ids() { ctl silence list --json | jq -c '[.[].id]'; }
idA=$(ctl silence add --rule cod-limit --cluster energy-env --for 2h --reason "sensor swap A" --json | jq .id)
idB=$(ctl silence add --rule monthly-report --cluster new-energy --for 2h --reason "holiday B" --json | jq .id)
check "silences A and B added ($idA, $idB)" [ -n "$idA" ] && [ -n "$idB" ] && [ "$idA" != "$idB" ]
newest() { ls "$STATE" | grep '^snap-.*\.snap$' | tail -1; }
s0=$(newest)
for _ in $(seq 1 40); do [ "$(newest)" != "$s0" ] && break; sleep 0.1; done
check "a snapshot taken since holds A and B" [ "$(newest)" != "$s0" ]
ctl silence rm "$idA" > /dev/null
check "A removed" [ "$(silence_ids)" = "[$idB]" ]
stop_daemon KILL
start_daemon "$TMP/quiet.conf"
check "SIGKILL, start: only B (A removed after the snapshot stays removed)" [ "$(silence_ids)" = "[$idB]" ]
stop_daemon TERM
start_daemon "$TMP/quiet.conf"
check "SIGTERM, start: only B" [ "$(silence_ids)" = "[$idB]" ]
check "B as it was added" jqe '.[0] | .rule == "monthly-report" and .cluster == "new-energy" and .reason == "holiday B"' \
    <(ctl silence list --json)
idC=$(ctl silence add --rule cod-limit --cluster energy-env --firm ee-024 --for 2s --reason "short C" --json | jq .id)
check "silence C (2 s) added" [ "$(silence_ids)" = "[$idB,$idC]" ]
stop_daemon KILL
sleep 2.2
start_daemon "$TMP/quiet.conf"
check "C expired while the daemon was down: SIGKILL, start: only B" [ "$(silence_ids)" = "[$idB]" ]
stop_daemon TERM
start_daemon "$TMP/quiet.conf"
check "SIGTERM, start: C stays expired" [ "$(silence_ids)" = "[$idB]" ]
idD=$(ctl silence add --rule cod-limit --cluster energy-env --for 1h --reason "D" --json | jq .id)
check "a new silence never gets an id given before ($idD > $idC)" [ "$idD" -gt "$idC" ]
# ---- 4. alerts a reload ends -----------------------------------------------------------
firing_ids() { ctl alerts --json | jq -c '[.alerts[] | select(.state == "firing") | .id] | sort'; }
sleep 1.2 # a rules tick: the quiet water plants fire again after the restarts
gone_rule=$(ctl alerts --json | jq -r '[.alerts[] | select(.state == "firing" and .rule != "cod-quiet") | .rule][0]')
before_ids=$(firing_ids)
n_gone=$(echo "$before_ids" | jq --arg r "$gone_rule" '[.[] | select(startswith($r + ":"))] | length')
n_quiet=$(echo "$before_ids" | jq '[.[] | select(startswith("cod-quiet:ee-"))] | length')
check "firing before the reload: rule $gone_rule ($n_gone) and cod-quiet for $n_quiet water plants" \
    [ -n "$gone_rule" ] && [ "$gone_rule" != null ] && [ "$n_gone" -ge 1 ] && [ "$n_quiet" -ge 2 ]
# the rule removed; cod-quiet narrowed to the leading water plants
awk -v r="[rule $gone_rule]" '$0 == r { skip = 1; next } skip && /^[[;]/ { skip = 0 } !skip' \
    "$TMP/quiet.conf" > "$TMP/reload.conf"
sed -i 's/^\[rule cod-quiet\]$/&\ntier = leading/' "$TMP/reload.conf"
cp "$TMP/reload.conf" "$TMP/quiet.conf" # the file the daemon runs on
resolved_before=$(grep -c '\[info\] alert resolved ' "$TMP/daemon.log")
ctl reload > "$TMP/reload.out" 2>&1 || cat "$TMP/reload.out"
after_ids=$(firing_ids)
ended=$(jq -n --argjson b "$before_ids" --argjson a "$after_ids" '$b - $a')
n_ended=$(echo "$ended" | jq length)
check "the reload ended the removed rule's and the narrowed rule's alerts ($n_ended)" \
    jqe --arg r "$gone_rule" 'any(startswith($r + ":")) and any(startswith("cod-quiet:ee-"))' <<< "$ended"
check "some cod-quiet alerts are kept (leading plants)" \
    jqe 'any(startswith("cod-quiet:ee-"))' <<< "$after_ids"
check "...each ended one published as resolved" \
    [ $(($(grep -c '\[info\] alert resolved ' "$TMP/daemon.log") - resolved_before)) -ge "$n_ended" ]
stop_daemon KILL
start_daemon "$TMP/quiet.conf"
sleep 1.2 # a rules tick on the new config
check "SIGKILL, start: none of the ended alerts comes back" \
    jqe -n --argjson e "$ended" --argjson now "$(firing_ids)" '($e - ($e - $now)) == []'
check "...and the kept ones are still firing" \
    jqe -n --argjson a "$after_ids" --argjson now "$(firing_ids)" '($a - $now) == []'
stop_daemon TERM
check "the daemon stopped cleanly each time" [ $? = 0 ]
check "no replay warnings" bash -c "! grep -q 'WAL replay:' '$TMP/daemon.log'"
finish
