#!/usr/bin/env bash
# SIGHUP reload: a new config and registry take effect atomically, figures
# and alerts that still apply are kept, and a broken config is rejected with
# the old one still running.
SUITE=reload
source "$(dirname "$0")/lib.sh"

AG() { "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" "$@"; }
cp "$ROOT/daemon/demo/registry.csv" "$TMP/reg.csv"
make_config "$TMP/c.conf"
sed -i "s|^registry = .*|registry = $TMP/reg.csv|" "$TMP/c.conf"
check "daemon starts" start_daemon "$TMP/c.conf"
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

kill -TERM "$SUBPID" 2>/dev/null
wait "$SUBPID" 2>/dev/null
stop_daemon TERM
check "stops cleanly" [ "$?" = 0 ]
finish
