#!/usr/bin/env bash
# An HA pair (README "HA pair"): two daemons that both hold the whole truth.
#  1. Agents stream the demo data with --ha to both while side A is SIGKILLed
#     and restarted again and again: at the end both sides' totals and reports
#     equal the figures computed from the data files, to the last unit; both
#     published the same transitions (id, state, n); a subscriber on both
#     (-e A -e B) printed each of them exactly once, and a restart of it with
#     its state file prints nothing again.
#  2. Side B's disk dies: its state_dir is wiped; data keeps coming (to A, and
#     into the agents' spools for B); `clustermonctl reseed` rebuilds B's
#     state_dir from A's snapshot + WAL; more data comes while B is still
#     down; B starts on the copy, the agents' spools fill in the rest, and
#     both sides' totals equal the expected ones.
#  3. A re-seeded side whose copy is older than what it had settled (it was
#     ahead of the other): the agent resends from where it is, from the spool.
#
#   BIN=build bash tests/ha_e2e.sh        (part of make check)
SUITE=ha
source "$(dirname "$0")/lib.sh"

# side NAME: its endpoints, state dir and config (group_max high, so that each
# transition is published as itself and the history lists it)
side_conf() {
    local n=$1
    INGEST=ipc://$TMP/$n-ingest.ipc ALERTS=ipc://$TMP/$n-alerts.ipc
    CONTROL=ipc://$TMP/$n-control.ipc STATE=$TMP/$n-state
    make_config "$TMP/$n.conf" snapshot_interval_s=2 fsync=always
    sed -i 's/^group_max = .*/group_max = 100000/' "$TMP/$n.conf"
}
side_conf a
side_conf b
start_side() { # NAME: starts it, sets PID_NAME
    CONTROL=ipc://$TMP/$1-control.ipc
    start_daemon "$TMP/$1.conf" "$TMP/$1.log" || return 1
    eval "PID_$1=\$DPID"
}
kill_side() { # NAME SIGNAL
    local pid
    eval "pid=\$PID_$1"
    kill "-$2" "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
}
ctl_on() { local n=$1; shift; "$BIN/clustermonctl" -e "ipc://$TMP/$n-control.ipc" -t 5000 "$@"; }
HA="ipc://$TMP/a-ingest.ipc,ipc://$TMP/b-ingest.ipc"
agent() { # ID ARGS...: an --ha agent, retrying forever
    local id=$1; shift
    "$BIN/clustermon-agent" -s "$TMP/spool" -a "$id" --ha "$HA" -t 500 "$@"
}

# The expected figures, from the data files and the registry (exact decimals).
expected() { # YEAR METRIC -> [energy-env, new-energy]
    /usr/bin/python3 - "$ROOT/daemon/demo" "$1" "$2" << 'PY'
import csv, sys
from decimal import Decimal
d, year, metric = sys.argv[1:]
cl = {r["id"]: r["cluster"] for r in csv.DictReader(open(d + "/registry.csv", encoding="utf-8"))}
s = {"energy-env": Decimal(0), "new-energy": Decimal(0)}
for f in ("2021.csv", "2022.csv"):
    for r in csv.DictReader(open(d + "/" + f, encoding="utf-8")):
        if r["metric"] == metric and r["period"][:4] == year:
            s[cl[r["enterprise"]]] += Decimal(r["value"])
print("[%s,%s]" % (s["energy-env"], s["new-energy"]))
PY
}
totals_on() { # SIDE YEAR METRIC -> [energy-env, new-energy]
    ctl_on "$1" totals --metric "$3" --period "$2" --json |
        jq -c '[.clusters[] | select(.id == "energy-env" or .id == "new-energy") | .total | tonumber]'
}
# paced FILE: the file's lines, a few at a time, so the stream lasts seconds
paced() { awk -v every="$2" '{ print; if (NR % every == 0) { fflush(); system("sleep 0.05") } }' "$1"; }

# ---- 1. streaming to both while side A is killed again and again --------------------
check "side A starts" start_side a
check "side B starts" start_side b
"$BIN/clustermon-sub" -v -e "ipc://$TMP/a-alerts.ipc" -C "ipc://$TMP/a-control.ipc" \
    -e "ipc://$TMP/b-alerts.ipc" -C "ipc://$TMP/b-control.ipc" --state-file "$TMP/sub.state" \
    > "$TMP/sub.out" 2> "$TMP/sub.err" &
SUBPID=$!
PIDS+=($SUBPID)
wait_for 5 grep -q 'snapshot from .*b-control' "$TMP/sub.err"
# one agent streams the period figures (2021, then 2022), one the readings
{ cat "$ROOT/daemon/demo/2021.csv"; tail -n +2 "$ROOT/daemon/demo/2022.csv"; } > "$TMP/periods.csv"
rows=$(($(wc -l < "$TMP/periods.csv") - 1 + $(wc -l < "$ROOT/daemon/demo/readings.csv") - 1))
paced "$TMP/periods.csv" 150 | timeout 300 "$BASH" -c "$(declare -f agent); BIN=$BIN TMP=$TMP HA=$HA agent periods -v -b 100 -w 4 -r 0 -" 2> "$TMP/periods.err" &
P1=$!
paced "$ROOT/daemon/demo/readings.csv" 10 | timeout 300 "$BASH" -c "$(declare -f agent); BIN=$BIN TMP=$TMP HA=$HA agent readings -b 5 -r 0 -" 2> "$TMP/readings.err" &
P2=$!
PIDS+=($P1 $P2)
kills=0
for _ in 1 2 3 4; do
    sleep 0.9
    kill -0 "$P1" 2> /dev/null || break
    kill_side a KILL
    kills=$((kills + 1))
    sleep 0.6
    start_side a || break
done
check "side A was SIGKILLed mid-stream ($kills times) and came back each time" \
    [ "$kills" -ge 3 ] && kill -0 "$PID_a"
wait "$P1"
rc1=$?
wait "$P2"
rc2=$?
check "the period agent delivered everything to both sides (exit 0)" [ "$rc1" = 0 ]
check "the readings agent too" [ "$rc2" = 0 ]
[ "$rc1" = 0 ] || tail -5 "$TMP/periods.err"
check "the agent's summary: both sides settled up to the same last seq" \
    [ "$(grep -o '^clustermon-agent: [AB] (.*settled up to seq [0-9]*' "$TMP/periods.err" |
        sed 's/.* //' | sort -u | wc -l)" = 1 ] && [ "$(grep -c 'settled up to seq' "$TMP/periods.err")" = 2 ]
check "their spools are empty: both sides settled every batch" \
    [ "$(ls "$TMP/spool/periods" "$TMP/spool/readings" | grep -c '\.batch$')" = 0 ]
check "both sides' cursors are at the last seq" \
    jqe -Rs 'split("\n") | map(select(startswith("side"))) | map(split(" ")[2]) | unique | length == 1' \
        "$TMP/spool/periods/ha"
for s in a b; do
    check "side $s: samples applied == $rows rows, nothing twice" \
        [ "$(ctl_on $s status --json | jq -r .samples_applied)" = "$rows" ]
    exact=1
    for y in 2021 2022; do
        for m in revenue profit; do
            want=$(expected $y $m)
            got=$(totals_on $s $y $m)
            [ "$got" = "$want" ] || { exact=0; echo "# side $s $y $m: $got, want $want"; }
        done
    done
    check "side $s: 2021 and 2022 revenue and profit totals equal the data files' exactly" [ "$exact" = 1 ]
done
check "the two sides' reports are the same, figure for figure" \
    cmp <(ctl_on a report --year 2021 --json | jq -S .) <(ctl_on b report --year 2021 --json | jq -S .)
check "  2022 too" \
    cmp <(ctl_on a report --year 2022 --json | jq -S .) <(ctl_on b report --year 2022 --json | jq -S .)

# Each transition once: keys (id, state, n). The history journals every
# publication; a SIGKILL between a publication and its journal record may
# publish one again at the restart, with the same n: unique keys then.
sleep 2 # the last evaluations published
hist_keys() { ctl_on "$1" history --limit 100000 --json |
    jq -c '[.entries[] | select(.kind == "alert") | [.alert_id, .state, .n]] | unique'; }
hist_keys a > "$TMP/hist.a"
hist_keys b > "$TMP/hist.b"
ntrans=$(jq length "$TMP/hist.b")
check "the sides published transitions ($ntrans), every one with its n" \
    jqe 'length > 10 and all(.[]; .[2] != null and .[2] >= 1)' "$TMP/hist.b"
check "both sides published the same transitions (id, state, n)" cmp "$TMP/hist.a" "$TMP/hist.b"
stop_pid "$SUBPID"
jq -sc '[.[] | [.id, .n]] | sort' "$TMP/sub.out" > "$TMP/sub.keys"
check "the subscriber printed each transition once: no key twice" \
    jqe '(map(tostring) | unique | length) == length' "$TMP/sub.keys"
check "  and every one of the history's (live, or from a snapshot after a gap)" \
    cmp "$TMP/sub.keys" <(jq -c '[.[] | [.[0], .[2]]] | sort' "$TMP/hist.b")
check "  the live ones with the history's state" \
    cmp <(jq -sc '[.[] | select(.snapshot | not) | [.id, .state, .n]] | sort' "$TMP/sub.out") \
        <(jq -c --slurpfile s <(jq -sc '[.[] | select(.snapshot | not) | [.id, .n]]' "$TMP/sub.out") \
            '[.[] | select([.[0], .[2]] as $k | $s[0] | index([$k])) ] | sort' "$TMP/hist.b")
check "  and it dropped the other side's copies" grep -q 'HA pair: [0-9]* events printed once, [1-9][0-9]* copies' "$TMP/sub.err"
check "the state file records the delivered keys" jqe '.delivered_keys | length > 0' "$TMP/sub.state"
# restarted with its state file: the snapshots of both sides bring nothing new
"$BIN/clustermon-sub" -e "ipc://$TMP/a-alerts.ipc" -C "ipc://$TMP/a-control.ipc" \
    -e "ipc://$TMP/b-alerts.ipc" -C "ipc://$TMP/b-control.ipc" --state-file "$TMP/sub.state" \
    -t 2500 > "$TMP/sub2.out" 2> "$TMP/sub2.err"
check "restarted on its state file, it prints nothing again" [ ! -s "$TMP/sub2.out" ]
check "  (the firing alerts of both snapshots were known)" \
    grep -q 'timeout: 0 alerts received' "$TMP/sub2.err"

# ---- 2. side B's disk dies: re-seed it from side A ----------------------------------
# extra rows for 2030, in two parts: X while B is gone, Y after the re-seed
firms > "$TMP/firms"
awk '{ printf "%s,revenue,1000,2030-01\n", $1 }' "$TMP/firms" > "$TMP/x.csv"
awk '{ printf "%s,revenue,2000,2030-02\n", $1 }' "$TMP/firms" > "$TMP/y.csv"
nee=$(awk -F, 'NR > 1 && $0 ~ /,energy-env,/' "$ROOT/daemon/demo/registry.csv" | wc -l)
nne=$(awk -F, 'NR > 1 && $0 ~ /,new-energy,/' "$ROOT/daemon/demo/registry.csv" | wc -l)
want2030="[$((nee * 3000)),$((nne * 3000))]"
kill_side b KILL
rm -rf "$TMP/b-state"
agent extra -b 50 -r 1 "$TMP/x.csv" 2> "$TMP/x.err"
check "with B gone, the agent delivers X to A and keeps it spooled for B (exit 3)" [ "$?" = 3 ]
check "  it names the side it stopped for" grep -q '^clustermon-agent: B (.*b-ingest.ipc): stopped delivering' "$TMP/x.err"
ctl_on a reseed "$TMP/b-state" > "$TMP/reseed.out" 2> "$TMP/reseed.err"
check "clustermonctl reseed rebuilds B's state_dir from A's snapshot + WAL" [ "$?" = 0 ]
check "  and says what it copied" grep -q "^re-seeded $TMP/b-state from .*: snapshot [0-9]*" "$TMP/reseed.out"
check "  a snapshot, the alert history and seqs" \
    bash -c "ls '$TMP/b-state' | grep -q '^snap-.*\.snap$' && [ -s '$TMP/b-state/history' ] && [ -s '$TMP/b-state/alert-seqs' ]"
check "a re-seed refuses a directory that is not empty" \
    bash -c "! '$BIN/clustermonctl' -e 'ipc://$TMP/a-control.ipc' reseed '$TMP/b-state' 2> '$TMP/reseed2.err'"
check "  saying why" grep -q 'is not empty' "$TMP/reseed2.err"
agent extra -b 50 -r 1 "$TMP/y.csv" 2> "$TMP/y.err"
check "Y goes to A while B is still down (exit 3, spooled for B)" [ "$?" = 3 ]
check "B starts on the re-seeded state" start_side b
check "  from the copied snapshot" grep -q 'started from snapshot' "$TMP/b.log"
agent extra -b 50 -t 3000 -r 5 -v "$TMP/y.csv" 2> "$TMP/y2.err"
check "the agent's spool fills in the rest for B (exit 0)" [ "$?" = 0 ]
check "  its spool is empty" [ "$(ls "$TMP/spool/extra" | grep -c '\.batch$')" = 0 ]
for s in a b; do
    check "side $s: 2030 revenue is X + Y exactly ($want2030)" [ "$(totals_on $s 2030 revenue)" = "$want2030" ]
    exact=1
    for y in 2021 2022; do
        for m in revenue profit; do
            [ "$(totals_on $s $y $m)" = "$(expected $y $m)" ] || exact=0
        done
    done
    check "side $s: the demo years' totals still exact" [ "$exact" = 1 ]
done
check "both sides applied the same samples" \
    [ "$(ctl_on a status --json | jq -r .samples_applied)" = "$(ctl_on b status --json | jq -r .samples_applied)" ]
check "the re-seeded side kept the history it was copied" \
    jqe 'length > 10' <(hist_keys b)

# ---- 3. the re-seeded side is behind what it had settled: resent from the spool ----
# A is down while Z goes to B only; then B's disk dies and B is re-seeded
# from A, which never got Z: B's copy expects Z's first seq again, though the
# agent's cursor for B is past it. The spool still has Z (A has not settled
# it), so the agent goes back to where B is.
awk '{ printf "%s,revenue,4000,2030-03\n", $1 }' "$TMP/firms" > "$TMP/z.csv"
want2030z="[$((nee * 7000)),$((nne * 7000))]"
kill_side a KILL
agent late -b 50 -r 1 "$TMP/z.csv" 2> "$TMP/z.err"
check "with A down, Z goes to B only (exit 3)" [ "$?" = 3 ]
kill_side b KILL
rm -rf "$TMP/b-state"
check "A restarts" start_side a
ctl_on a reseed "$TMP/b-state" > "$TMP/reseed3.out" 2>&1
check "B is re-seeded from A, which has no Z" [ "$?" = 0 ]
check "B starts on the copy" start_side b
agent late -b 50 -t 3000 -r 5 -v "$TMP/z.csv" 2> "$TMP/z2.err"
check "the agent delivers Z to A, and to B again from where B is (exit 0)" [ "$?" = 0 ]
check "  saying that B went back" grep -q 'b-ingest.ipc expects seq 1 of stream .*: its state was reset' "$TMP/z2.err"
for s in a b; do
    check "side $s: 2030 revenue is X + Y + Z exactly ($want2030z)" [ "$(totals_on $s 2030 revenue)" = "$want2030z" ]
done

kill_side a TERM
kill_side b TERM
check "no daemon logged an error" bash -c "! grep -h '\[error\]' '$TMP/a.log' '$TMP/b.log'"
finish
