#!/usr/bin/env bash
# SIGHUP reload: a new config and registry take effect atomically, figures
# and alerts that still apply are kept, and a broken config is rejected with
# the old one still running.
SUITE=reload
source "$(dirname "$0")/lib.sh"

AG() { "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" "$@"; }
# a fake systemd: every sd_notify datagram, one a line, newlines as |
NOTIFY=$TMP/notify.sock
fake_systemd "$NOTIFY" "$TMP/notify.log"
cp "$ROOT/daemon/demo/registry.csv" "$TMP/reg.csv"
start_http() { # /metrics on a picked port, again under retry_bind if it was taken
    HTTP_PORT=$(free_port)
    make_config "$TMP/c.conf" "http=127.0.0.1:$HTTP_PORT"
    sed -i "s|^registry = .*|registry = $TMP/reg.csv|" "$TMP/c.conf"
    start_daemon "$TMP/c.conf"
}
export NOTIFY_SOCKET=$NOTIFY
check "daemon starts" retry_bind "$TMP/daemon.log" start_http
unset NOTIFY_SOCKET
# metric NAME: its value on /metrics
metric() { curl -sf --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
check "/metrics: the start-up load counts as a successful one" \
    [ "$(metric clustermon_config_last_reload_successful)" = 1 ]
t0=$(metric clustermon_config_last_reload_success_timestamp_seconds)
check "/metrics: its timestamp is the start, Unix time" \
    awk -v t="$t0" -v now="$(date +%s)" 'BEGIN { exit !(t > now - 60 && t <= now + 1) }'
"$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --state-file "$TMP/sub.state" --timeout 60000 \
    > "$TMP/alerts.jsonl" 2> "$TMP/sub.err" &
SUBPID=$!
PIDS+=("$SUBPID")
sleep 0.3
AG -a r21 "$ROOT/daemon/demo/2021.csv"
AG -a r22 "$ROOT/daemon/demo/2022.csv"
report() { ctl report --year 2021 --json | jq -c '[.clusters[] | [.id, .firms, .revenue, .profit]]'; }
before=$(report)
applied=$(status_field samples_applied)
check "the growth alert fires on the demo data" \
    jqe -s 'any(.id == "ne-revenue-growth:new-energy" and .state == "firing")' "$TMP/alerts.jsonl"

# a new firm, a rule removed, a target lowered below the cluster's growth
printf 'ne-999,新公司（示例）,new-energy,solar-pv,member,\n' >> "$TMP/reg.csv"
sed -i '/^\[rule above-scale\]/,/^severity = info/d; s/^target = 15/target = 5/' "$TMP/c.conf"
kill -HUP "$DPID"
sleep 0.5
check "reloaded: 244 firms, 5 rules" \
    sh -c "[ \"\$('$BIN/clustermonctl' -e '$CONTROL' status --json | jq -c '[.firms, .rules]')\" = '[244,5]' ]"
check "the new firm counts as a member" \
    [ "$(ctl report --year 2021 --json | jq '.clusters[] | select(.id == "new-energy") | .firms')" = 47 ]
check "figures are kept across the reload" \
    [ "$(ctl report --year 2021 --json | jq -c '[.clusters[] | [.id, .revenue, .profit]]')" = \
      "$(echo "$before" | jq -c '[.[] | [.[0], .[2], .[3]]]')" ]
check "no sample was lost or applied again" [ "$(status_field samples_applied)" = "$applied" ]
check "the changed target re-evaluated the growth alert: resolved" \
    jqe -s 'any(.id == "ne-revenue-growth:new-energy" and .state == "resolved")' "$TMP/alerts.jsonl"
check "an alert that still applies is kept, not re-announced" \
    [ "$(jq -s '[.[] | select(.id == "monthly-report:ne-037" and .state == "firing" and (.snapshot | not))] | length' "$TMP/alerts.jsonl")" = 1 ]
check "the new firm can report" \
    sh -c "printf 'ne-999,revenue,100,2022-06\n' | '$BIN/clustermon-agent' -s '$TMP/spool' -e '$INGEST' -a r999 -"
check "the daemon logged the reload" grep -q "reloaded .*244 firms (was 243), 5 rules (was 6)" "$TMP/daemon.log"
t_good=$(metric clustermon_config_last_reload_success_timestamp_seconds)
check "/metrics: a good SIGHUP moves the success timestamp" \
    awk -v a="$t0" -v b="$t_good" 'BEGIN { exit !(b > a) }'

# a broken config: rejected, the old one keeps running
echo 'this is not ini' >> "$TMP/c.conf"
kill -HUP "$DPID"
sleep 0.3
check "a broken config is rejected with file:line" \
    grep -q "reload rejected, still running on the previous config: .*c.conf:[0-9]*: syntax" "$TMP/daemon.log"
check "and the daemon still serves on the old one" \
    sh -c "[ \"\$('$BIN/clustermonctl' -e '$CONTROL' status --json | jq -c '[.firms, .rules]')\" = '[244,5]' ]"
printf 'ee-001,revenue,1,2031-01\n' | AG -a rafter -
check "and still takes data" [ "$(status_field samples_applied)" = $((applied + 2)) ]

# a broken registry: rejected too
sed -i '$ d' "$TMP/c.conf"
printf 'ee-001,duplicate,energy-env,,member,\n' >> "$TMP/reg.csv"
kill -HUP "$DPID"
sleep 0.3
check "a broken registry is rejected naming the duplicate" \
    grep -q "reload rejected.*reg.csv:[0-9]*: id: firm 'ee-001' is already defined on line 2" "$TMP/daemon.log"


# ---- reload tells the truth: clustermonctl, /metrics, status, sd_notify ----------------
check "after a rejected SIGHUP: /metrics says the last reload failed" \
    [ "$(metric clustermon_config_last_reload_successful)" = 0 ]
check "and counts the rejected reloads: 2" \
    [ "$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep -c '^clustermon_config_reloads_total{result="failed"} 2$')" = 1 ]
check "rejected ones leave the success timestamp at the last good load" \
    [ "$(metric clustermon_config_last_reload_success_timestamp_seconds)" = "$t_good" ]
ctl reload > "$TMP/reload.out" 2> "$TMP/reload.err"
rc=$?
check "clustermonctl reload of a broken registry: exit 1" [ "$rc" = 1 ]
check "and it prints why" grep -q "reload: rejected, still running on the previous config: .*reg.csv:[0-9]*: id: firm 'ee-001' is already defined" "$TMP/reload.err"
check "status --json: reload.last_ok false, with the reason" \
    sh -c "ctl() { '$BIN/clustermonctl' -e '$CONTROL' \"\$@\"; }; ctl status --json |
           jq -e '.reload.last_ok == false and (.reload.last_error | test(\"ee-001\")) and .reload.failed == 3' > /dev/null"
ctl status > "$TMP/status.txt"
check "status says the last reload failed, and why" \
    grep -q "^reload     LAST RELOAD FAILED, running the config loaded .*: .*reg.csv:[0-9]*: id: firm 'ee-001'" "$TMP/status.txt"
check "sd_notify: RELOADING=1, then READY=1 with STATUS=reload failed: <reason>" \
    wait_for 5 awk '/^RELOADING=1/ { r = 1 } r && /^READY=1\|STATUS=reload failed: .*reg.csv:[0-9]*: id: firm .ee-001./ { ok = 1 } END { exit !ok }' "$TMP/notify.log"
check "a failed reload stays in the periodic STATUS=" \
    wait_for 8 grep -q '^STATUS=last reload failed, running the previous config; ' "$TMP/notify.log"

# fixed, with a new http port and a new peer_timeout: both need a restart
sed -i '$ d' "$TMP/reg.csv"
HTTP_PORT2=$(free_port)
sed -i "s|^http = .*|http = 127.0.0.1:$HTTP_PORT2|; s|^peer_timeout = .*|peer_timeout = 30|" "$TMP/c.conf"
t1=$(metric clustermon_config_last_reload_success_timestamp_seconds)
sleep 0.1
lines_before=$(wc -l < "$TMP/notify.log")
ctl reload > "$TMP/reload.out" 2> "$TMP/reload.err"
rc=$?
check "a good reload: exit 0" [ "$rc" = 0 ]
check "the reply names what needs a restart, with both values" \
    grep -q "^reloaded: 244 firms, 5 rules (reload 2); needs a restart: daemon.http (127.0.0.1:$HTTP_PORT -> 127.0.0.1:$HTTP_PORT2), daemon.peer_timeout (60 -> 30)$" "$TMP/reload.out"
check "/metrics (still on the old port): the last reload worked" \
    [ "$(metric clustermon_config_last_reload_successful)" = 1 ]
check "with a newer success timestamp" \
    awk -v a="$t1" -v b="$(metric clustermon_config_last_reload_success_timestamp_seconds)" \
        'BEGIN { exit !(b > a) }'
check "/metrics counts the settings waiting for a restart" \
    [ "$(metric clustermon_config_restart_needed)" = 2 ]
ctl status > "$TMP/status.txt"
check "status: config loaded, 2 reloads, 3 rejected; needs a restart" sh -c "
    grep -q '^reload     config loaded .*; 2 reloads, 3 rejected$' '$TMP/status.txt' &&
    grep -q '^           needs a restart: daemon.http (127.0.0.1:$HTTP_PORT -> 127.0.0.1:$HTTP_PORT2)' '$TMP/status.txt'"
check "sd_notify: READY=1 with STATUS=reloaded" \
    wait_for 5 sh -c "tail -n +$((lines_before + 1)) '$TMP/notify.log' |
        grep -q '^READY=1|STATUS=reloaded: 244 firms, 5 rules (some settings need a restart); '"
check "the daemon logged the setting kept until a restart" \
    grep -q "reload: \[daemon\] http changed from '127.0.0.1:$HTTP_PORT' to '127.0.0.1:$HTTP_PORT2': it takes effect after a restart" "$TMP/daemon.log"

# a registry anyone could write: refused by a reload as by start-up (the same
# path checks, daemon/source.c), and the daemon keeps the registry it has
chmod 0666 "$TMP/reg.csv"
ctl reload > "$TMP/reload.out" 2> "$TMP/reload.err"
rc=$?
check "a world-writable registry: clustermonctl reload exits 1 (got $rc)" [ "$rc" = 1 ]
check "and says why, as start-up would" \
    grep -q "reload: rejected, still running on the previous config: daemon.registry: .*reg.csv: writable by everyone" "$TMP/reload.err"
check "the daemon logged the rejection" \
    grep -q "reload rejected, still running on the previous config: daemon.registry: .*reg.csv: writable by everyone" "$TMP/daemon.log"
check "and still serves the 244 firms it had" \
    sh -c "[ \"\$('$BIN/clustermonctl' -e '$CONTROL' status --json | jq -c '[.firms, .reload.last_ok]')\" = '[244,false]' ]"
chmod 0644 "$TMP/reg.csv"
ctl reload > "$TMP/reload.out" 2> "$TMP/reload.err"
check "made safe again, the registry reloads" [ "$?" = 0 ]

stop_pid "$SUBPID"
stop_daemon TERM
check "stops cleanly" [ "$?" = 0 ]
finish
