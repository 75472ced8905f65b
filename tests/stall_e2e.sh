#!/usr/bin/env bash
# tests/stall_e2e.sh -- peers that stall are dropped after [daemon]
# peer_timeout: hundreds of raw TCP peers (tests/tools/zstall.py) that do the
# ZMTP handshake, announce a 4 MiB frame, send 16 bytes of it and go quiet;
# peers that stop in the middle of the greeting; while an idle but healthy
# subscriber (libzmq answers heartbeats) stays connected, and the daemon
# still serves ingest and control afterwards. Also: peer_timeout is
# validated. Prints the daemon's RSS (VmRSS) before, with the peers stalled,
# and after they were dropped.
#
#   BIN=build bash tests/stall_e2e.sh       (part of make check)
#   STALL_PEERS=2000 BIN=build bash tests/stall_e2e.sh   (more peers)
#
# Every wait is bounded; the tool exits by itself (--hold) and is reaped.
SUITE=stall
source "$(dirname "$0")/lib.sh"

N=${STALL_PEERS:-300}
# established PORT: connections the daemon holds on PORT
established() { ss -Htn state established "( sport = :$1 )" | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }
# sock_peers NAME: peers on a daemon socket, from status --json
sock_peers() { ctl status --json | jq -r ".sockets[] | select(.name == \"$1\") | .peers"; }

# ---- validation ---------------------------------------------------------------------
for bad in 0 0.5 3601 soon; do
    make_config "$TMP/bad.conf" "peer_timeout=$bad"
    "$BIN/clustermond" -n -c "$TMP/bad.conf" > "$TMP/bad.out" 2>&1
    rc=$?
    check "peer_timeout = $bad: exit 2, file:line: daemon.peer_timeout" sh -c "
        [ $rc = 2 ] && grep -q 'bad.conf:[0-9]*: daemon.peer_timeout: ' '$TMP/bad.out'"
done
make_config "$TMP/ok.conf" "peer_timeout=2.5"
check "peer_timeout = 2.5 is accepted" sh -c "'$BIN/clustermond' -n -c '$TMP/ok.conf' > /dev/null"

# ---- the daemon on TCP, with a 2 s peer timeout --------------------------------------------
start_tcp() { # on three picked ports, again under retry_bind if one was taken
    read -r IPORT APORT CPORT <<< "$(free_ports 3 | tr '\n' ' ')"
    INGEST=tcp://127.0.0.1:$IPORT ALERTS=tcp://127.0.0.1:$APORT CONTROL=tcp://127.0.0.1:$CPORT
    make_config "$TMP/c.conf" "peer_timeout=2"
    start_daemon "$TMP/c.conf"
}
check "daemon starts on tcp:// with peer_timeout = 2" retry_bind "$TMP/daemon.log" start_tcp

# an idle subscriber: it sends nothing, but its libzmq answers the PINGs
"$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --state-file "$TMP/sub.state" --timeout 120000 \
    > "$TMP/alerts.jsonl" 2> "$TMP/sub.err" &
SUBPID=$!
PIDS+=("$SUBPID")
sub_connected() { [ "$(sock_peers alerts)" = 1 ]; }
check "the subscriber is connected" wait_for 10 sub_connected
rss_idle=$(rss_kb)

# ---- N peers stalled mid-frame on ingest ------------------------------------------------
python3 tests/tools/zstall.py --hold 30 127.0.0.1 "$IPORT" "$N" > "$TMP/frame.out" 2> "$TMP/frame.err" &
ZPID=$!
PIDS+=("$ZPID")
check "$N peers did the handshake and stalled in a 4 MiB frame" \
    wait_for 60 grep -qx "ready=$N" "$TMP/frame.out"
rss_stalled=$(rss_kb)
held=$(established "$IPORT")
check "the daemon held them (ESTABLISHED on the ingest port: $held)" [ "$held" -gt 0 ]
check "within 30 s all are dropped (none ESTABLISHED on the ingest port)" \
    wait_for 30 sh -c "[ \$(ss -Htn state established '( sport = :$IPORT )' | wc -l) = 0 ]"
for _ in $(seq 1 100); do kill -0 "$ZPID" 2> /dev/null || break; sleep 0.1; done
wait "$ZPID"
rc=$?
check "zstall saw every connection closed by the daemon ($(tail -1 "$TMP/frame.out"))" [ "$rc" = 0 ]
sleep 5.5 # the cron gives memory back at most every 5 s
rss_after=$(rss_kb)
echo "# VmRSS: idle $rss_idle kB, $N peers stalled $rss_stalled kB, after they were dropped $rss_after kB"

# ---- peers stalled in the greeting, on control and alerts ---------------------------------
for port in "$CPORT" "$APORT"; do
    python3 tests/tools/zstall.py --mode handshake --hold 15 127.0.0.1 "$port" 100 \
        > "$TMP/hs.out" 2> "$TMP/hs.err"
    check "100 peers stalled in the greeting on port $port: all dropped ($(tail -1 "$TMP/hs.out"))" \
        [ $? = 0 ]
done

# ---- the daemon still serves, the healthy subscriber is still there -------------------------
check "control answers" sh -c "'$BIN/clustermonctl' -e '$CONTROL' ping > /dev/null"
printf 'ne-001,revenue,100,2022-06\n' > "$TMP/one.csv"
check "ingest takes a batch" timeout 30 "$BIN/clustermon-agent" -e "$INGEST" -a after -s "$TMP/spool" "$TMP/one.csv"
check "the sample was applied" [ "$(status_field samples_applied)" = 1 ]
check "the idle subscriber was not dropped (alerts peers = 1)" [ "$(sock_peers alerts)" = 1 ]
check "and is still running" kill -0 "$SUBPID"

stop_pid "$SUBPID"
stop_daemon TERM
check "stops cleanly" [ "$?" = 0 ]
check "no sanitizer report" sh -c "! grep -qE 'runtime error|Sanitizer' '$TMP/daemon.log'"
finish
