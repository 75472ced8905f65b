# tests/lib.sh -- shared by the end-to-end scripts: a temp dir removed on
# exit, children killed and reaped, check/ok/no counters, a daemon config on
# ipc:// endpoints inside the temp dir, bounded waits, and TCP ports. Source it with
# SUITE set to the suite's name; finish with `finish`.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BIN:-build}
ROOT=$PWD
TMP=$(mktemp -d "/tmp/clustermon-$SUITE.XXXXXX")
PIDS=()
pass=0
fail=0

cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok   - $*"; }
no() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else no "$name"; fi; }
# jqe ARGS...: jq -e, quietly (a redirect on `check` would hide its FAIL line)
jqe() { jq -e "$@" > /dev/null; }
finish() { echo "$SUITE: $pass passed, $fail failed"; [ "$fail" = 0 ]; }

INGEST=ipc://$TMP/ingest.ipc
ALERTS=ipc://$TMP/alerts.ipc
CONTROL=ipc://$TMP/control.ipc
STATE=$TMP/state

# make_config FILE [key=value ...]: the default config on this suite's
# endpoints and state dir, with [daemon] keys added or replaced. The suites
# send figures for years to come (2030, 2160), which the daemon refuses by
# default (future_slack_days = 0): they are let in unless a suite says
# future_slack_days=0.
make_config() {
    local out=$1; shift
    set -- future_slack_days=100000 "$@"
    sed -e "s|^ingest = .*|ingest = $INGEST|" -e "s|^alerts = .*|alerts = $ALERTS|" \
        -e "s|^control = .*|control = $CONTROL|" -e "s|^state_dir = .*|state_dir = $STATE|" \
        -e "s|^registry = .*|registry = $ROOT/daemon/demo/registry.csv|" \
        "$ROOT/daemon/clustermond.conf" > "$out"
    local kv
    for kv in "$@"; do
        local k=${kv%%=*}
        sed -i "/^$k = /d" "$out"
        sed -i "s|^\[daemon\]|[daemon]\n$k = ${kv#*=}|" "$out"
    done
}

# ---- TCP ports ---------------------------------------------------------------
# One way to pick them: the kernel's (bind port 0 and read it back), never a
# random number that may be taken. A port can still be taken between the
# pick and the bind (by any process's outgoing connection), so whatever
# binds a picked port is started under retry_bind, which picks again then.

# free_ports N: N distinct free TCP ports on 127.0.0.1, one a line (all bound
# at once while picked, so no two are the same).
free_ports() {
    python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))' "$1"
}
free_port() { free_ports 1; }

# retry_bind LOG COMMAND...: runs COMMAND -- which picks its ports afresh
# with free_port(s) each time and starts what binds them, writing its
# errors to LOG -- again while it fails with "address already in use" in
# what it added to LOG; at most BIND_TRIES (5) times. Returns COMMAND's status.
retry_bind() {
    local log=$1 try before rc=1
    shift
    for try in $(seq 1 "${BIND_TRIES:-5}"); do
        before=$(stat -c %s "$log" 2> /dev/null || echo 0)
        "$@" && return 0
        rc=$?
        tail -c +$((before + 1)) "$log" 2> /dev/null | grep -qi 'address already in use' || return $rc
        echo "note - $1: a picked port was taken before it was bound (try $try); picking again" >&2
    done
    return $rc
}

# stop_pid PID [SECONDS]: SIGTERM, then waits (bounded, default 10 s) and
# SIGKILLs what is left, so a child stuck on its way out (seen: LeakSanitizer's
# exit-time scan hanging under ASan) cannot hang the suite.
stop_pid() {
    local _
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 1 $((${2:-10} * 10))); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# wait_for SECONDS COMMAND...: retries COMMAND every 0.1 s until it passes, at
# most SECONDS (its output is not shown); returns non-zero if it never did.
wait_for() {
    local tries=$(($1 * 10)) _
    shift
    for _ in $(seq 1 "$tries"); do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# fake_systemd SOCKET LOG [SECONDS]: listens on the NOTIFY_SOCKET datagram
# socket SOCKET for SECONDS (default 300) and writes every sd_notify message
# to LOG, one a line, newlines as |; returns once the socket exists.
fake_systemd() {
    python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1)
end = time.time() + float(sys.argv[3])
with open(sys.argv[2], "w", buffering=1) as out:
    while time.time() < end:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        out.write(msg.replace("\n", "|") + "\n")
' "$1" "$2" "${3:-300}" &
    PIDS+=($!)
    wait_for 5 test -S "$1"
}

ctl() { "$BIN/clustermonctl" -e "$CONTROL" -t 5000 "$@"; }
status_field() { ctl status --json | jq -r ".$1"; }

# start_daemon CONFIG [LOG]: starts clustermond, waits (bounded) until it
# answers; sets DPID. Returns non-zero if it died or never answered.
# With VALGRIND=1 the daemon runs under valgrind (make memcheck); a script
# then checks $TMP/valgrind.log with valgrind_clean.
start_daemon() {
    local log=${2:-$TMP/daemon.log} pre=()
    [ "${VALGRIND:-0}" = 1 ] && pre=(valgrind -q --error-exitcode=99 --leak-check=full
        --errors-for-leak-kinds=definite --log-file="$TMP/valgrind.log")
    "${pre[@]}" "$BIN/clustermond" -c "$1" -l "${LOG_LEVEL:-info}" 2>> "$log" &
    DPID=$!
    PIDS+=("$DPID")
    local _
    for _ in $(seq 1 150); do
        "$BIN/clustermonctl" -e "$CONTROL" -t 200 ping > /dev/null 2>&1 && return 0
        kill -0 "$DPID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_daemon [SIGNAL]: signals the daemon and waits for it (bounded);
# returns its exit status.
stop_daemon() {
    kill "-${1:-TERM}" "$DPID" 2>/dev/null
    local _
    for _ in $(seq 1 100); do
        kill -0 "$DPID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$DPID" 2>/dev/null
}

# valgrind_clean: with VALGRIND=1, checks that valgrind found nothing.
valgrind_clean() {
    [ "${VALGRIND:-0}" = 1 ] || return 0
    check "valgrind: no errors, no definite leaks in the daemon" [ ! -s "$TMP/valgrind.log" ]
    [ -s "$TMP/valgrind.log" ] && head -50 "$TMP/valgrind.log"
    return 0
}

# firms: the demo registry's firm ids, one per line
firms() { cut -d, -f1 "$ROOT/daemon/demo/registry.csv" | tail -n +2; }
