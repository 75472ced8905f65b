#!/usr/bin/env bash
# The bench's tools (tests/tools/loadgen, barerecv, alertprobe), smoke-run on
# tiny loads so make check keeps them working: counts and acks only, never
# timings (those live in make bench).
SUITE=benchtools
source "$(dirname "$0")/lib.sh"
T=$BIN/tests/tools

make_config "$TMP/c.conf" rate_per_connection=0 rate_global=0 future_slack_days=100000
BARE=ipc://$TMP/bare.ipc

# loadgen -> barerecv: every batch acked ok, every sample counted at both ends
"$T/barerecv" "$BARE" > "$TMP/bare.out" &
bpid=$!
PIDS+=($bpid)
wait_for 5 test -S "$TMP/bare.ipc"
out=$("$T/loadgen" -c 3 -w 4 -b 100 -n 2050 "$TMP/c.conf" "$BARE")
check "loadgen -> barerecv: exit 0" [ $? = 0 ]
check "loadgen -> barerecv: 2050 samples acked in 21 batches, no nack" \
    grep -q "sent_batches=21 sent_samples=2050 acked_batches=21 acked_samples=2050 nacks=0 unanswered=0" <<< "$out"
out1=$("$T/loadgen" -c 2 -w 8 -b 1 -n 40 "$TMP/c.conf" "$BARE")
check "loadgen -b 1 -> barerecv: 40 one-sample batches acked" grep -q "acked_samples=40 nacks=0" <<< "$out1"
rtt=$("$T/alertprobe" rtt -n 5 "$TMP/c.conf" "$BARE")
check "alertprobe rtt: 5 round trips, none lost" grep -q "rtt n=5 .* lost=0" <<< "$rtt"
stop_pid $bpid
check "barerecv counted every sample and batch (2050 + 40 + 5)" \
    grep -q "batches=66 samples=2095 malformed=0" "$TMP/bare.out"

# loadgen -> clustermond: the daemon applied exactly what was acked
start_daemon "$TMP/c.conf" || { no "daemon started"; finish; exit 1; }
out=$("$T/loadgen" -c 2 -w 4 -b 250 -n 1000 "$TMP/c.conf" "$INGEST")
check "loadgen -> daemon: exit 0, 1000 samples acked ok" grep -q "acked_samples=1000 nacks=0" <<< "$out"
check "the daemon applied 1000 samples" [ "$(status_field samples_applied)" = 1000 ]
out=$("$T/loadgen" -c 1 -r 2000 -d 0.5 -b 10 "$TMP/c.conf" "$INGEST")
sent=$(sed -n 's/.* acked_samples=\([0-9]*\) .*/\1/p' <<< "$out")
check "loadgen -r: a rate-limited run is acked in full" grep -q "nacks=0 unanswered=0" <<< "$out"
check "loadgen -r 2000 for 0.5 s sends at most its rate allows (+1 batch)" [ "${sent:-0}" -le 1010 ]
lat=$("$T/alertprobe" lat -n 3 "$TMP/c.conf" "$INGEST" "$ALERTS")
check "alertprobe lat: 3 cycles, 6 alerts timed, none lost" grep -q "lat n=6 .* lost=0" <<< "$lat"

# a firm the daemon does not know: the nack fails the run
sed 's/^ee-001,/zz-unknown,/' daemon/demo/registry.csv > "$TMP/bad.csv"
sed "s|^registry = .*|registry = $TMP/bad.csv|" "$TMP/c.conf" > "$TMP/bad.conf"
"$T/loadgen" -c 1 -b 1000 -n 1000 "$TMP/bad.conf" "$INGEST" > "$TMP/bad.out" 2> "$TMP/bad.err"
check "loadgen: a nacked batch fails the run (exit 3)" [ $? = 3 ]
check "loadgen: the nack is counted by status" grep -q "nacks=1 .*nack_unknown_firm=1" "$TMP/bad.out"
check "loadgen: the first nack's reason is shown" grep -q "zz-unknown" "$TMP/bad.err"
stop_daemon
finish
