#!/usr/bin/env bash
# Firms leave without erasing the past: a firm removed from the registry
# keeps its figures (reload, restart after SIGKILL from the WAL alone,
# restart from a snapshot with that WAL trimmed, a registry edited while the
# daemon was down); it is listed as a former member by `firms --all`, its new
# samples are refused naming the date it left, and put back it continues its
# own series.
SUITE=firmsleave
source "$(dirname "$0")/lib.sh"

AG() { "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" "$@"; }
# year totals per cluster and chain: [id, firms, reporting, revenue, profit, chains...]
figures() {
    ctl report --year 2022 --json | jq -c '[.clusters[] | [.id, .firms, .reporting, .revenue, .profit,
        [.chains[] | [.id, .firms, .revenue]]]]'
}
# money only: what must never change when a firm leaves
money() { ctl report --year 2022 --json | jq -c '[.clusters[] | [.id, (.revenue | tonumber), (.profit | tonumber), [.chains[] | .revenue | tonumber]]]'; }
firm_json() { ctl firms --all --json | jq -c --arg f "$1" '[.firms[] | select(.id == $f)]'; }
status_of() { firm_json "$1" | jq -r 'map(.status) | join(",")'; }
ee_cluster() { ctl report --year 2022 --json | jq -r ".clusters[] | select(.id == \"energy-env\") | .$1"; }

cp "$ROOT/daemon/demo/registry.csv" "$TMP/reg.csv"
# no periodic snapshot until asked for: the first restart must rebuild from the WAL alone
make_config "$TMP/c.conf" "snapshot_interval_s=3600"
sed -i "s|^registry = .*|registry = $TMP/reg.csv|" "$TMP/c.conf"
check "daemon starts" start_daemon "$TMP/c.conf"
AG -a y22 "$ROOT/daemon/demo/2022.csv"
before=$(figures)
money_before=$(money)
rev_firm=$(awk -F, '$1 == "ee-002" && $2 == "revenue" { s += $3 } END { printf "%d", s }' \
    "$ROOT/daemon/demo/2022.csv")
check "ee-002 reported 2022 (the demo data has it)" [ "$rev_firm" -gt 0 ]
ee_firms=$(ee_cluster firms)
check "the demo year is in: every energy-env firm reported" [ "$(ee_cluster reporting)" = "$ee_firms" ]

# ---- ee-002 leaves ---------------------------------------------------------------
sed -i '/^ee-002,/d' "$TMP/reg.csv"
check "reload without ee-002: exit 0" ctl reload > /dev/null
check "members: 242" [ "$(status_field firms)" = 242 ]
check "2022 totals unchanged after the reload" [ "$(money)" = "$money_before" ]
check "2022: ee-002 still counts (it reported), marked former: 1" \
    [ "$(figures)|$(ee_cluster former)" = "$before|1" ]
check "firms (members only) no longer lists it" \
    [ "$(ctl firms --json | jq '[.firms[] | select(.id == "ee-002")] | length')" = 0 ]
# dates are the daemon's: its configured time zone
today=$(TZ=$(ctl firms --json | jq -r .timezone) date +%F)
check "firms --all shows it as left today" \
    jqe --arg d "$today" '.[0].status == "left" and .[0].left_on == $d and .[0].silent == false' \
    <<< "$(firm_json ee-002)"
check "firms --all text: (left) and the date" \
    sh -c "'$BIN/clustermonctl' -e '$CONTROL' firms --all | grep '^ee-002 ' | grep -q \"(left).*former member, left on $today\""
check "totals 2022-03: the same with ee-002 counted as former" \
    jqe --argjson n "$ee_firms" '.clusters[] | select(.id == "energy-env") | .former == 1 and .firms == $n' \
    <<< "$(ctl totals --metric revenue --period 2022-03 --json)"
check "a period it never reported (2023-01): it does not count" \
    jqe --argjson n "$ee_firms" '.clusters[] | select(.id == "energy-env") | .former == 0 and .firms == $n - 1' \
    <<< "$(ctl totals --metric revenue --period 2023-01 --json)"
printf 'ee-002,revenue,5,2022-07\n' | AG -a late - > "$TMP/late.out" 2>&1
check "a new sample for it is refused: unknown_firm, left on DATE" \
    grep -q "unknown_firm.*ee-002.*left the registry on $today" "$TMP/late.out" "$TMP/daemon.log"
check "and changed nothing" [ "$(money)" = "$money_before" ]
check "the daemon logged who left" grep -q "reloaded .*left 1 (their figures kept)" "$TMP/daemon.log"

# ---- restarts ---------------------------------------------------------------------
stop_daemon KILL
check "SIGKILL, restart (WAL only, no snapshot)" start_daemon "$TMP/c.conf"
check "the WAL was replayed (the data is in no snapshot)" [ "$(status_field recovery.wal_records)" -gt 0 ]
check "after SIGKILL: 2022 unchanged" [ "$(figures)" = "$before" ]
check "after SIGKILL: ee-002 still left, on the same date" \
    jqe --arg d "$today" '.[0].status == "left" and .[0].left_on == $d and length == 1' \
    <<< "$(firm_json ee-002)"

# snapshots until the WAL that held ee-002's batches is trimmed away
sed -i 's/^snapshot_interval_s = .*/snapshot_interval_s = 1/' "$TMP/c.conf"
ctl reload > /dev/null
for i in 1 2 3; do
    printf 'ee-001,revenue,1,2031-0%s\n' "$i" | AG -a tick -
    n=$(status_field snapshots.written)
    wait_for 10 sh -c "[ \$('$BIN/clustermonctl' -e '$CONTROL' status --json | jq .snapshots.written) -gt $n ]"
done
check "snapshots taken, the first WAL segment trimmed" \
    sh -c "[ ! -e '$STATE/wal-0000000000000001.log' ] && ls '$STATE'/snap-*.snap > /dev/null"
stop_daemon TERM
check "SIGTERM, restart (from the snapshot)" start_daemon "$TMP/c.conf"
check "a snapshot was used" [ "$(status_field recovery.snapshot_segment)" -gt 0 ]
check "after SIGTERM: 2022 unchanged" [ "$(figures)" = "$before" ]
check "after SIGTERM: ee-002 still left, on the same date" \
    jqe --arg d "$today" '.[0].status == "left" and .[0].left_on == $d' <<< "$(firm_json ee-002)"

# ---- a firm removed while the daemon is down ----------------------------------------
stop_daemon TERM
sed -i '/^ee-003,/d' "$TMP/reg.csv"
check "restart with ee-003 gone from the file" start_daemon "$TMP/c.conf"
check "ee-003 left at start-up; 2022 money unchanged" \
    [ "$(status_of ee-003)|$(money)" = "left|$money_before" ]
check "the start-up logged the change" grep -q "membership: 1 firms joined or left" "$TMP/daemon.log"
stop_daemon KILL
check "SIGKILL, restart" start_daemon "$TMP/c.conf"
check "ee-003 is still a former member, money unchanged" \
    [ "$(status_of ee-003)|$(money)" = "left|$money_before" ]

# ---- ee-002 comes back ----------------------------------------------------------------
grep '^ee-002,' "$ROOT/daemon/demo/registry.csv" >> "$TMP/reg.csv"
check "reload with ee-002 back: exit 0" ctl reload > /dev/null
check "ee-002 is a member again, listed once" [ "$(status_of ee-002)" = active ]
check "2022 unchanged by its return" [ "$(money)" = "$money_before" ]
check "a new month for it is taken" sh -c "printf 'ee-002,revenue,1000,2022-07\n' | \
    '$BIN/clustermon-agent' -s '$TMP/spool' -e '$INGEST' -a back -"
check "its series continues: last data 2022-07" \
    jqe '.[0].last_data == "2022-07" and length == 1' <<< "$(firm_json ee-002)"
rev_before=$(echo "$money_before" | jq '.[] | select(.[0] == "energy-env") | .[1]')
rev_after=$(money | jq '.[] | select(.[0] == "energy-env") | .[1]')
check "energy-env 2022 revenue grew by exactly the new month (1000)" \
    awk -v a="$rev_before" -v b="$rev_after" 'BEGIN { exit !(b - a == 1000) }'
check "totals for 2022-07: ee-002's 1000, one firm reporting" \
    jqe '.clusters[] | select(.id == "energy-env") | (.total | tonumber) == 1000 and .reporting == 1' \
    <<< "$(ctl totals --metric revenue --period 2022-07 --json)"
stop_daemon KILL
check "SIGKILL, restart" start_daemon "$TMP/c.conf"
money_back=$(echo "$money_before" | jq -c \
    'map(if .[0] == "energy-env" then .[1] += 1000 | .[3][0] += 1000 else . end)')
check "after the restart: ee-002 a member with its whole series" \
    [ "$(status_of ee-002)|$(money)" = "active|$money_back" ]
check "ee-003 still former" [ "$(status_of ee-003)" = left ]
check "stops cleanly" stop_daemon TERM
finish
