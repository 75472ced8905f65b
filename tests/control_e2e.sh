#!/usr/bin/env bash
# tests/control_e2e.sh -- the control socket as a client written from
# proto/PROTOCOL.md sees it:
#   - every command refuses an argument it does not take, naming it and the
#     allowed ones, and a mistyped or missing one (counted in status);
#   - a 70 KB request gets a reply naming the 64 KiB limit (counted in status
#     and /metrics), not silence;
#   - a request of another protocol version gets "version: ..." and max_version;
#   - describe without CURVE lists everything;
#   - a daemon bound on tcp://[::1]:P and tcp://localhost:P answers ping;
#   - without CURVE, a peer that leaves mid-handshake is not logged as a
#     client without CURVE.
#
#   BIN=build bash tests/control_e2e.sh        (part of make check)
SUITE=control
source "$(dirname "$0")/lib.sh"

ZCTL=$BIN/tests/tools/zctl
zctl() { "$ZCTL" -t 5000 "$CONTROL" "$@"; }
pong() { [ "$(ctl ping)" = pong ]; }

start_http() { # /metrics on a picked port, again under retry_bind if it was taken
    PORT=$(free_port)
    make_config "$TMP/c.conf" "http=127.0.0.1:$PORT"
    start_daemon "$TMP/c.conf"
}
retry_bind "$TMP/daemon.log" start_http || { no "the daemon starts"; finish; exit 1; }

# ---- arguments -------------------------------------------------------------------------
# One bad argument per command: cmd, the args, what the reason must say.
cases=(
    "ping|x=int:1|x: unknown argument for 'ping' (it takes none)"
    "describe|verbose=int:1|verbose: unknown argument for 'describe' (it takes none)"
    "status|x=str:y|x: unknown argument for 'status'"
    "runtime|x=nil|x: unknown argument for 'runtime'"
    "reload|force=int:1|force: unknown argument for 'reload'"
    "report|firm=str:acme year=int:2023|firm: unknown argument for 'report' (allowed: year)"
    "report|year=str:2023|year: expected an integer, got a string"
    "totals|metric=str:revenue|period: required by 'totals' (a string)"
    "totals|metric=str:revenue period=int:2023|period: expected a string, got an integer"
    "totals|metric=str:revenue period=str:2023 cluster=str:x|cluster: unknown argument for 'totals' (allowed: metric, period)"
    "clusters|days=str:30|days: expected an integer, got a string"
    "clusters|month=int:3|month: unknown argument for 'clusters' (allowed: year, days)"
    "cluster||id: required by 'cluster' (a string)"
    "cluster|id=str:energy-env year=int:2023|year: unknown argument for 'cluster' (allowed: id, through)"
    "firms|silent=str:yes|silent: expected an integer, got a string"
    "firms|chain=str:x|chain: unknown argument for 'firms' (allowed: cluster, silent, days, as_of, all)"
    "alerts|since=int:3|since: unknown argument for 'alerts' (it takes none)"
    "silence_add|rule=str:cod-limit cluster=str:energy-env for=int:7200 reason=str:x|for: expected a string, got an integer"
    "silence_add|rule=str:cod-limit cluster=str:energy-env for=str:2h|reason: required by 'silence_add'"
    "silence_list|all=int:1|all: unknown argument for 'silence_list' (it takes none)"
    "silence_rm|id=str:1|id: expected an integer, got a string"
    "silence_rm||id: required by 'silence_rm' (an integer)"
)
for c in "${cases[@]}"; do
    IFS='|' read -r cmd args want <<< "$c"
    # shellcheck disable=SC2086
    out=$(zctl "$cmd" $args 2>&1)
    check "$cmd $args: refused: $want" \
        grep -qF "ok=false max_version=2 reason=$want" <<< "$out"
done
check "the good ones still work: report year" sh -c "'$ZCTL' -t 5000 '$CONTROL' report year=int:2023 | grep -q '^ok=true'"
check "  totals metric period" sh -c "'$ZCTL' -t 5000 '$CONTROL' totals metric=str:revenue period=str:2023 | grep -q '^ok=true'"
check "  nil counts as absent" sh -c "'$ZCTL' -t 5000 '$CONTROL' report year=nil | grep -q '^ok=true'"
check "clustermonctl report still works" sh -c "ctl_out=\$('$BIN/clustermonctl' -e '$CONTROL' report) && [ -n \"\$ctl_out\" ]"
check "refusals counted: control.refused_args" \
    jqe ".control.refused_args == ${#cases[@]}" <<< "$(ctl status --json)"
check "an unknown command lists the known ones" \
    sh -c "'$ZCTL' -t 5000 '$CONTROL' frobnicate | grep -q \"reason=unknown command 'frobnicate' (known: ping, describe,\""

# ---- size -------------------------------------------------------------------------------
out=$(zctl -p 70000 ping 2>&1)
check "a 70 KB request gets a reply naming the limit" \
    grep -q "ok=false max_version=2 reason=too large: a request of 700[0-9][0-9] bytes exceeds the control socket's limit of 65536 bytes" <<< "$out"
check "a 60 KB request is served" sh -c "'$ZCTL' -t 5000 -p 60000 '$CONTROL' ping | grep -q '^ok=true'"
check "a 2 MB frame is dropped by ZeroMQ, unanswered" sh -c "! '$ZCTL' -t 1000 -p 2000000 '$CONTROL' ping > /dev/null 2>&1"
check "the daemon still answers" pong
check "counted: control.refused_too_large" jqe '.control.refused_too_large == 1' <<< "$(ctl status --json)"
check "and logged" grep -q "control: too large: a request of" "$TMP/daemon.log"
curl -s "http://127.0.0.1:$PORT/metrics" > "$TMP/metrics.txt"
check "/metrics: clustermon_control_refusals_total{reason=\"too_large\"} 1" \
    grep -q '^clustermon_control_refusals_total{reason="too_large"} 1$' "$TMP/metrics.txt"
check "/metrics: args refusals" \
    grep -q "^clustermon_control_refusals_total{reason=\"args\"} ${#cases[@]}\$" "$TMP/metrics.txt"

# ---- version ----------------------------------------------------------------------------
out=$(zctl -v 9 ping 2>&1)
check "a ctl of version 9: ok false, reason version: ..., max_version" \
    grep -q "^ok=false max_version=2 reason=version: unsupported version 9 (this build speaks 2..2)" <<< "$out"
out=$(zctl -v 0 ping 2>&1)
check "  and of version 0" grep -q "^ok=false max_version=2 reason=version: " <<< "$out"
check "counted: control.refused_version" jqe '.control.refused_version == 2' <<< "$(ctl status --json)"
check "every reply carries max_version" sh -c "'$ZCTL' -t 5000 '$CONTROL' ping | grep -q '^ok=true max_version=2 '"

# ---- describe (no CURVE: everything) ---------------------------------------------------
ctl describe --json > "$TMP/describe.json"
nfirms=$(firms | wc -l)
check "describe: no key, every firm ($nfirms), both clusters" \
    jqe ".key == null and (.firms | length) == $nfirms and (.clusters | length) == 2" \
    < "$TMP/describe.json"
check "  metrics with kind and unit" \
    jqe '[.metrics[] | select(.name == "revenue")][0] == {"name":"revenue","kind":"period","unit":"yuan"}' \
    < "$TMP/describe.json"
check "  report's arguments: year, an optional int" \
    jqe '[.commands[] | select(.name == "report")][0].args == [{"name":"year","type":"int","required":false}]' \
    < "$TMP/describe.json"
check "  limits" jqe '.protocol == {"min_version":2,"max_version":2,"max_request_bytes":65536}' \
    < "$TMP/describe.json"
check "clustermonctl describe prints a table" sh -c "ctl_out=\$('$BIN/clustermonctl' -e '$CONTROL' describe) && echo \"\$ctl_out\" | grep -q '^  totals  *metric:str\\* period:str\\*\$'"

# ---- handshake messages without CURVE --------------------------------------------------
# A bare TCP connection that closes at once: a probe, not a CURVE problem.
stop_daemon
start_tcp_control() {
    tport=$(free_port)
    make_config "$TMP/tcp.conf" "control=tcp://127.0.0.1:$tport"
    CONTROL=tcp://127.0.0.1:$tport
    start_daemon "$TMP/tcp.conf" "$TMP/tcp.log"
}
retry_bind "$TMP/tcp.log" start_tcp_control || no "the daemon starts on tcp"
exec 3<> "/dev/tcp/127.0.0.1/$tport" && exec 3>&-
for _ in $(seq 1 30); do grep -q "before the ZeroMQ handshake" "$TMP/tcp.log" && break; sleep 0.1; done
check "a probe is logged as one" grep -q "control socket: a peer closed its connection before the ZeroMQ handshake completed" "$TMP/tcp.log"
check "  not as a client without CURVE" sh -c "! grep -q 'without CURVE' '$TMP/tcp.log'"
check "  and not counted as a refusal" jqe '.security.handshakes_failed == 0' <<< "$(ctl status --json)"
stop_daemon

# ---- [::1] and localhost ----------------------------------------------------------------
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    start_v6() {
        read -r p6 p6c <<< "$(free_ports 2 | tr '\n' ' ')"
        make_config "$TMP/v6.conf" "ingest=tcp://[::1]:$p6" "control=tcp://[::1]:$p6c"
        CONTROL="tcp://[::1]:$p6c"
        start_daemon "$TMP/v6.conf" "$TMP/v6.log"
    }
    retry_bind "$TMP/v6.log" start_v6
    check "clustermond -n accepts tcp://[::1]" "$BIN/clustermond" -n -c "$TMP/v6.conf"
    check "a daemon bound on tcp://[::1]:P answers ping" pong
    stop_daemon
else
    echo "skip - no IPv6 loopback here"
fi
start_localhost() {
    read -r pl plc <<< "$(free_ports 2 | tr '\n' ' ')"
    make_config "$TMP/lh.conf" "ingest=tcp://localhost:$pl" "control=tcp://localhost:$plc"
    CONTROL="tcp://localhost:$plc"
    start_daemon "$TMP/lh.conf" "$TMP/lh.log"
}
retry_bind "$TMP/lh.log" start_localhost
check "a daemon configured on tcp://localhost:P answers ping" pong
check "  bound on 127.0.0.1" grep -q "control tcp://127.0.0.1:$plc" "$TMP/lh.log"
stop_daemon

finish
