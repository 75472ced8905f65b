#!/usr/bin/env bash
# Exactly once, under any sending pattern (PROTOCOL.md 2, sequence discipline).
#  1. An agent with a window of 8 batches in flight, through the rate limit,
#     "busy" (the state dir's disk full), a daemon SIGKILL and a failover to
#     another endpoint: every row applied once, every ack accounted for.
#  2. Two agents on one agent id: the second is refused (agent_conflict) and
#     exits 4 with the reason; the first delivers everything.
#  3. Out of order by hand: seq 2 before seq 1 is refused out_of_order naming
#     seq 1, and never acked until 1 is settled; a resend of a refused seq
#     gets the same refusal; an empty batch settles a seq with nothing.
#
#   BIN=build bash tests/exactly_once_e2e.sh        (part of make check)
SUITE=exactly-once
source "$(dirname "$0")/lib.sh"

firms > "$TMP/firms"
# rows: every firm x 12 months of a year, value 1000 + month: a lost row shows
# in the totals, a doubled one in samples_applied.
gen_rows() { # YEAR0 NYEARS
    awk -v y0="$1" -v ny="$2" '{ f[NR] = $1 } END {
        for (y = y0; y < y0 + ny; y++) for (m = 1; m <= 12; m++) for (i = 1; i <= NR; i++)
            printf "%s,revenue,%d,%d-%02d\n", f[i], 1000 + m, y, m }' "$TMP/firms"
}
year_totals() { # YEAR -> "[energy-env,new-energy]"
    ctl totals --metric revenue --period "$1" --json | jq -c '[.clusters[] | .total | tonumber]'
}
WANT_YEAR="[$((197 * 12078)),$((46 * 12078))]"

# ---- 1. a window through rate limits, busy, SIGKILL and failover --------------------
# The state dir lives on a small tmpfs, so the disk can be filled for real.
mkdir -p "$STATE"
if mount -t tmpfs -o size=48m,mode=0700 tmpfs "$STATE" 2> /dev/null; then
    TMPFS=1
    trap 'umount "$STATE" 2>/dev/null; cleanup' EXIT
else
    TMPFS=0
    echo "# cannot mount a tmpfs (not root?): the busy part is skipped"
fi
INGEST2=ipc://$TMP/ingest2.ipc
make_config "$TMP/a.conf" rate_per_connection=5000 snapshot_interval_s=2
sed "s|^ingest = .*|ingest = $INGEST2|" "$TMP/a.conf" > "$TMP/b.conf"
check "daemon starts" start_daemon "$TMP/a.conf"
gen_rows 2160 14 > "$TMP/w.csv"
rows=$(wc -l < "$TMP/w.csv")
timeout 300 "$BIN/clustermon-agent" -v -s "$TMP/spool" -e "$INGEST,$INGEST2" -a window -w 8 -b 500 \
    -t 1000 -r 0 "$TMP/w.csv" 2> "$TMP/window.err" &
APID=$!
PIDS+=($APID)
sleep 1.5
if [ "$TMPFS" = 1 ]; then
    # fill the disk: the WAL cannot take the next batch, the daemon says busy
    dd if=/dev/zero of="$STATE/filler" bs=1M 2> /dev/null
    for _ in $(seq 1 100); do grep -q 'deferred: busy: cannot write the WAL' "$TMP/window.err" && break; sleep 0.1; done
    check "a full disk answers busy, and the agent holds on" \
        grep -q 'deferred: busy: cannot write the WAL' "$TMP/window.err"
    rm -f "$STATE/filler"
fi
sleep 1
check "the agent is still sending when the daemon is killed" kill -0 "$APID"
kill -KILL "$DPID"
wait "$DPID" 2> /dev/null
# the daemon comes back on the other endpoint: the agent fails over to it
check "the daemon restarts after SIGKILL on a second endpoint" start_daemon "$TMP/b.conf"
wait "$APID"
arc=$?
check "the windowed agent exits 0" [ "$arc" = 0 ]
[ "$arc" = 0 ] || tail -5 "$TMP/window.err"
check "it was rate limited on the way" grep -q 'deferred: rate limited' "$TMP/window.err"
check "it failed over to the second endpoint" grep -q "failing over from $INGEST to $INGEST2" "$TMP/window.err"
check "its batches went out of order and were resent from the gap" grep -q 'out of order' "$TMP/window.err"
check "every row acked exactly once: the agent's count is the input's" \
    grep -q "^clustermon-agent: $rows samples in $(((rows + 499) / 500)) batches acked" "$TMP/window.err"
check "samples applied == $rows rows: nothing twice" [ "$(status_field samples_applied)" = "$rows" ]
exact=1
for y in 2160 2167 2173; do
    got=$(year_totals "$y")
    [ "$got" = "$WANT_YEAR" ] || { exact=0; echo "# year $y: $got, want $WANT_YEAR"; }
done
check "per-cluster totals equal the input sums exactly" [ "$exact" = 1 ]
stop_daemon
[ "$TMPFS" = 1 ] && umount "$STATE" && trap cleanup EXIT
rm -rf "$STATE"

# ---- 2. two agents on one agent id ----------------------------------------------------
make_config "$TMP/c.conf" agent_lease_s=30
check "daemon starts for the conflict test" start_daemon "$TMP/c.conf"
gen_rows 2170 1 > "$TMP/first.csv"
first_rows=$(wc -l < "$TMP/first.csv")
# The first agent streams slowly from a pipe, so it is live while the second starts.
(while read -r line; do echo "$line"; sleep 0.002; done < "$TMP/first.csv") |
    timeout 120 "$BIN/clustermon-agent" -v -s "$TMP/spool-a" -e "$INGEST" -a shared -b 50 - 2> "$TMP/a.err" &
A1=$!
PIDS+=($A1)
for _ in $(seq 1 100); do grep -q 'acked by' "$TMP/a.err" && break; sleep 0.1; done
gen_rows 2171 1 > "$TMP/second.csv"
timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool-b" -e "$INGEST" -a shared "$TMP/second.csv" 2> "$TMP/b.err"
brc=$?
check "the second agent on the same id exits 4" [ "$brc" = 4 ]
check "and says the id is in use by another agent" \
    grep -q "agent_conflict: agent id 'shared' is in use by another agent" "$TMP/b.err"
check "its batches stay in its spool" grep -q 'stay in the spool' "$TMP/b.err"
wait "$A1"
check "the first agent exits 0" [ $? = 0 ]
check "the first agent's rows all arrived" [ "$(year_totals 2170)" = "$WANT_YEAR" ]
check "nothing of the second's was applied" [ "$(year_totals 2171)" = "[0,0]" ]
check "the refusal is counted" [ "$(ctl status --json | jq '.nacks.agent_conflict')" -ge 1 ]

# ---- 3. the discipline byte by byte ------------------------------------------------------
# {"v":2,"type":"batch","seq":S,"epoch":5,"agent":"hand","samples":[["ee-001","energy",V,0,"2031-0M"]]}
hand() { # SEQ VALUE MONTH [FIRM]
    local firm=${4:-ee-001}
    /usr/bin/python3 -c 'import sys, msgpack
seq, v, m, firm = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sys.stdout.buffer.write(msgpack.packb({"v": 2, "type": "batch", "seq": seq, "epoch": 5,
    "agent": "hand", "samples": [[firm, "energy", v, 0, "2031-%02d" % m]]}))' "$1" "$2" "$3" "$firm"
}
hand 2 20 2 > "$TMP/s2.bin"
hand 1 10 1 > "$TMP/s1.bin"
hand 3 30 3 ee-999 > "$TMP/s3.bin"
"$BIN/tests/tools/zsend" "$INGEST" "$TMP/s2.bin" > "$TMP/out"
check "seq 2 before seq 1 of a new stream is out_of_order, naming seq 1" \
    grep -q '^out_of_order seq=2 .*resend from seq 1' "$TMP/out"
"$BIN/tests/tools/zsend" "$INGEST" "$TMP/s1.bin" "$TMP/s2.bin" > "$TMP/out"
check "then 1 and 2 are applied in order" \
    [ "$(grep -c '^ok seq=[12] accepted=1' "$TMP/out")" = 2 ]
"$BIN/tests/tools/zsend" -r 2 "$INGEST" "$TMP/s3.bin" > "$TMP/out"
check "a refused seq is refused again on resend, with the same status" \
    [ "$(grep -c '^unknown_firm seq=3 ' "$TMP/out")" = 2 ]
/usr/bin/python3 -c 'import sys, msgpack
sys.stdout.buffer.write(msgpack.packb({"v": 2, "type": "batch", "seq": 4, "epoch": 5, "agent": "hand", "samples": []}))' \
    > "$TMP/s4.bin"
hand 5 50 5 > "$TMP/s5.bin"
"$BIN/tests/tools/zsend" "$INGEST" "$TMP/s4.bin" "$TMP/s5.bin" > "$TMP/out"
check "the refused seq settled its place: an empty batch 4 then 5 are taken" \
    [ "$(grep -c '^ok seq=[45] accepted=[01]' "$TMP/out")" = 2 ]
check "energy 2031: months 1, 2 and 5 applied once each" \
    [ "$(ctl totals --metric energy --period 2031 --json | jq '.clusters[0].total | tonumber')" = 80 ]
stop_daemon
start_daemon "$TMP/c.conf"
"$BIN/tests/tools/zsend" "$INGEST" "$TMP/s3.bin" "$TMP/s5.bin" > "$TMP/out"
check "after a restart, the same answers: 3 refused, 5 ok" \
    sh -c "grep -q '^unknown_firm seq=3 ' '$TMP/out' && grep -q '^ok seq=5 accepted=1' '$TMP/out'"
stop_daemon
finish
