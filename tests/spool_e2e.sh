#!/usr/bin/env bash
# The agent's spool end to end: the real daemon and agents as processes on
# ipc:// endpoints in a temp dir. Every wait is bounded, every child is killed
# and reaped, and the directory is removed on exit, pass or fail.
#
#   (a) an agent started while the daemon is down spools everything, and
#       delivers it once the daemon starts (exit 0, spool empty);
#   (b) an agent killed with SIGKILL mid-stream (twice) and restarted on the
#       same file ends with every sample applied exactly once and exact totals;
#   (c) with two endpoints, the first a dead ipc path, the agent fails over;
#   (d) a refused row is said by line and kept in the spool's rejected/; the agent exits 1.
#
#   BIN=build tests/spool_e2e.sh
#   BIN=build/sanitize DBIN=build tests/spool_e2e.sh   (agents from BIN, daemon and ctl from DBIN)
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-build}
DBIN=${DBIN:-$BIN}
ROOT=$PWD
TMP=$(mktemp -d /tmp/clustermon-spool-e2e.XXXXXX)
PIDS=()
pass=0
fail=0
DPID=

cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2> /dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # so that EXIT runs cleanup

ok() { pass=$((pass + 1)); echo "ok   - $*"; }
no() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else no "$name"; fi; }

INGEST=ipc://$TMP/ingest.ipc
CONTROL=ipc://$TMP/control.ipc
SPOOL=$TMP/spool
CTL=(timeout 10 "$DBIN/clustermonctl" -e "$CONTROL" -t 3000)
AGENT=("$BIN/clustermon-agent" -s "$SPOOL")

sed -e "s|^ingest = .*|ingest = $INGEST|" -e "s|^alerts = .*|alerts = ipc://$TMP/alerts.ipc|" \
    -e "s|^control = .*|control = $CONTROL|" -e "s|^state_dir = .*|state_dir = $TMP/state|" \
    -e "s|^registry = .*|registry = $ROOT/daemon/demo/registry.csv|" \
    -e "s|^future_slack_days = .*|future_slack_days = 100000|" \
    daemon/clustermond.conf > "$TMP/d.conf"

start_daemon() {
    "$DBIN/clustermond" -c "$TMP/d.conf" -l warn 2>> "$TMP/daemon.log" &
    DPID=$!
    PIDS+=("$DPID")
    for _ in $(seq 1 100); do
        "$DBIN/clustermonctl" -e "$CONTROL" -t 200 ping > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
applied() { "${CTL[@]}" status --json | jq -r .samples_applied; }
# batches AGENT_ID: batch files in that agent's spool
batches() { find "$SPOOL/$1" -maxdepth 1 -name '*.batch' 2> /dev/null | wc -l; }
# wait_for SECONDS COMMAND...: polls until the command succeeds
wait_for() {
    local n=$(($1 * 20)); shift
    for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.05; done
    return 1
}
# waitpid_bounded PID SECONDS: waits for a child, kills it after SECONDS; sets RC
waitpid_bounded() {
    local pid=$1 n=$(($2 * 20))
    for _ in $(seq 1 "$n"); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2> /dev/null
    wait "$pid"
    RC=$?
}

# One row per firm, month and year: every (firm, metric, period) distinct,
# so a sample applied twice shows in samples_applied, a lost one in a total.
# gen YEAR0 YEARS PER_YEAR > file
cut -d, -f1 daemon/demo/registry.csv | grep '^ee-' > "$TMP/firms"
gen() {
    awk -v y0="$1" -v ny="$2" -v per="$3" '
        { f[NR] = $1 } END {
          for (y = y0; y < y0 + ny; y++) { k = 0
            for (m = 1; m <= 12; m++) for (i = 1; i <= NR && k < per; i++) {
              printf "%s,energy,%d,%d-%02d\n", f[i], i * 10 + m, y, m; k++ } } }' "$TMP/firms"
}
# totals_ok FILE: every year's energy-env total equals the file's own sum
totals_ok() {
    local bad=0 y want got
    awk -F, '{ split($4, p, "-"); s[p[1]] += $3 } END { for (y in s) print y, s[y] }' "$1" | sort > "$TMP/want"
    while read -r y want; do
        got=$("${CTL[@]}" totals --metric energy --period "$y" --json |
              jq '.clusters[] | select(.id == "energy-env") | .total | tonumber')
        [ "$got" = "$want" ] || { echo "  $y: total '$got', want $want"; bad=1; break; }
    done < "$TMP/want"
    return $bad
}

# ---- (a) the daemon is down at first ----------------------------------------------
gen 2050 2 1000 > "$TMP/a.csv" # 2,000 rows, 2050..2051
timeout 30 "${AGENT[@]}" -e "$INGEST" -a spool-a -b 100 -t 300 -r 0 "$TMP/a.csv" 2> "$TMP/a.err" &
APID=$!
PIDS+=("$APID")
spooled_all() { [ "$(batches spool-a)" = 20 ]; }
check "(a) with the daemon down, the agent spools all 20 batches" wait_for 10 spooled_all
check "(a) and keeps running" kill -0 "$APID"
check "(a) the daemon starts" start_daemon
waitpid_bounded "$APID" 20
check "(a) the agent delivers once the daemon is up and exits 0" [ "$RC" = 0 ]
check "(a) 2,000 samples applied" [ "$(applied)" = 2000 ]
check "(a) the spool is empty, its state file kept" \
    sh -c "[ $(batches spool-a) = 0 ] && [ -f '$SPOOL/spool-a/state' ]"
check "(a) exact totals for 2050 and 2051" totals_ok "$TMP/a.csv"

# ---- (b) SIGKILL mid-stream, twice, then a clean run -----------------------------------
gen 2100 100 1000 > "$TMP/b.csv" # 100,000 rows, 2100..2199
before=$(applied)
killed_mid=1
for round in 1 2; do
    "${AGENT[@]}" -e "$INGEST" -a spool-b -b 100 -t 2000 "$TMP/b.csv" 2> "$TMP/b$round.err" &
    BPID=$!
    PIDS+=("$BPID")
    # kill it once this run got something applied (bounded: a slow run needs
    # longer than a fixed 0.3 s)
    round_start=$(applied)
    grew() { [ "$(applied)" -gt "$round_start" ]; }
    wait_for 20 grew
    kill -KILL "$BPID" 2> /dev/null
    wait "$BPID" 2> /dev/null
    now=$(applied)
    echo "  (b) killed run $round: $((now - before)) of 100000 applied, $(batches spool-b) batches spooled"
    [ $((now - before)) -lt 100000 ] || killed_mid=0
done
check "(b) the kills landed mid-stream" [ "$killed_mid" = 1 ]
timeout 60 "${AGENT[@]}" -e "$INGEST" -a spool-b -b 100 -t 2000 -v "$TMP/b.csv" 2> "$TMP/b3.err"
rc=$?
check "(b) the restarted agent exits 0" [ "$rc" = 0 ]
check "(b) it resumed the file where the spool left it" grep -q 'resuming after byte' "$TMP/b3.err"
check "(b) every one of 100,000 samples applied exactly once" [ "$(($(applied) - before))" = 100000 ]
check "(b) exact totals for each of the 100 years" totals_ok "$TMP/b.csv"
check "(b) the spool is empty" [ "$(batches spool-b)" = 0 ]
timeout 10 "${AGENT[@]}" -e "$INGEST" -a spool-b -b 100 "$TMP/b.csv" 2> /dev/null
rc=$?
check "(b) a rerun on the same file sends nothing again" \
    [ "$rc:$(applied)" = "0:$((before + 100000))" ]

# ---- (c) failover from a dead endpoint ---------------------------------------------------
gen 2060 1 500 > "$TMP/c.csv"
before=$(applied)
timeout 30 "${AGENT[@]}" -e "ipc://$TMP/nobody-here.ipc,$INGEST" -a spool-c -b 100 -t 1000 -r 10 -v \
    "$TMP/c.csv" 2> "$TMP/c.err"
rc=$?
check "(c) with a dead first endpoint the agent fails over and exits 0" [ "$rc" = 0 ]
check "(c) and says so" grep -q "failing over from ipc://$TMP/nobody-here.ipc to $INGEST" "$TMP/c.err"
check "(c) 500 samples applied once" [ "$(($(applied) - before))" = 500 ]

# ---- (d) a refused row: said by line, kept in rejected/ -------------------------------------
printf 'ee-999,energy,1,2070\n' > "$TMP/d.csv"
timeout 30 "${AGENT[@]}" -e "$INGEST" -a spool-d "$TMP/d.csv" 2> "$TMP/d.err"
rc=$?
check "(d) a refused row: exit 1 with its line and reason" \
    sh -c "[ $rc = 1 ] && grep -q \"d.csv:1: unknown firm 'ee-999'\" '$TMP/d.err'"
check "(d) written to rejected/SEQ.rejected.csv, the spool empty" \
    sh -c "[ \$(ls '$SPOOL/spool-d/rejected' | wc -l) = 1 ] && [ $(batches spool-d) = 0 ] &&
           grep -q 'refused rows written to $SPOOL/spool-d/rejected/.*rejected.csv' '$TMP/d.err'"

check "the daemon ran throughout" kill -0 "$DPID"
if [ "$fail" -gt 0 ]; then
    for f in a.err b3.err c.err daemon.log; do echo "--- $f"; tail -5 "$TMP/$f"; done
fi
echo "spool-e2e: $pass passed, $fail failed"
[ "$fail" = 0 ]
