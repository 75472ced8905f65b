#!/usr/bin/env bash
# tests/privdrop_e2e.sh -- least privilege, with the real daemon:
#  a. user = nobody: the daemon binds as root, then runs as nobody (its
#     /proc status says so), ingests, answers, reloads, snapshots, and finds
#     its data again after a restart;
#  b. root without a user and run_as_root = refuse: it stops, fast, saying why;
#  c. root without a user by default: it runs, with a WARNING in its log;
#  d. a user that does not exist: a clear error;
#  e. files others could have written (a world-writable registry, a shared
#     state directory, a secret key not its owner's only): refused, naming them;
#  f. what it creates in state_dir is 0600, the directory 0700;
#  g. not root: user = who we are is fine, another user is an error.
#
#   BIN=build bash tests/privdrop_e2e.sh     (part of make check; needs root,
#                                              skips otherwise)
SUITE=privdrop
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "$SUITE: skipped: switching users needs root (CI runs this as root)"
    exit 0
fi
if ! NUID=$(id -u nobody 2> /dev/null); then
    echo "$SUITE: skipped: there is no user nobody"
    exit 0
fi
NGID=$(id -g nobody)

# nobody must reach the sockets and the state dir in $TMP, and read the
# config and the registry (a reload reads them again, as nobody)
chmod 0711 "$TMP"
cp "$ROOT/daemon/demo/registry.csv" "$TMP/reg.csv"
chmod 0644 "$TMP/reg.csv"
# conf FILE [key=value ...]: make_config on this suite's registry, readable by all
conf() {
    make_config "$@"
    sed -i "s|^registry = .*|registry = $TMP/reg.csv|" "$1"
    chmod 0644 "$1"
}
ms() { date +%s%3N; }
AGENT=(timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -t 5000)
proc_ids() { awk -v k="$2:" '$1 == k { print $2, $3, $4, $5 }' "/proc/$1/status"; }

# ---- a. user = nobody ------------------------------------------------------------
conf "$TMP/a.conf" user=nobody snapshot_interval_s=1
check "a: starts with user = nobody" start_daemon "$TMP/a.conf" "$TMP/a.log"
check "a: /proc status: Uid is nobody's, real, effective, saved and fs" \
    [ "$(proc_ids "$DPID" Uid)" = "$NUID $NUID $NUID $NUID" ]
check "a: /proc status: Gid is nobody's, all four" \
    [ "$(proc_ids "$DPID" Gid)" = "$NGID $NGID $NGID $NGID" ]
groups=$(awk '$1 == "Groups:" { $1 = ""; print }' "/proc/$DPID/status")
check "a: no supplementary group of root's left (Groups:$groups)" \
    sh -c "! echo ' $groups ' | grep -q ' 0 '"
check "a: no capabilities left" \
    grep -q '^CapEff:[[:space:]]*0000000000000000$' "/proc/$DPID/status"
check "a: it logged the switch" \
    grep -q "dropped privileges to user nobody (uid $NUID), group .* (gid $NGID)" "$TMP/a.log"
check "a: no WARNING about root" sh -c "! grep -q 'WARNING' '$TMP/a.log'"
printf 'enterprise,metric,value,period\nee-001,revenue,1000,2099-01\nne-003,revenue,2000,2099-01\n' \
    > "$TMP/batch.csv"
"${AGENT[@]}" -a pd1 "$TMP/batch.csv" 2> "$TMP/agent.err"
check "a: an agent's batch is acked" [ $? = 0 ]
check "a: clustermonctl status answers, 2 samples applied" \
    [ "$(status_field samples_applied)" = 2 ]
printf 'ne-999,Reload test,new-energy,solar-pv,member,\n' >> "$TMP/reg.csv"
kill -HUP "$DPID"
reloaded=0
for _ in $(seq 1 50); do
    [ "$(status_field firms 2> /dev/null)" = 244 ] && { reloaded=1; break; }
    sleep 0.1
done
check "a: SIGHUP as nobody re-reads config and registry: 244 firms" [ "$reloaded" = 1 ]
check "a: no reload rejected" sh -c "! grep -q 'reload rejected' '$TMP/a.log'"
written=0
for _ in $(seq 1 50); do
    [ "$(status_field snapshots.written 2> /dev/null)" -ge 1 ] 2> /dev/null && { written=1; break; }
    sleep 0.1
done
check "a: a snapshot was written as nobody" [ "$written" = 1 ]
total() { ctl totals --metric revenue --period 2099 --json | jq -c '[.clusters[] | .total | tonumber]'; }
before=$(total)
check "a: the totals show the batch ($before)" [ "$before" = "[1000,2000]" ]
stop_daemon TERM
check "a: SIGTERM: exit 0" [ $? = 0 ]
check "a: the socket files are nobody's" \
    [ "$(stat -c %U "$TMP/control.ipc" 2> /dev/null)" = nobody ]

# ---- f. modes and owners of the state --------------------------------------------
check "f: state_dir is 0700" [ "$(stat -c %a "$STATE")" = 700 ]
check "f: state_dir belongs to nobody" [ "$(stat -c %U "$STATE")" = nobody ]
wide=$(find "$STATE" -mindepth 1 ! -perm 0600 -printf '%f=%m ')
check "f: every file in state_dir is 0600${wide:+ (not: $wide)}" [ -z "$wide" ]
foreign=$(find "$STATE" ! -user nobody -printf '%f ')
check "f: every file in state_dir is nobody's${foreign:+ (not: $foreign)}" [ -z "$foreign" ]
check "f: WAL, snapshot, lock are there" sh -c "
    ls '$STATE'/wal-*.log > /dev/null && ls '$STATE'/snap-*.snap > /dev/null && [ -e '$STATE/lock' ]"

check "a: restarts as nobody on its own state" start_daemon "$TMP/a.conf" "$TMP/a2.log"
check "a: the data is still there after the restart" [ "$(total)" = "$before" ]
check "a: and the same sample count" [ "$(status_field samples_applied)" = 2 ]
stop_daemon TERM
check "a: no errors logged" sh -c "! grep -q '\[error\]' '$TMP/a.log' '$TMP/a2.log'"
check "a: no sanitizer report" sh -c "! grep -qE 'runtime error|Sanitizer' '$TMP/a.log' '$TMP/a2.log'"

# ---- b. root, no user, run_as_root = refuse --------------------------------------
conf "$TMP/b.conf" run_as_root=refuse "state_dir=$TMP/state-b"
t0=$(ms)
timeout 20 "$BIN/clustermond" -c "$TMP/b.conf" 2> "$TMP/b.log"
rc=$?
took=$(($(ms) - t0))
check "b: run_as_root = refuse as root: exit 1 (got $rc)" [ "$rc" = 1 ]
check "b: it says why" \
    grep -q 'running as root and daemon.user is not set: set user = .* or run_as_root = warn' "$TMP/b.log"
check "b: and stops fast (${took} ms)" [ "$took" -lt 5000 ]

# ---- c. root, no user, the default -----------------------------------------------
conf "$TMP/c.conf" "state_dir=$TMP/state-c"
check "c: starts as root without a user" start_daemon "$TMP/c.conf" "$TMP/c.log"
check "c: still root" [ "$(proc_ids "$DPID" Uid)" = "0 0 0 0" ]
check "c: and says so loudly: a WARNING" \
    grep -q 'WARNING: clustermond is running as root and daemon.user is not set' "$TMP/c.log"
check "c: the WARNING names the fix" grep -q 'WARNING: .*set user = ' "$TMP/c.log"
stop_daemon TERM
check "c: SIGTERM: exit 0" [ $? = 0 ]

# ---- d. a user that does not exist -----------------------------------------------
conf "$TMP/d.conf" user=clustermon-no-such-user "state_dir=$TMP/state-d"
timeout 20 "$BIN/clustermond" -c "$TMP/d.conf" 2> "$TMP/d.log"
rc=$?
check "d: no such user: exit 2 (got $rc)" [ "$rc" = 2 ]
check "d: naming it" grep -q "daemon.user: no such user 'clustermon-no-such-user'" "$TMP/d.log"
"$BIN/clustermond" -n -c "$TMP/d.conf" > "$TMP/d.out" 2>&1
rc=$?
check "d: -n says the same, exit 2" sh -c "[ $rc = 2 ] && grep -q 'no such user' '$TMP/d.out'"
conf "$TMP/d2.conf" user=nobody group=clustermon-no-such-group "state_dir=$TMP/state-d"
"$BIN/clustermond" -n -c "$TMP/d2.conf" > "$TMP/d2.out" 2>&1
rc=$?
check "d: no such group: exit 2, naming it" \
    sh -c "[ $rc = 2 ] && grep -q \"daemon.group: no such group 'clustermon-no-such-group'\" '$TMP/d2.out'"
conf "$TMP/d3.conf" user=root "state_dir=$TMP/state-d"
"$BIN/clustermond" -n -c "$TMP/d3.conf" > "$TMP/d3.out" 2>&1
rc=$?
check "d: user = root drops nothing: exit 2, saying so" \
    sh -c "[ $rc = 2 ] && grep -q 'daemon.user = root: that is uid 0' '$TMP/d3.out'"

# ---- e. files others could have written ------------------------------------------
cp "$TMP/reg.csv" "$TMP/ww.csv"
chmod 0666 "$TMP/ww.csv"
conf "$TMP/e.conf" "state_dir=$TMP/state-e"
sed -i "s|^registry = .*|registry = $TMP/ww.csv|" "$TMP/e.conf"
"$BIN/clustermond" -n -c "$TMP/e.conf" > "$TMP/e.out" 2>&1
rc=$?
check "e: a world-writable registry: -n exits 2 (got $rc)" [ "$rc" = 2 ]
check "e: naming the file" grep -q "daemon.registry: $TMP/ww.csv: writable by everyone" "$TMP/e.out"
timeout 20 "$BIN/clustermond" -c "$TMP/e.conf" 2> "$TMP/e.log"
rc=$?
check "e: and the daemon does not start (exit $rc)" \
    sh -c "[ $rc = 2 ] && grep -q 'ww.csv: writable by everyone' '$TMP/e.log'"
check "e: nothing was created" [ ! -e "$TMP/state-e" ]
mkdir -m 0777 "$TMP/shared-state"
conf "$TMP/e2.conf" "state_dir=$TMP/shared-state"
"$BIN/clustermond" -n -c "$TMP/e2.conf" > "$TMP/e2.out" 2>&1
rc=$?
check "e: a state_dir others can write: exit 2, naming it" \
    sh -c "[ $rc = 2 ] && grep -q 'daemon.state_dir: $TMP/shared-state: writable by others' '$TMP/e2.out'"
mkdir -m 0700 "$TMP/their-state"
chown nobody "$TMP/their-state"
conf "$TMP/e3.conf" "state_dir=$TMP/their-state"
"$BIN/clustermond" -n -c "$TMP/e3.conf" > "$TMP/e3.out" 2>&1
rc=$?
check "e: a state_dir of another user: exit 2, naming the owner" \
    sh -c "[ $rc = 2 ] && grep -q 'their-state: owned by nobody' '$TMP/e3.out'"
printf 'not a key\n' > "$TMP/open.key"
chmod 0640 "$TMP/open.key"
conf "$TMP/e4.conf" "state_dir=$TMP/state-e" "curve_secret_key=$TMP/open.key"
"$BIN/clustermond" -n -c "$TMP/e4.conf" > "$TMP/e4.out" 2>&1
rc=$?
check "e: a secret key its group can read: exit 2 already under -n, naming it" \
    sh -c "[ $rc = 2 ] && grep -q 'daemon.curve_secret_key: $TMP/open.key: open to others (mode 0640)' '$TMP/e4.out'"
conf "$TMP/e5.conf" "state_dir=$TMP/state-e"
sed -i "s|^registry = .*|registry = $TMP|" "$TMP/e5.conf"
"$BIN/clustermond" -n -c "$TMP/e5.conf" > "$TMP/e5.out" 2>&1
rc=$?
check "e: a registry that is a directory: exit 2" \
    sh -c "[ $rc = 2 ] && grep -q 'daemon.registry: $TMP: not a regular file' '$TMP/e5.out'"

# ---- g. not root -----------------------------------------------------------------
# as nobody, in a directory of nobody's for its sockets and state
G=$TMP/g
mkdir -m 0700 "$G"
chown nobody "$G"
gconf() {
    conf "$1" "ingest=ipc://$G/ingest.ipc" "alerts=ipc://$G/alerts.ipc" \
        "control=ipc://$G/control.ipc" "state_dir=$G/state-$2" "user=$2"
}
gconf "$TMP/g1.conf" nobody
setpriv --reuid=nobody --regid="$NGID" --clear-groups -- \
    "$BIN/clustermond" -c "$TMP/g1.conf" -l debug 2> "$TMP/g1.log" &
DPID=$!
PIDS+=("$DPID")
up=0
for _ in $(seq 1 100); do
    "$BIN/clustermonctl" -e "ipc://$G/control.ipc" -t 200 ping > /dev/null 2>&1 && { up=1; break; }
    kill -0 "$DPID" 2> /dev/null || break
    sleep 0.1
done
check "g: as nobody with user = nobody: runs" [ "$up" = 1 ]
check "g: logs that it already is that user" grep -q 'already running as that user' "$TMP/g1.log"
stop_daemon TERM
gconf "$TMP/g2.conf" daemon
timeout 20 setpriv --reuid=nobody --regid="$NGID" --clear-groups -- \
    "$BIN/clustermond" -c "$TMP/g2.conf" 2> "$TMP/g2.log"
rc=$?
check "g: as nobody with user = daemon: exit 1 (got $rc)" [ "$rc" = 1 ]
check "g: switching users needs root, it says" \
    grep -q 'daemon.user = daemon: switching users needs root; running as nobody' "$TMP/g2.log"

finish
