#!/usr/bin/env bash
# End-to-end tests: the real binaries as processes on ipc:// endpoints in a
# temporary directory. Every wait is bounded, every child is reaped, and the
# directory is removed on exit, pass or fail.
#
#   BIN=build tests/e2e.sh          (make e2e)
#   BIN=build VALGRIND=1 tests/e2e.sh   daemon under valgrind (make memcheck)
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-build}
ROOT=$PWD
TMP=$(mktemp -d /tmp/clustermon-e2e.XXXXXX)
PIDS=()
pass=0
fail=0

cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok   - $*"; }
no() { fail=$((fail + 1)); echo "FAIL - $*"; }
# check NAME COMMAND...: passes if the command exits 0
check() { local name=$1; shift; if "$@"; then ok "$name"; else no "$name"; fi; }
# bytes HEX: writes the bytes a hex string spells
bytes() { printf "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }

INGEST=ipc://$TMP/ingest.ipc
ALERTS=ipc://$TMP/alerts.ipc
CONTROL=ipc://$TMP/control.ipc
CTL=("$BIN/clustermonctl" -e "$CONTROL" -t 5000)
AGENT=(timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -t 5000)

# The default config with the endpoints moved into the temp dir.
sed -e "s|^ingest = .*|ingest = $INGEST|" -e "s|^alerts = .*|alerts = $ALERTS|" \
    -e "s|^control = .*|control = $CONTROL|" -e "s|^state_dir = .*|state_dir = $TMP/state|" \
    -e "s|^registry = .*|registry = $ROOT/daemon/demo/registry.csv|" \
    daemon/clustermond.conf > "$TMP/e2e.conf"
# the figures below are for 2030: periods after this month are refused by default
sed -i 's/^future_slack_days = .*/future_slack_days = 100000/' "$TMP/e2e.conf"
# group writes on (off by default, README "Durability"): every check below
# runs through them
sed -i 's/^group_writes = .*/group_writes = yes/' "$TMP/e2e.conf"

# ---- programs answer --help and --version ----------------------------------
for prog in clustermond clustermon-agent clustermon-sub clustermonctl; do
    check "$prog --help" sh -c "'$BIN/$prog' --help | grep -q usage"
    check "$prog --version" sh -c "'$BIN/$prog' --version | grep -q '[0-9]\.[0-9]'"
done

# ---- config and registry errors stop start-up with status 2 ----------------
check "-n accepts the default config" \
    sh -c "'$BIN/clustermond' -n -c '$TMP/e2e.conf' | grep -q ': OK: 4 metrics, 2 clusters, 6 rules; .*: 243 firms'"
sed 's/^above = 50/above = fifty/' "$TMP/e2e.conf" > "$TMP/bad.conf"
"$BIN/clustermond" -n -c "$TMP/bad.conf" > "$TMP/out" 2>&1
rc=$?
line=$(grep -n '^above = fifty' "$TMP/bad.conf" | cut -d: -f1)
check "bad number: exit 2 naming file:line: field" \
    sh -c "[ $rc -eq 2 ] && grep -q 'bad.conf:$line: rule.cod-limit.above: .fifty. is not a number' '$TMP/out'"
{ head -1 daemon/demo/registry.csv; echo 'ee-900,Sample,energy-env,no-such-chain,member,'; } \
    > "$TMP/reg.csv"
sed "s|^registry = .*|registry = $TMP/reg.csv|" "$TMP/e2e.conf" > "$TMP/badreg.conf"
"$BIN/clustermond" -n -c "$TMP/badreg.conf" > "$TMP/out" 2>&1
rc=$?
check "bad registry: exit 2 naming file:line: field" \
    sh -c "[ $rc -eq 2 ] && grep -q 'reg.csv:2: chain: firm .ee-900.: cluster .energy-env. has no chain .no-such-chain.' '$TMP/out'"

sed "s|^ingest = .*|ingest = tcp://0.0.0.0:17601|" "$TMP/e2e.conf" > "$TMP/open.conf"
"$BIN/clustermond" -n -c "$TMP/open.conf" > "$TMP/out" 2>&1
rc=$?
check "plain TCP beyond loopback is refused without allow_plaintext = yes" \
    sh -c "[ $rc -eq 2 ] && grep -q 'open.conf:[0-9]*: daemon.ingest: .tcp://0.0.0.0:17601. is plain TCP' '$TMP/out'"
sed -i 's/^\[daemon\]/[daemon]\nallow_plaintext = yes/' "$TMP/open.conf"
check "and accepted with it" sh -c "'$BIN/clustermond' -n -c '$TMP/open.conf' > /dev/null"

# ---- start the daemon --------------------------------------------------------
DAEMON=("$BIN/clustermond" -c "$TMP/e2e.conf" -l warn)
if [ "${VALGRIND:-0}" = 1 ]; then
    DAEMON=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
            --log-file="$TMP/valgrind.log" "${DAEMON[@]}")
fi
"${DAEMON[@]}" 2> "$TMP/daemon.log" &
DPID=$!
PIDS+=("$DPID")
ready=0
for _ in $(seq 1 150); do
    if "$BIN/clustermonctl" -e "$CONTROL" -t 200 ping > /dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
check "daemon answers ping" [ "$ready" = 1 ]
[ "$ready" = 1 ] || { cat "$TMP/daemon.log"; echo "e2e: $pass passed, $((fail + 1)) failed"; exit 1; }

status_field() { "${CTL[@]}" status --json | jq -r ".$1"; }

# ---- a subscriber, started before anything is sent ---------------------------
timeout 60 "$BIN/clustermon-sub" -e "$ALERTS" --no-snapshot --cluster energy-env --severity warning \
    > "$TMP/alerts.jsonl" 2> "$TMP/sub.err" &
SUBPID=$!
PIDS+=("$SUBPID")
timeout 60 "$BIN/clustermon-sub" -e "$ALERTS" --no-snapshot --cluster new-energy \
    > "$TMP/alerts-ne.jsonl" 2> /dev/null &
SUB2PID=$!
PIDS+=("$SUB2PID")
sleep 0.3 # a SUB socket's subscription reaches the PUB asynchronously

# ---- the demo data set -------------------------------------------------------
check "agent sends 2021 reports" "${AGENT[@]}" -a e2e-2021 daemon/demo/2021.csv
check "agent sends 2022 reports" "${AGENT[@]}" -a e2e-2022 daemon/demo/2022.csv
send_stdin() { "${AGENT[@]}" -a e2e-cod - < daemon/demo/readings.csv; }
check "agent sends readings from stdin" send_stdin

report_ok() {
    "${CTL[@]}" report --year 2021 --json > "$TMP/report.json" || return 1
    jq -e '.year == 2021
        and (.clusters[] | select(.id == "energy-env")
             | .firms == 197 and .reporting == 197 and .above_scale == 114
               and (.revenue | tonumber) == 20580000000)
        and (.clusters[] | select(.id == "new-energy")
             | .firms == 46 and (.revenue | tonumber) == 6840000000 and (.profit | tonumber) == 448000000)' \
        "$TMP/report.json" > /dev/null
}
check "2021 report: 197/114/20.58e9 and 46/6.84e9/448e6" report_ok
"${CTL[@]}" report --year 2021 > "$TMP/report.txt"
check "human report shows the energy-env line" \
    grep -Eq '^cluster +energy-env +197 +197 +114 +20,580,000,000 ' "$TMP/report.txt"
check "human report shows the new-energy line" \
    grep -Eq '^cluster +new-energy +46 +46 +[0-9]+ +6,840,000,000 +448,000,000$' "$TMP/report.txt"

sleep 0.5
kill -TERM "$SUBPID" "$SUB2PID"
wait "$SUBPID"
sub_rc=$?
wait "$SUB2PID"
# jqe FILTER FILE: jq -e, quietly (a redirect on `check` would hide its FAIL line)
jqe() { jq -e "$@" > /dev/null; }
check "the subscriber exits 0 on SIGTERM" [ "$sub_rc" = 0 ]
check "COD breach reached the subscriber as firing (second breaching sample)" \
    jqe -s '[.[] | select(.rule == "cod-limit")] | length == 2 and (.[0] | .state == "firing"
           and .firm == "ee-024" and .observed == 67.2 and .expected == 50
           and .severity == "warning" and .details.breaching_samples == 2)' "$TMP/alerts.jsonl"
check "and then resolved" \
    jqe -s '[.[] | select(.rule == "cod-limit")][1] | .state == "resolved" and .firm == "ee-024"
            and .observed == 36.4' "$TMP/alerts.jsonl"
check "the filters passed only energy-env warnings" \
    jqe -s 'length > 0 and all(.cluster == "energy-env" and .severity == "warning")' "$TMP/alerts.jsonl"
check "the new-energy filter saw only new-energy's alerts" \
    jqe -s 'length > 0 and all(.cluster == "new-energy")' "$TMP/alerts-ne.jsonl"

# ---- bad input: nacked with a reason, counted, nothing lost ------------------
applied_before=$(status_field samples_applied)

bytes "68656c6c6f" > "$TMP/hello.bin"
"$BIN/tests/tools/zsend" "$INGEST" "$TMP/hello.bin" > "$TMP/out"
check "a malformed frame is nacked" grep -q '^malformed seq=0 ' "$TMP/out"

"$BIN/tests/tools/zsend" -n 3 "$INGEST" "$TMP/hello.bin" > "$TMP/out"
check "a message of three frames is nacked" grep -q '^malformed seq=0 .*frames' "$TMP/out"

printf 'ee-999,revenue,100,2022-07\n' > "$TMP/unknown.csv"
"${AGENT[@]}" -a e2e-bad "$TMP/unknown.csv" 2> "$TMP/out"
rc=$?
check "an unknown firm is refused, the agent exits 1 naming its line" \
    sh -c "[ $rc -eq 1 ] && grep -q \"unknown.csv:1: unknown firm 'ee-999'\" '$TMP/out'"

printf 'ee-001,turnover,100,2022-07\n' > "$TMP/unknown.csv"
"${AGENT[@]}" -a e2e-bad "$TMP/unknown.csv" 2> "$TMP/out"
check "an unknown metric is nacked naming it" grep -q "unknown metric 'turnover'" "$TMP/out"

# {"v":2,"type":"batch","seq":1,"epoch":1,"agent":"e2e","samples":[["ee-001","revenue","abc",0,"2022-07"]]}
HDR=86a17602a474797065a56261746368a373657101a565706f636801a56167656e74a3653265a773616d706c6573
bytes "${HDR}9195a665652d303031a7726576656e7565a361626300a7323032322d3037" > "$TMP/str.bin"
"$BIN/tests/tools/zsend" "$INGEST" "$TMP/str.bin" > "$TMP/out"
check "a non-numeric value is nacked" grep -Eq '^malformed seq=1 .*sample 0.*value' "$TMP/out"

# the samples array claims 20000 elements: more than a batch may hold
# (another agent: seq 1 of e2e was refused for good above, and stays so)
HDR=86a17602a474797065a56261746368a373657101a565706f636801a56167656e74a3653266a773616d706c6573
bytes "${HDR}dd00004e20" > "$TMP/big.bin"
"$BIN/tests/tools/zsend" "$INGEST" "$TMP/big.bin" > "$TMP/out"
check "an oversized batch is nacked as too_large" grep -q '^too_large seq=1 ' "$TMP/out"

# the same valid batch twice: acked twice, applied once
# {"v":2,..,"seq":1,"epoch":1,"agent":"dup","samples":[["ee-001","energy",5,0,"2022-07"]]}
bytes "86a17602a474797065a56261746368a373657101a565706f636801a56167656e74a3647570a773616d706c6573\
9195a665652d303031a6656e657267790500a7323032322d3037" > "$TMP/dup.bin"
"$BIN/tests/tools/zsend" -r 2 "$INGEST" "$TMP/dup.bin" > "$TMP/out"
check "a resent batch is acked both times" [ "$(grep -c '^ok seq=1 accepted=1' "$TMP/out")" = 2 ]
check "and applied once" [ "$(status_field batches_duplicate)" = 1 ]
check "only the one valid sample was applied by all of the above" \
    [ "$(status_field samples_applied)" = $((applied_before + 1)) ]
check "nacks are counted by reason" \
    sh -c "[ \"\$('${CTL[0]}' -e '$CONTROL' status --json | jq '.nacks.malformed + .nacks.unknown_firm + .nacks.unknown_metric + .nacks.too_large + .nacks.partial')\" = 6 ]"
check "earlier data is intact after bad input" report_ok

# ---- restated reports replace; coarser reports take precedence -----------------
total_of() { "${CTL[@]}" totals --metric revenue --period "$1" --json | jq '.clusters[0].total | tonumber'; }
send_line() { printf '%s\n' "$1" | "${AGENT[@]}" -a "e2e-restate-$2" -; }
send_line 'ee-001,revenue,100,2030-07' 1 && send_line 'ee-001,revenue,250.5,2030-07' 2
check "a restated month replaces the earlier value" [ "$(total_of 2030-07)" = 250.5 ]
check "the quarter sums its months" [ "$(total_of 2030-Q3)" = 250.5 ]
send_line 'ee-002,revenue,1000,2030-08' 3
check "months of two firms add up in the cluster" [ "$(total_of 2030-Q3)" = 1250.5 ]
send_line 'ee-001,revenue,900,2030-Q3' 4
check "a firm's quarter report takes precedence over its months" [ "$(total_of 2030-Q3)" = 1900 ]
send_line 'ee-001,revenue,5000,2030' 5
check "a firm's annual report takes precedence over its quarters" [ "$(total_of 2030)" = 6000 ]
check "totals counts the firms that reported" \
    [ "$("${CTL[@]}" totals --metric revenue --period 2030 --json | jq '.clusters[0].reporting')" = 2 ]

# ---- last year's figures from a baseline file ------------------------------------
printf 'enterprise,metric,value,period\nee-001,revenue,1000,2040-01\nee-002,revenue,2500,2040-01\n' \
    > "$TMP/baseline.csv"
check "clustermonctl import-baseline sends a CSV through ingest" \
    sh -c "'${CTL[0]}' -e '$CONTROL' import-baseline --ingest '$INGEST' '$TMP/baseline.csv' | grep -q 'imported 2 samples'"
check "and the figures are there" \
    [ "$("${CTL[@]}" totals --metric revenue --period 2040-01 --json | jq '.clusters[0].total | tonumber')" = 3500 ]

# ---- under load: concurrent agents and control queries ------------------------
# Each agent restates revenue for its own future years: firms x 12 months x
# years, value 1000 each, so every loaded year's total is known exactly.
NAG=4
YEARS=${LOAD_YEARS:-18}
[ "${VALGRIND:-0}" = 1 ] && YEARS=2
cut -d, -f1 daemon/demo/registry.csv | tail -n +2 > "$TMP/firms"
nfirms=$(wc -l < "$TMP/firms")
for k in $(seq 0 $((NAG - 1))); do
    awk -v y0=$((2100 + k * YEARS)) -v ny="$YEARS" '
        { f[NR] = $1 } END {
          for (y = y0; y < y0 + ny; y++) for (m = 1; m <= 12; m++) for (i = 1; i <= NR; i++)
              printf "%s,revenue,1000,%d-%02d\n", f[i], y, m }' "$TMP/firms" > "$TMP/load$k.csv"
done
total_rows=$((NAG * YEARS * 12 * nfirms))
applied_before=$(status_field samples_applied)
lpids=()
for k in $(seq 0 $((NAG - 1))); do
    batch=$(( k % 2 ? 1000 : 50 ))
    timeout 120 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a "load$k" -b $batch "$TMP/load$k.csv" \
        2> "$TMP/load$k.err" &
    lpids+=($!)
    PIDS+=($!)
done
queries_ok=1
for _ in $(seq 1 20); do
    "$BIN/clustermonctl" -e "$CONTROL" -t 15000 status > /dev/null || queries_ok=0
    sleep 0.05
done
load_ok=1
for p in "${lpids[@]}"; do wait "$p" || load_ok=0; done
check "$NAG concurrent agents, $total_rows samples, all acked" [ "$load_ok" = 1 ]
check "control answered throughout the load" [ "$queries_ok" = 1 ]
check "every loaded sample applied exactly once" \
    [ "$(status_field samples_applied)" = $((applied_before + total_rows)) ]
# the records of one drain of the ingest socket are written at once
# (README "Performance"): under concurrent agents, fewer writes than records
check "the WAL wrote the load's records in group writes, none failed" \
    sh -c "'${CTL[0]}' -e '$CONTROL' status --json | jq -e '.wal.group_writes > 0 and .wal.group_writes < .wal.appends and .wal.group_write_failures == 0' > /dev/null"
y=$((2100 + YEARS - 1))
check "a loaded year's cluster total is exact" \
    sh -c "'${CTL[0]}' -e '$CONTROL' report --year $y --json | jq -e '(.clusters[0].revenue | tonumber) == $((197 * 12 * 1000))' > /dev/null"

# ---- a daemon that stops answering: the agent resends, nothing is doubled ------
# SIGSTOP freezes the daemon; the agent's first tries time out (-t 300) and it
# resends the same batch with the same seq. After SIGCONT the daemon sees the
# copies: it applies the first and acks the others without applying them.
printf 'ee-002,energy,7,2022-07\nee-003,energy,8,2022-07\n' > "$TMP/retry.csv"
applied_before=$(status_field samples_applied)
dup_before=$(status_field batches_duplicate)
kill -STOP "$DPID"
timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a e2e-retry -t 300 -r 20 -v "$TMP/retry.csv" \
    2> "$TMP/retry.err" &
RPID=$!
PIDS+=("$RPID")
sleep 1.2
kill -CONT "$DPID"
wait "$RPID"
rrc=$?
check "the agent resent while the daemon was frozen and exited 0" \
    sh -c "[ $rrc = 0 ] && grep -Eq 'resen|retr' '$TMP/retry.err'"
check "the resent copies were acked, not applied" \
    sh -c "[ \"\$('${CTL[0]}' -e '$CONTROL' status --json | jq .samples_applied)\" = $((applied_before + 2)) ] && [ \"\$('${CTL[0]}' -e '$CONTROL' status --json | jq .batches_duplicate)\" -gt $dup_before ]"

# ---- clean stop ----------------------------------------------------------------
kill -TERM "$DPID"
stopped=0
for _ in $(seq 1 100); do
    if ! kill -0 "$DPID" 2> /dev/null; then stopped=1; break; fi
    sleep 0.1
done
wait "$DPID"
drc=$?
check "SIGTERM stops the daemon within 10 s with status 0" sh -c "[ $stopped = 1 ] && [ $drc = 0 ]"
if [ "${VALGRIND:-0}" = 1 ]; then
    check "valgrind: no errors, no definite leaks in the daemon" [ ! -s "$TMP/valgrind.log" ]
    [ -s "$TMP/valgrind.log" ] && head -50 "$TMP/valgrind.log"
fi
if grep -q 'error\]' "$TMP/daemon.log"; then
    no "daemon logged no errors"
    grep 'error\]' "$TMP/daemon.log" | head -5
else
    ok "daemon logged no errors"
fi

echo "e2e: $pass passed, $fail failed"
[ "$fail" = 0 ]
