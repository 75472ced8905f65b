#!/usr/bin/env bash
# tests/officials_e2e.sh -- the working groups' side on the demo data: series
# with coverage, ranking (drag firms), range totals, the report's chains,
# other members, tiers and designations, exact JSON and CSV amounts, the
# Chinese tables, the alert history across SIGKILL and SIGTERM restarts,
# acknowledgements stopping reminders, and the audit trail of silences.
#
#   BIN=build bash tests/officials_e2e.sh        (part of make check)
#
# Every wait is bounded; the daemon and the subscriber are stopped and
# reaped; the temp dir is removed.
SUITE=officials
source "$(dirname "$0")/lib.sh"

# the growth rule reminds every 2 s while firing, so a held reminder shows
make_config "$TMP/c.conf"
sed -i 's|^\[rule ne-revenue-growth\]|[rule ne-revenue-growth]\nrepeat = 2s|' "$TMP/c.conf"
check "daemon starts on the demo config" start_daemon "$TMP/c.conf"
for f in 2021 2022 readings; do
    timeout 60 "$BIN/clustermon-agent" -e "$INGEST" -a "off-$f" -s "$TMP/spool" \
        "daemon/demo/$f.csv" 2>> "$TMP/agent.log"
    check "agent sends demo $f.csv" [ $? = 0 ]
done
# a firm that sends only a reading in 2023 has not reported revenue for 2023
printf 'enterprise,metric,value,timestamp\nee-001,cod,20.5,2023-03-01T10:00:00+08:00\n' > "$TMP/r2023.csv"
timeout 30 "$BIN/clustermon-agent" -e "$INGEST" -a off-2023 -s "$TMP/spool" "$TMP/r2023.csv" 2>> "$TMP/agent.log"

# ---- series ---------------------------------------------------------------------
ctl series --metric revenue --cluster new-energy --from 2021-01 --to 2021-12 --json > "$TMP/s.json"
check "series: 12 monthly points of 2021" jqe '.points | length == 12' "$TMP/s.json"
check "series: the 2021 new-energy months sum to exactly 6840000000.000" \
    jqe '.sum == "6840000000.000"' "$TMP/s.json"
# the points themselves, summed exactly (integers of milli-units, no float)
exact_sum() { python3 -c '
import csv, sys
from decimal import Decimal
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
print(sum(Decimal(r[sys.argv[2]]) for r in rows if r[sys.argv[2]]))' "$@"; }
ctl series --metric revenue --cluster new-energy --from 2021-01 --to 2021-12 --csv > "$TMP/s.csv"
check "series --csv: the points add up to 6840000000.000 exactly" \
    [ "$(exact_sum "$TMP/s.csv" value)" = "6840000000.000" ]
check "series --csv: amounts carry the stored three decimals" \
    grep -q '^2021-01,420592166.000,46,46,100.0000' "$TMP/s.csv"
check "series: coverage per point (2022-06: 45 of 46 reported)" jqe \
    '.points[] | select(.period == "2022-06") | .reporting == 45 and .members == 46' \
    <(ctl series --metric revenue --cluster new-energy --from 2022-01 --to 2022-06 --json)
check "series --by quarter --yoy: 2022-Q1 against 2021-Q1" jqe \
    '.points[0].period == "2022-Q1" and .points[0].last_year != null and (.points[0].yoy_pct > 0)' \
    <(ctl series --metric revenue --cluster new-energy --from 2022-01 --to 2022-06 --by quarter --yoy --json)
check "series --firm: ee-007's 2022-05 is exactly half its 2022-04" jqe \
    '(.points[3].value | tonumber) == 2 * (.points[4].value | tonumber)' \
    <(ctl series --metric revenue --firm ee-007 --from 2022-01 --to 2022-06 --json)
check "series --designation: the provincial demonstration firm alone" jqe \
    '.points[0].members == 1 and .sum == "1489097545.000"' \
    <(ctl series --metric revenue --cluster energy-env --designation provincial-tech-demo --from 2021 --to 2021 --by year --json)
check "series: an unknown chain is refused with the reason" \
    sh -c "'$BIN/clustermonctl' -e '$CONTROL' series --metric revenue --cluster new-energy --chain nope --from 2021 --to 2021 2>&1 | grep -q \"chain: cluster new-energy has no chain 'nope'\""

# ---- totals over a range ----------------------------------------------------------
check "totals --period 2022-01..2022-06: new-energy H1 exactly" jqe \
    '.period == "2022-01..2022-06" and (.clusters[] | select(.id == "new-energy") | .total == "3332049607.000")' \
    <(ctl totals --metric revenue --period 2022-01..2022-06 --json)
check "totals --period 2021: unchanged, one year" jqe \
    '.clusters[] | select(.id == "energy-env") | .total == "20580000000.000"' \
    <(ctl totals --metric revenue --period 2021 --json)

# ---- ranking ------------------------------------------------------------------------
ctl ranking --metric revenue --cluster new-energy --from 2022-01 --to 2022-06 --json > "$TMP/r.json"
check "ranking: growth +8.00 % against the rule's +15 % target" \
    jqe '(.growth_pct * 100 | round) == 800 and .target_pct == 15 and .target_rule == "ne-revenue-growth"' "$TMP/r.json"
check "ranking: ne-037 (stopped reporting) is among the three largest drags" \
    jqe '[.firms[:3][].id] | index("ne-037") != null' "$TMP/r.json"
check "ranking: the firms' gap shares add up to the scope's gap" \
    jqe '(([.firms[].gap_pp] | add) - .gap_pp | fabs) < 1e-6' "$TMP/r.json"

# ---- report ----------------------------------------------------------------------------
ctl report --year 2021 --json > "$TMP/rep.json"
ee='.clusters[] | select(.id == "energy-env")'
check "report: energy-env has 1 provincial demonstration firm" \
    jqe "$ee | .designations[] | select(.id == \"provincial-tech-demo\") | .firms == 1" "$TMP/rep.json"
check "report: energy-env has 13 provincial SME sci-tech firms" \
    jqe "$ee | .designations[] | select(.id == \"provincial-sme-scitech\") | .firms == 13" "$TMP/rep.json"
check "report: ... all among its 40 key firms (leading + backbone + potential)" \
    jqe "$ee | [.tiers[] | select(.id != \"member\") | .firms] | add == 40" "$TMP/rep.json"
check "report: energy-env revenue is exactly 20580000000.000" \
    jqe "$ee | .revenue == \"20580000000.000\"" "$TMP/rep.json"
check "report: chains and other members (no chain) add up to 20.58 bn" python3 -c '
import json, sys
from decimal import Decimal
c = [c for c in json.load(open(sys.argv[1]))["clusters"] if c["id"] == "energy-env"][0]
rows = [Decimal(x["revenue"]) for x in c["chains"]] + [Decimal(c["no_chain"]["revenue"])]
tiers = [Decimal(x["revenue"]) for x in c["tiers"]]
sys.exit(not (sum(rows) == Decimal("20580000000.000") == sum(tiers) == Decimal(c["revenue"])))' "$TMP/rep.json"
ctl report --year 2021 --csv > "$TMP/rep.csv"
check "report --csv: the other-members row, exact" \
    grep -q '^chain,other members (no chain),157,157,74,4831041068.000,' "$TMP/rep.csv"
check "report: 'reporting' counts revenue, not a 2023 reading" \
    jqe "$ee | .reporting == 0 and .firms == 197" <(ctl report --year 2023 --json)
ctl report --year 2021 --lang zh > "$TMP/rep.zh"
check "report --lang zh: 亿元 amounts, Chinese column and row names" sh -c "
    grep -q '营业收入（亿元）' '$TMP/rep.zh' && grep -q '省级技术创新示范企业' '$TMP/rep.zh' &&
    grep -q '205.80' '$TMP/rep.zh' && grep -q '其他成员（未入链）' '$TMP/rep.zh'"
check "LANG=zh_CN.UTF-8 picks Chinese too, --lang en English" sh -c "
    LANG=zh_CN.UTF-8 '$BIN/clustermonctl' -e '$CONTROL' report --year 2021 | grep -q '集群' &&
    LANG=zh_CN.UTF-8 '$BIN/clustermonctl' -e '$CONTROL' report --year 2021 --lang en | grep -q 'other members'"
check "tables right-align amounts" sh -c "ctl() { '$BIN/clustermonctl' -e '$CONTROL' \"\$@\"; }
    ctl report --year 2021 --lang en | grep -E '^cluster +energy-env +197 +197 +114 +20,580,000,000 +1,234,800,000\$' > /dev/null"

# ---- history, acknowledgements, reminders --------------------------------------------------
GROWTH=ne-revenue-growth:new-energy
check "history: the growth alert fired" wait_for 10 sh -c \
    "'$BIN/clustermonctl' -e '$CONTROL' history --rule ne-revenue-growth --json | jq -e '.entries | any(.kind == \"alert\" and .state == \"firing\")'"
"$BIN/clustermon-sub" -e "$ALERTS" --no-snapshot --timeout 60000 > "$TMP/sub.jsonl" 2> "$TMP/sub.err" &
SUB=$!
PIDS+=("$SUB")
reminders() { jq -s --arg id "$GROWTH" '[.[] | select(.id == $id and .reminder == true)] | length' "$TMP/sub.jsonl"; }
check "a firing alert is reminded every 2 s" wait_for 10 sh -c "[ \$(jq -s '[.[] | select(.id == \"$GROWTH\" and .reminder == true)] | length' '$TMP/sub.jsonl') -ge 1 ]"
check "ack records who and why" sh -c "'$BIN/clustermonctl' -e '$CONTROL' ack $GROWTH --note 'plant maintenance in May' | grep -q 'acknowledged by local'"
check "ack of an alert that is not firing is refused" \
    sh -c "! '$BIN/clustermonctl' -e '$CONTROL' ack cod-limit:ee-024 --note x 2> /dev/null"
sleep 0.5
before=$(reminders)
sleep 5
check "acknowledged: no reminder for 5 s (2 s repeat; had $before)" [ "$(reminders)" = "$before" ]
check "alerts marks the acknowledged alert (who, note)" jqe \
    --arg id "$GROWTH" '.acks | any(.alert_id == $id and .who == "local" and .note == "plant maintenance in May")' \
    <(ctl alerts --json)
check "alerts table shows ACKED" sh -c "'$BIN/clustermonctl' -e '$CONTROL' alerts | grep -q 'ACKED by local'"
ctl silence add --rule cod-limit --cluster energy-env --firm ee-024 --for 1h --reason 'sensor swap' > /dev/null
sid=$(ctl silence list | awk 'NR > 1 { print $1; exit }')
ctl silence rm "$sid" > /dev/null
check "silences leave an audit trail (who, what, why)" jqe \
    '[.entries[] | select(.kind | startswith("silence"))] | length == 2 and .[0].who == "local" and .[0].note == "sensor swap" and .[1].kind == "silence_rm"' \
    <(ctl history --cluster energy-env --json)
check "history --csv: ISO 8601 times, one row per entry" sh -c "
    '$BIN/clustermonctl' -e '$CONTROL' history --csv | head -1 | grep -q '^time,kind,state' &&
    '$BIN/clustermonctl' -e '$CONTROL' history --csv | grep -q '^20[0-9-]*T[0-9:]*+08:00,ack,'"
n_before=$(ctl history --json | jq '.entries | length')

stop_pid "$SUB" 5
for sig in KILL TERM; do
    stop_daemon "$sig"
    check "restart after SIG$sig" start_daemon "$TMP/c.conf"
    check "history after SIG$sig: every entry is still there ($n_before)" \
        [ "$(ctl history --json | jq '.entries | length')" -ge "$n_before" ]
    check "history after SIG$sig: the acknowledgement with its note" jqe \
        '.entries | any(.kind == "ack" and .note == "plant maintenance in May" and .who == "local")' \
        <(ctl history --rule ne-revenue-growth --json)
    check "after SIG$sig: still acknowledged in alerts" jqe --arg id "$GROWTH" \
        '.acks | any(.alert_id == $id)' <(ctl alerts --json)
done
"$BIN/clustermon-sub" -e "$ALERTS" --no-snapshot --timeout 60000 > "$TMP/sub.jsonl" 2> "$TMP/sub.err" &
SUB=$!
PIDS+=("$SUB")
sleep 5
check "after the restarts the acknowledged alert is still not reminded" [ "$(reminders)" = 0 ]
stop_pid "$SUB" 5
check "history_retention: a bad value is refused with file:line: field" sh -c "
    sed 's|^\[alerting\]|[alerting]\nhistory_retention = soon|' '$TMP/c.conf' > '$TMP/bad.conf'
    grep -q '^\[alerting\]' '$TMP/bad.conf' || printf '[alerting]\nhistory_retention = soon\n' >> '$TMP/bad.conf'
    '$BIN/clustermond' -n -c '$TMP/bad.conf' 2>&1 | grep -q 'alerting.history_retention: .soon. is not a duration'"

stop_daemon TERM
check "daemon exits cleanly" [ $? = 0 ]
finish
