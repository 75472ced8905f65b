#!/usr/bin/env bash
# clustermon-sub --exec delivers at least once and never twice (README,
# clustermon-sub): the real daemon, cod-limit alerts raised by agents, and a
# command that logs every run in $TMP/calls (and fails or stalls on demand):
#  1. a live alert runs the command once; the state file is 0600;
#  2. an alert that fires while the subscriber is down, and one it had
#     delivered firing that resolves meanwhile: back up, the command runs
#     once for each (the second a synthesized resolved event);
#  3. a restart with nothing new runs the command 0 times;
#  4. a command failing twice then succeeding: delivered once, after two
#     retries, failures counted; the same alert's resolved event waits its
#     turn; a command that always fails is given up after --retries;
#  5. kill -9 while the command runs: after the restart the event is
#     delivered (again: at least once).
#
#   BIN=build bash tests/sub_exec_e2e.sh        (part of make check)
SUITE=sub-exec
source "$(dirname "$0")/lib.sh"

AG() { "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" "$@"; }
CALLS=$TMP/calls
SUBSTATE=$TMP/sub.state
mkdir -p "$TMP/fail" "$TMP/slow"

# The command: logs "RUN ID STATE snap=.. syn=.. start", then "... ok" or
# "... fail"; fails while $TMP/fail/ID holds a count > 0 (decremented each
# time); sleeps 3 s first while $TMP/slow/ID exists.
cat > "$TMP/notify.sh" <<EOF
#!/bin/sh
in=\$(cat)
id=\$(printf '%s' "\$in" | jq -r .id)
line="\$1 \$id \$(printf '%s' "\$in" | jq -r '"\(.state) snap=\(.snapshot // false) syn=\(.synthesized // false)"')"
echo "\$line start" >> '$CALLS'
printf '%s\n' "\$in" >> '$TMP/inputs'
[ -e '$TMP/slow/'"\$id" ] && sleep 3
f='$TMP/fail/'"\$id"
if [ -s "\$f" ] && [ "\$(cat "\$f")" -gt 0 ]; then
    echo \$((\$(cat "\$f") - 1)) > "\$f"
    echo "\$line fail" >> '$CALLS'
    exit 1
fi
echo "\$line ok" >> '$CALLS'
EOF
chmod +x "$TMP/notify.sh"
touch "$CALLS"

# start_sub RUN: a subscriber with --exec, its stderr in $TMP/sub.err; SPID
start_sub() {
    "$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --state-file "$SUBSTATE" -v \
        -x "$TMP/notify.sh $1" --retries "${RETRIES:-3}" --retry-delay 100 --retry-max-delay 400 \
        >> "$TMP/sub.out" 2>> "$TMP/sub.err" &
    SPID=$!
    PIDS+=("$SPID")
}
# stop_sub [SIGNAL]: stops it and waits (bounded)
stop_sub() {
    kill "-${1:-TERM}" "$SPID" 2>/dev/null
    local _
    for _ in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    wait "$SPID" 2>/dev/null
}
# wait_for CMD...: until CMD succeeds, at most 10 s
wait_for() {
    local _
    for _ in $(seq 1 100); do "$@" && return 0; sleep 0.1; done
    return 1
}
# calls PATTERN: how many lines of $CALLS match (grep -E, whole line)
calls() { grep -cxE "$1" "$CALLS"; }
has_calls() { [ "$(calls "$1")" -ge "${2:-1}" ]; }
# snapshots: how many snapshots the subscriber has said it took
snapshots() { grep -c '^clustermon-sub: snapshot: [0-9]* firing alerts' "$TMP/sub.err"; }
more_snapshots() { [ "$(snapshots)" -gt "$1" ]; }
# last_summary: the --exec line of the subscriber's last exit summary
last_summary() { grep -- '^clustermon-sub: --exec: [0-9]* run' "$TMP/sub.err" | tail -1; }

T0=$(date -d '2022-07-02T10:00:00+08:00' +%s)000
n=0
# breach FIRM / clear FIRM: two readings over cod-limit's 50 mg/L (it fires
# on the second), or one under its clear level of 40 (it resolves)
breach() {
    n=$((n + 2))
    printf '%s,cod,70,%s\n%s,cod,71,%s\n' "$1" "$((T0 + n * 60000))" "$1" "$((T0 + n * 60000 + 1000))" |
        AG -a "b$n" -
}
clear_cod() {
    n=$((n + 1))
    printf '%s,cod,10,%s\n' "$1" "$((T0 + n * 60000))" | AG -a "c$n" -
}

make_config "$TMP/d.conf"
check "daemon starts" start_daemon "$TMP/d.conf"

# ---- 1. live ------------------------------------------------------------------------
start_sub r1
wait_for more_snapshots 0
breach ee-001
check "a live alert runs the command" wait_for has_calls 'r1 cod-limit:ee-001 firing snap=false syn=false ok'
check "the state file is written, mode 0600" wait_for test -s "$SUBSTATE"
check "  mode 0600" [ "$(stat -c %a "$SUBSTATE")" = 600 ]
check "it records ee-001 as delivered firing" \
    wait_for jqe '.delivered["energy-env"]["cod-limit:ee-001"].state == "firing" and (.pending | length) == 0' "$SUBSTATE"

# ---- 2. down while one fires and another resolves --------------------------------
stop_sub TERM
breach ee-002
clear_cod ee-001
sleep 0.3
before=$(wc -l < "$CALLS")
start_sub r2
check "back up: the alert that fired meanwhile runs once, from the snapshot" \
    wait_for has_calls 'r2 cod-limit:ee-002 firing snap=true syn=false ok'
check "and the one that resolved meanwhile runs once, as a synthesized resolved event" \
    wait_for has_calls 'r2 cod-limit:ee-001 resolved snap=true syn=true ok'
sleep 0.5
check "  exactly those two runs" [ "$(tail -n +$((before + 1)) "$CALLS" | grep -c ' ok$')" = 2 ]
check "  ee-002 once in all" [ "$(calls '.* cod-limit:ee-002 .* ok')" = 1 ]
check "  ee-001 twice in all: firing, then resolved" \
    [ "$(grep ' cod-limit:ee-001 .* ok$' "$CALLS" | awk '{ print $3 }' | tr '\n' ,)" = firing,resolved, ]
check "the synthesized event keeps what is known and says what is not (seq, ts, observed: null)" \
    jqe -s 'map(select(.id == "cod-limit:ee-001" and .synthesized)) | length == 1 and
        (.[0] | .seq == null and .ts == null and .observed == null and .firm == "ee-001"
         and .rule == "cod-limit" and .since_ms > 0 and (has("details") | not))' "$TMP/inputs"
check "ee-001 is no longer recorded; ee-002 is, firing" \
    wait_for jqe '(.delivered["energy-env"] | has("cod-limit:ee-001") | not) and
        .delivered["energy-env"]["cod-limit:ee-002"].state == "firing"' "$SUBSTATE"
check "the subscriber said what the snapshot brought" \
    grep -q 'snapshot: --exec gets 1 alerts it was not given yet and 1 resolved meanwhile' "$TMP/sub.err"

# ---- 3. a restart with nothing new ---------------------------------------------------
stop_sub TERM
before=$(wc -l < "$CALLS")
snaps=$(snapshots)
start_sub r3
check "restarted with nothing new: it took its snapshot" wait_for more_snapshots "$snaps"
sleep 1
stop_sub TERM
check "  and ran the command 0 times" [ "$(wc -l < "$CALLS")" = "$before" ]
check "  its summary says 0 run" grep -q -- '--exec: 0 run, 0 ok, 0 failed' <<< "$(last_summary)"
snaps=$(snapshots)

# ---- 4. failures: retried in order, then given up ----------------------------------
echo 2 > "$TMP/fail/cod-limit:ee-005"
echo 100 > "$TMP/fail/cod-limit:ee-006"
start_sub r4
wait_for more_snapshots "$snaps"
n=$((n + 2))
# one batch: ee-005 fires and resolves, two events of one id
printf 'ee-005,cod,70,%s\nee-005,cod,71,%s\nee-005,cod,10,%s\n' "$((T0 + n * 60000))" \
    "$((T0 + n * 60000 + 1000))" "$((T0 + n * 60000 + 2000))" | AG -a f1 -
breach ee-006
check "a command failing twice, then succeeding, is delivered once" \
    wait_for has_calls 'r4 cod-limit:ee-005 firing snap=false syn=false ok'
check "  after two failed runs" [ "$(calls 'r4 cod-limit:ee-005 firing .* fail')" = 2 ]
check "  its resolved event waited for it, and ran after it, once" \
    wait_for sh -c "[ \"\$(grep ' cod-limit:ee-005 ' '$CALLS' | grep -v start | awk '{ print \$3 \"-\" \$6 }' | tr '\n' ,)\" = firing-fail,firing-fail,firing-ok,resolved-ok, ]"
check "  the retries were said" grep -q 'cod-limit:ee-005: run 2 failed; retry 2 of 3 in 200 ms' "$TMP/sub.err"
check "  and the delivery after them" grep -q 'cod-limit:ee-005 delivered after 2 failed runs' "$TMP/sub.err"
check "a command that keeps failing is given up after 1 + 3 runs" \
    wait_for grep -q 'cod-limit:ee-006: giving up after 4 failed runs (--retries 3): this event is dropped' "$TMP/sub.err"
check "  run exactly 4 times" [ "$(calls 'r4 cod-limit:ee-006 .* fail')" = 4 ]
check "  and not retried after a restart" jqe '.delivered["energy-env"] | has("cod-limit:ee-006")' "$SUBSTATE"
stop_sub TERM
check "the summary counts the failures and the given-up event" \
    grep -qE -- '--exec: 8 run, 2 ok, 6 failed \(0 timed out\); 2 events delivered, 1 given up, 0 pending' <<< "$(last_summary)"

# ---- 5. kill -9 while the command runs -----------------------------------------------
touch "$TMP/slow/cod-limit:ee-008"
snaps=$(snapshots)
start_sub r5
wait_for more_snapshots "$snaps"
breach ee-008
check "the command for ee-008 is running" wait_for has_calls 'r5 cod-limit:ee-008 firing .* start'
stop_sub KILL
rm -f "$TMP/slow/cod-limit:ee-008"
check "  the state file has it pending" jqe '.pending | map(.id) == ["cod-limit:ee-008"]' "$SUBSTATE"
start_sub r6
check "after the restart it is delivered" wait_for has_calls 'r6 cod-limit:ee-008 firing snap=false syn=false ok'
check "  the restart said it ran the pending event first" \
    grep -q -- '--exec: 1 events pending from the last run: running them first' "$TMP/sub.err"
sleep 0.5
check "  once by the new run (the killed run may have finished it too: at least once)" \
    [ "$(calls 'r6 cod-limit:ee-008 .* ok')" = 1 ]
check "  and nothing else ran" [ "$(grep -c '^r6 .* start$' "$CALLS")" = 1 ]
stop_sub TERM
check "  the state file records it delivered, nothing pending" \
    jqe '.delivered["energy-env"]["cod-limit:ee-008"].state == "firing" and (.pending | length) == 0' "$SUBSTATE"

# ---- --count: the last alert's command runs before the exit -----------------------
"$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --no-snapshot -n 1 -t 20000 \
    -x "cat >> '$TMP/count.out'" > /dev/null 2> "$TMP/count.err" &
CPID=$!
PIDS+=("$CPID")
sleep 0.5
breach ee-010
wait_for sh -c "! kill -0 $CPID 2>/dev/null"
wait "$CPID"
check "-n 1 -x: exits 0 after one alert" [ $? = 0 ]
check "  having run the command for it" jqe -s 'length == 1 and .[0].id == "cod-limit:ee-010"' "$TMP/count.out"

# ---- a damaged state file is refused, naming the field ----------------------------
cp "$SUBSTATE" "$TMP/good.state"
jq '.delivered["energy-env"]["cod-limit:ee-002"].seq = "x"' "$TMP/good.state" > "$SUBSTATE"
timeout 10 "$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --state-file "$SUBSTATE" -x true -t 2000 \
    > /dev/null 2> "$TMP/bad.err"
rc=$?
check "a state file with a bad field is refused: exit 1" [ "$rc" = 1 ]
check "  naming the field" grep -q 'delivered.energy-env.cod-limit:ee-002.seq: not a non-negative integer' "$TMP/bad.err"
check "  and the file is left as it was" \
    jqe '.delivered["energy-env"]["cod-limit:ee-002"].seq == "x"' "$SUBSTATE"

stop_daemon TERM
finish
