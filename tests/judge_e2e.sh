#!/usr/bin/env bash
# tests/judge_e2e.sh -- what the daemon refuses, row by row (daemon/judge.h,
# PROTOCOL.md 2 "partial answers"):
#  1. `clustermon-agent --check` says every bad row of a table of bad inputs
#     (unknown firm, future period, negative revenue, Unix seconds sent as
#     ms, unknown metric) by file and line, exits 1, and applies nothing.
#  2. The same file sent for real: the same rows said by line and written to
#     the spool's rejected/SEQ.rejected.csv, the good rows of the same batch
#     applied (exact totals), exit 1, refusals counted in /metrics.
#  3. A partial batch resent across a daemon SIGKILL gets the same answer and
#     applies nothing twice (samples_applied); an agent restarted with its
#     batch still spooled names the lines of the answer it gets then.
#  4. A UTC offset of +23:00 is refused by the agent with its line.
#
#   BIN=build bash tests/judge_e2e.sh        (part of make e2e)
SUITE=judge
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3 # Debian's, with python3-zmq and python3-msgpack (.ci/packages.txt)
start_judged() { # with /metrics on a picked port (again, under retry_bind, if it was taken)
    HTTP_PORT=$(free_port)
    make_config "$TMP/j.conf" future_slack_days=0 fsync=always "http=127.0.0.1:$HTTP_PORT"
    start_daemon "$TMP/j.conf"
}
retry_bind "$TMP/daemon.log" start_judged || { no "the daemon starts"; finish; exit 1; }
refused() { # REASON -> clustermon_samples_refused_total{reason=REASON}
    curl -s "http://127.0.0.1:$HTTP_PORT/metrics" |
        awk -v r="clustermon_samples_refused_total{reason=\"$1\"}" '$1 == r { print $2 }'
}
AGENT=("$BIN/clustermon-agent" -e "$INGEST" -t 2000 -r 2)
total() { # METRIC PERIOD -> energy-env's total ("null": none)
    ctl totals --metric "$1" --period "$2" --json |
        jq -r '.clusters[] | select(.id == "energy-env") | .total'
}
this_year=$(date +%Y)
future=$((this_year + 2))-01

cat > "$TMP/r6.csv" <<EOF
enterprise,metric,value,period
ee-001,revenue,100,2025-01
he-099,revenue,5,2025-01
ee-002,revenue,200,2025-01
ee-003,revenue,50,$future
ee-004,revenue,-7,2025-01
ee-001,cod,3,1700000000
ee-005,revenue,300,2025-01
ee-001,wattage,1,2025-01
EOF
# the bad rows: line and what the reason must say
BAD=("3:unknown firm 'he-099'" "5:period $future is after the current month"
    "6:is below its min 0" "7:looks like Unix seconds sent as milliseconds"
    "9:unknown metric 'wattage'")

# ---- 1. --check: every problem by line, nothing applied ----------------------
before=$(total revenue 2025-01)
"${AGENT[@]}" -a checker --check "$TMP/r6.csv" 2> "$TMP/check.err"
rc=$?
cat "$TMP/check.err"
check "--check exits 1 on problems" [ "$rc" = 1 ]
for b in "${BAD[@]}"; do
    check "--check says r6.csv:${b%%:*}: ${b#*:}" grep -qF "r6.csv:${b%%:*}: " "$TMP/check.err"
    check "  ... with its reason" sh -c "grep -F 'r6.csv:${b%%:*}: ' '$TMP/check.err' | grep -qF \"${b#*:}\""
done
check "--check says exactly the 5 bad rows" [ "$(grep -c 'r6.csv:[0-9]*: ' "$TMP/check.err")" = 5 ]
check "--check applies nothing" [ "$(total revenue 2025-01)" = "$before" ]
check "--check consumed no seq (no stream of agent 'checker')" \
    [ "$(status_field samples_applied)" = 0 ]

# ---- 2. sent for real: bad rows refused by line, the good ones applied -------
"${AGENT[@]}" -a firm6 -s "$TMP/spool" "$TMP/r6.csv" 2> "$TMP/send.err"
rc=$?
cat "$TMP/send.err"
check "the agent exits 1 when rows were refused" [ "$rc" = 1 ]
for b in "${BAD[@]}"; do
    check "the agent says r6.csv:${b%%:*}" grep -qF "r6.csv:${b%%:*}: " "$TMP/send.err"
done
check "the good rows of the batch are applied: 100 + 200 + 300" [ "$(total revenue 2025-01)" = 600 ]
check "3 samples applied, not 8" [ "$(status_field samples_applied)" = 3 ]
rej=$(ls "$TMP"/spool/firm6/rejected/*.rejected.csv 2> /dev/null | head -1)
check "the refused rows are in rejected/SEQ.rejected.csv" [ -n "$rej" ]
[ -n "$rej" ] && cat "$rej"
check "  ... one per bad row, with its source line" \
    [ "$(grep -c '^.*r6.csv:[0-9]*,' "${rej:-/dev/null}")" = 5 ]
check "  ... and its reason" grep -q 'unknown_firm,unknown firm' "${rej:-/dev/null}"
check "the batch left the spool" [ -z "$(ls "$TMP"/spool/firm6/*.batch 2> /dev/null)" ]
check "the partial batch is counted (status nacks.partial; not the check)" \
    [ "$(ctl status --json | jq '.nacks.partial')" = 1 ]
for r in unknown_firm future_period out_of_range before_floor unknown_metric; do
    check "/metrics counts 1 $r refusal" [ "$(refused $r)" = 1 ]
done

# ---- 3. exactly once across a resend and a daemon SIGKILL --------------------
cat > "$TMP/raw.py" <<'EOF'
import sys, zmq, msgpack
ep, seq = sys.argv[1], int(sys.argv[2])
batch = {"v": 2, "type": "batch", "seq": seq, "epoch": 77, "agent": "raw", "partial": True,
         "samples": [["ee-010", "revenue", 1000.0, 0, "2025-02"],
                     ["nope-1", "revenue", 1.0, 0, "2025-02"],
                     ["ee-011", "revenue", -1.0, 0, "2025-02"],
                     ["ee-001", "cod", 7.5, 1735689600000]]}
s = zmq.Context().socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.connect(ep)
s.send(msgpack.packb(batch))
if not s.poll(5000):
    print("no answer"); sys.exit(1)
a = msgpack.unpackb(s.recv())
print(a["status"], a["accepted"], a["expected"], [r[:2] for r in a.get("refused", [])])
EOF
first=$("$PY" "$TMP/raw.py" "$INGEST" 1)
echo "# first: $first"
check "a partial batch is answered partial, 2 accepted, its two bad samples listed" \
    [ "$first" = "partial 2 2 [[1, 'unknown_firm'], [2, 'invalid']]" ]
applied=$(status_field samples_applied)
check "... and its good samples applied" [ "$applied" = 5 ]
again=$("$PY" "$TMP/raw.py" "$INGEST" 1)
check "a resend gets the same answer" [ "$again" = "$first" ]
stop_daemon KILL
start_daemon "$TMP/j.conf" || no "the daemon restarts"
after=$("$PY" "$TMP/raw.py" "$INGEST" 1)
echo "# after a SIGKILL: $after"
check "after a SIGKILL the resend gets the same answer" [ "$after" = "$first" ]
check "nothing was applied twice (samples_applied $applied)" \
    [ "$(status_field samples_applied)" = "$applied" ]
check "the totals are exact after the restart" [ "$(total revenue 2025-02)" = 1000 ]
check "... and the first run's too" [ "$(total revenue 2025-01)" = 600 ]

# an agent that stops before the answer keeps the batch and its lines
printf 'enterprise,metric,value,period\nee-020,revenue,5,2025-03\nzz-1,revenue,1,2025-03\n' > "$TMP/r7.csv"
stop_daemon
"${AGENT[@]}" -a firm7 -s "$TMP/spool" -t 300 -r 1 "$TMP/r7.csv" 2> "$TMP/r7a.err"
check "with no daemon the agent exits 3, its batch spooled" [ "$?" = 3 ]
check "... with its source lines" [ -n "$(ls "$TMP"/spool/firm7/*.lines 2> /dev/null)" ]
start_daemon "$TMP/j.conf" || no "the daemon restarts"
"${AGENT[@]}" -a firm7 -s "$TMP/spool" "$TMP/r7.csv" 2> "$TMP/r7b.err"
rc=$?
cat "$TMP/r7b.err"
check "the restarted agent exits 1 (a row refused)" [ "$rc" = 1 ]
check "... and names the line from the spool: r7.csv:3" grep -qF "r7.csv:3: unknown firm 'zz-1'" "$TMP/r7b.err"
check "... the good row applied" [ "$(total revenue 2025-03)" = 5 ]

# ---- 4. a UTC offset no zone has ------------------------------------------------
printf 'enterprise,metric,value,timestamp\nee-001,cod,3,2025-01-05T08:00:00+23:00\n' > "$TMP/off.csv"
"${AGENT[@]}" -a firm8 -s "$TMP/spool" "$TMP/off.csv" 2> "$TMP/off.err"
rc=$?
cat "$TMP/off.err"
check "an offset of +23:00 is bad input (exit 2)" [ "$rc" = 2 ]
check "... named by line" grep -qF "off.csv:2: timestamp" "$TMP/off.err"
check "... and range" grep -qF "UTC offset out of range" "$TMP/off.err"

check "the daemon is still running" kill -0 "$DPID"
stop_daemon
check "the daemon stops cleanly (exit 0)" [ "$?" = 0 ]
finish
