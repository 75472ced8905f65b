#!/usr/bin/env bash
# tests/ops.sh -- operations: the systemd units, make install/uninstall, the
# man pages, sd_notify, the Prometheus endpoint (promtool, and a real
# Prometheus server scraping it on loopback), the Grafana dashboard's
# queries, and clustermonctl's status, clusters, cluster and firms against
# the demo data.
#
#   BIN=build bash tests/ops.sh        (part of make check)
#
# Every wait is bounded, every child (daemon, agents, subscriber, the notify
# listener, Prometheus) is killed and reaped, and the temp dir is removed.
SUITE=ops
source "$(dirname "$0")/lib.sh"

UNITS=(clustermond.service clustermon-agent@.service clustermon-agent@.timer clustermon-sub@.service
       clustermon-relay.service)
SERVICES=(clustermond.service clustermon-agent@.service clustermon-sub@.service clustermon-relay.service)
MAX_EXPOSURE=3.0

# jqe FILTER FILE: FILE is not empty and FILTER holds (jq 1.6 -e passes on
# empty input, so an empty file must fail here).
jqe() { [ -s "$2" ] && jq -e "$1" "$2" > /dev/null; }
# jqs FILTER: the same for standard input.
jqs() {
    local in
    in=$(cat)
    [ -n "$in" ] && printf '%s' "$in" | jq -e "$1" > /dev/null
}



# ---- make install / uninstall --------------------------------------------------
DEST=$TMP/root
make -s --no-print-directory B="$BIN" install DESTDIR="$DEST" PREFIX=/usr > "$TMP/install.log" 2>&1
check "make install DESTDIR PREFIX=/usr" [ $? = 0 ]
expected=(
    usr/bin/clustermond usr/bin/clustermon-agent usr/bin/clustermon-sub usr/bin/clustermonctl
    usr/lib/systemd/system/clustermond.service usr/lib/systemd/system/clustermon-agent@.service
    usr/lib/systemd/system/clustermon-agent@.timer usr/lib/systemd/system/clustermon-sub@.service
    usr/lib/sysusers.d/clustermon.conf usr/lib/tmpfiles.d/clustermon.conf
    usr/share/man/man1/clustermond.1 usr/share/man/man1/clustermon-agent.1
    usr/share/man/man1/clustermon-sub.1 usr/share/man/man1/clustermonctl.1
    usr/share/man/man5/clustermond.conf.5
    etc/clustermon/clustermond.conf etc/clustermon/registry.csv
    usr/share/clustermon/grafana-dashboard.json usr/share/doc/clustermon/README.md
)
missing=""
for f in "${expected[@]}"; do [ -f "$DEST/$f" ] || missing="$missing $f"; done
check "installed: binaries, units, sysusers/tmpfiles, man pages, config${missing:+ (missing:$missing)}" \
    [ -z "$missing" ]
check "installed programs are executable" test -x "$DEST/usr/bin/clustermond"
check "units point at the installed programs" \
    grep -q '^ExecStart=/usr/bin/clustermond -c /etc/clustermon/clustermond.conf' \
    "$DEST/usr/lib/systemd/system/clustermond.service"
# the installed config, with its registry moved into the temp root, is valid
sed "s|^registry = .*|registry = $DEST/etc/clustermon/registry.csv|" \
    "$DEST/etc/clustermon/clustermond.conf" > "$TMP/installed.conf"
check "the installed config passes clustermond -n" \
    sh -c "'$BIN/clustermond' -n -c '$TMP/installed.conf' | grep -q ': OK: .*243 firms'"
check "the installed config serves /metrics on 127.0.0.1:9730" \
    grep -q '^http = 127.0.0.1:9730' "$DEST/etc/clustermon/clustermond.conf"
check "PREFIX=/usr/local rewrites the units' paths" sh -c "
    make -s --no-print-directory B='$BIN' install DESTDIR='$TMP/local' PREFIX=/usr/local > /dev/null 2>&1 &&
    grep -q '^ExecStart=/usr/local/bin/clustermond ' '$TMP/local/usr/local/lib/systemd/system/clustermond.service'"

# ---- systemd-analyze verify and security ----------------------------------------
# verify needs the programs the units run and the units they refer to
# (sysinit.target, ...): a copy of the installed tree plus the host's units.
VROOT=$TMP/vroot
cp -a "$DEST" "$VROOT"
cp -a /usr/lib/systemd/system/. "$VROOT/usr/lib/systemd/system/"
mkdir -p "$VROOT/bin" && cp /bin/kill "$VROOT/bin/kill"
UDIR=/usr/lib/systemd/system
for u in "${UNITS[@]}"; do
    name=$u
    case $u in *@.*) name=${u/@./@demo.}; ln -s "$u" "$VROOT$UDIR/$name" ;; esac
    out=$(MANPATH="$VROOT/usr/share/man" systemd-analyze verify --root="$VROOT" "$UDIR/$name" 2>&1)
    rc=$?
    check "systemd-analyze verify $name: clean${out:+ ($out)}" [ "$rc" = 0 -a -z "$out" ]
done
for u in "${SERVICES[@]}"; do
    exposure=$(systemd-analyze security --offline=yes "systemd/$u" 2>&1 |
               sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    check "systemd-analyze security $u: exposure ${exposure:-?} <= $MAX_EXPOSURE" \
        sh -c "[ -n '$exposure' ] && echo '$exposure <= $MAX_EXPOSURE' | bc -l | grep -q 1"
    echo "     $u: exposure $exposure"
done
check "clustermond.service: Type=notify, watchdog, reload by SIGHUP" sh -c "
    grep -q '^Type=notify' systemd/clustermond.service &&
    grep -q '^WatchdogSec=' systemd/clustermond.service &&
    grep -q '^ExecReload=/bin/kill -HUP \$MAINPID' systemd/clustermond.service"

# ---- man pages ---------------------------------------------------------------------
for page in daemon/man/*.[15]; do
    warn=$(groff -t -man -ww -z "$page" 2>&1)
    check "man page $(basename "$page") formats without warnings${warn:+ ($warn)}" [ -z "$warn" ]
done
# every long option a program's --help names is in its man page
for prog in clustermond clustermon-agent clustermon-sub clustermonctl; do
    undocumented=""
    for opt in $("$BIN/$prog" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        grep -qF -- "$(printf '%s' "$opt" | sed 's/-/\\-/g')" "daemon/man/$prog.1" ||
            undocumented="$undocumented $opt"
    done
    check "$prog.1 documents every option of --help${undocumented:+ (not:$undocumented)}" \
        [ -z "$undocumented" ]
done
undocumented=""
for cmd in $("$BIN/clustermonctl" --help | sed -n '/^commands:/,/^$/p' | awk 'NF > 1 {print $1}'); do
    sed 's/\\-/-/g' daemon/man/clustermonctl.1 | grep -q "^\.B $cmd\b" || undocumented="$undocumented $cmd"
done
check "clustermonctl.1 documents every command${undocumented:+ (not:$undocumented)}" [ -z "$undocumented" ]

make -s --no-print-directory B="$BIN" uninstall DESTDIR="$DEST" PREFIX=/usr > "$TMP/uninstall.log" 2>&1
left=$(find "$DEST" -type f -o -type l | sed "s|^$DEST/||")
check "make uninstall leaves no file${left:+ (left: $left)}" [ -z "$left" ]
left=$(find "$DEST" -name '*clustermon*')
check "make uninstall leaves no clustermon directory${left:+ (left: $left)}" [ -z "$left" ]

# ---- the daemon under a fake systemd: sd_notify and the watchdog ----------------------
NOTIFY=$TMP/notify.sock
fake_systemd "$NOTIFY" "$TMP/notify.log"
export NOTIFY_SOCKET=$NOTIFY WATCHDOG_USEC=400000
start_http() { # /metrics on a picked port, again under retry_bind if it was taken
    HTTP_PORT=$(free_port)
    make_config "$TMP/ops.conf" "http=127.0.0.1:$HTTP_PORT"
    start_daemon "$TMP/ops.conf"
}
retry_bind "$TMP/daemon.log" start_http
started=$?
unset NOTIFY_SOCKET WATCHDOG_USEC
check "daemon starts with http and NOTIFY_SOCKET" [ "$started" = 0 ]
check "READY=1 once serving, with a STATUS= line" \
    wait_for 5 grep -q '^READY=1|STATUS=0 of 243 firms reporting in [0-9]*, 0 alerts firing, 0.0 samples/s' "$TMP/notify.log"
check "the watchdog is fed every WATCHDOG_USEC/2 from the loop" \
    wait_for 5 sh -c "[ \$(grep -c '^WATCHDOG=1' '$TMP/notify.log') -ge 4 ]"

sed -e "s|$TMP/\([a-z]*\)\.ipc|$TMP/busy-\1.ipc|" -e "s|^state_dir = .*|state_dir = $TMP/busy-state|" \
    "$TMP/ops.conf" > "$TMP/busy.conf"
timeout 20 "$BIN/clustermond" -c "$TMP/busy.conf" 2> "$TMP/busy.log"
rc=$?
check "a second daemon on the same http port: exit 1, naming it" sh -c "
    [ $rc = 1 ] && grep -q 'http: cannot listen on 127.0.0.1:$HTTP_PORT: address already in use' '$TMP/busy.log'"
printf '[daemon]\nhttp = metrics.example:9730\n' > "$TMP/badhttp.conf"
sed -n '/^\[daemon\]/,$p' "$TMP/ops.conf" | sed 1d >> "$TMP/badhttp.conf"
"$BIN/clustermond" -n -c "$TMP/badhttp.conf" > "$TMP/badhttp.out" 2>&1
rc=$?
check "http = a host name: exit 2, file:line: daemon.http" sh -c "
    [ $rc = 2 ] && grep -q 'badhttp.conf:2: daemon.http: .metrics.example:9730.: .metrics.example. is not a numeric' '$TMP/badhttp.out'"

# ---- demo data -------------------------------------------------------------------------
for f in 2021 2022 readings; do
    timeout 60 "$BIN/clustermon-agent" -e "$INGEST" -a "ops-$f" -s "$TMP/spool" \
        "daemon/demo/$f.csv" 2>> "$TMP/agent.log"
    check "agent sends demo $f.csv" [ $? = 0 ]
done
YEAR=$(TZ=Asia/Shanghai date +%Y)
printf 'enterprise,metric,value,period\nne-001,revenue,1000.5,%s-01\nne-003,revenue,2000,%s-01\n' \
    "$YEAR" "$YEAR" > "$TMP/now.csv"
timeout 60 "$BIN/clustermon-agent" -e "$INGEST" -a ops-now -s "$TMP/spool" "$TMP/now.csv" 2>> "$TMP/agent.log"
check "agent sends this year's figures" [ $? = 0 ]

# ---- clustermonctl -------------------------------------------------------------------------
ctl status > "$TMP/status.txt"
check "status: exit 0" [ $? = 0 ]
check "status: version, pid, uptime" grep -q '^clustermond [0-9.]*, pid [0-9]*, up ' "$TMP/status.txt"
check "status: a line per socket with its endpoint" sh -c "
    grep -q '^ingest  *ipc://$TMP/ingest.ipc ' '$TMP/status.txt' &&
    grep -q '^alerts  *ipc://$TMP/alerts.ipc ' '$TMP/status.txt' &&
    grep -q '^control  *ipc://$TMP/control.ipc  *1 ' '$TMP/status.txt' &&
    grep -q '^http  *127.0.0.1:$HTTP_PORT ' '$TMP/status.txt'"
check "status: samples, agents, WAL, snapshots, recovery" sh -c "
    grep -q '^ingest  *9,273 samples applied' '$TMP/status.txt' &&
    grep -q '^agents  *0 connected, 4 known' '$TMP/status.txt' &&
    grep -q '^WAL  *segment 1, fsync interval' '$TMP/status.txt' &&
    grep -q '^snapshots ' '$TMP/status.txt' && grep -q '^recovery ' '$TMP/status.txt'"
ctl status --json > "$TMP/status.json"
check "status --json: status and runtime in one object" \
    jqe '.samples_applied == 9273 and .agents_known == 4 and (.sockets | length) == 4 and
           (.samples_per_s | type) == "number" and .systemd.notify == true and
           .systemd.watchdog_ms == 400 and .wal.segment == 1' "$TMP/status.json"

ctl clusters --year 2021 --json > "$TMP/clusters.json"
check "clusters --year 2021: the demo figures" jqe '
    .clusters[0].id == "energy-env" and .clusters[0].firms == 197 and .clusters[0].reporting == 197 and
    .clusters[0].above_scale == 114 and .clusters[0].revenue == "20580000000.000" and
    .clusters[0].profit == "1234800000.000" and .clusters[1].revenue == "6840000000.000" and
    .clusters[1].profit == "448000000.000" and .clusters[1].chains == ["solar-pv", "energy-storage"]' \
    "$TMP/clusters.json"
check "clusters: a table row per cluster" sh -c "
    ctl() { '$BIN/clustermonctl' -e '$CONTROL' \"\$@\"; }
    ctl clusters --year 2021 | grep -q '^energy-env  *2  *197  *197  *114 .* 20,580,000,000  Energy conservation'"

ctl cluster new-energy --through 2022-06 --json > "$TMP/ne.json"
check "cluster new-energy through 2022-06: H1 revenue, last year's, +8.00 %" jqe '
    .rows[0].kind == "cluster" and .rows[0].firms == 46 and
    .rows[0].metrics.revenue.ytd == "3332049607.000" and .rows[0].metrics.revenue.last_year == "3085231118.000" and
    (.rows[0].metrics.revenue.growth_pct * 100 | round) == 800' "$TMP/ne.json"
check "cluster: rows per chain and tier" jqe '
    ([.rows[] | select(.kind == "chain") | .id] == ["solar-pv", "energy-storage"]) and
    ([.rows[] | select(.kind == "tier") | .id] == ["leading", "backbone", "potential", "member"]) and
    ([.rows[] | select(.kind == "chain") | .firms] | add) == 46' "$TMP/ne.json"
check "cluster: above-scale by last year's revenue" \
    jqe '.rows[0].above_scale == 46' "$TMP/ne.json"
ctl cluster energy-env --through 2022-06 > "$TMP/ee.txt"
check "cluster energy-env: +10.00 % in the human table" \
    grep -q '^energy-env  *10,239,285,580  *9,308,441,436  *+10.00%' "$TMP/ee.txt"
check "cluster energy-env: the members on no chain have a row" grep -q '^  chain (none) ' "$TMP/ee.txt"

ctl firms --silent --as-of 2022-07-31 --json > "$TMP/silent.json"
check "firms --silent --as-of 2022-07-31: only ne-037 (no data after 2022-03)" jqe '
    [.firms[].id] == ["ne-037"] and .firms[0].last_data == "2022-03" and .firms[0].days_since == 122' \
    "$TMP/silent.json"
check "firms --silent: the human table names ne-037" sh -c "
    '$BIN/clustermonctl' -e '$CONTROL' firms --silent --as-of 2022-07-31 |
    grep -q '^ne-037  *new-energy  *energy-storage  *potential  *2022-03  *122 yes '"
ctl firms --cluster new-energy --json > "$TMP/ne-firms.json"
check "firms --cluster new-energy: 46 firms" jqe '.firms | length == 46' "$TMP/ne-firms.json"
ctl firms --silent --days 36500 --json > "$TMP/none.json"
check "firms --silent --days 36500: nobody" jqe '.firms | length == 0' "$TMP/none.json"
ctl firms --cluster energy-env --json > "$TMP/ee-firms.json"
check "firms: a reading's day is its newest data" \
    jqe '.firms[] | select(.id == "ee-024") | .last_data == "2022-07-01"' "$TMP/ee-firms.json"

for cmd in status clusters cluster firms report totals ping; do
    check "clustermonctl $cmd --help" sh -c "'$BIN/clustermonctl' $cmd --help | grep -q '^usage: clustermonctl \[options\] $cmd'"
done
ctl clusters --metric revenue > /dev/null 2>&1
check "an option the command does not take: exit 2" [ $? = 2 ]
ctl cluster > /dev/null 2>&1
check "cluster without ID: exit 2" [ $? = 2 ]
ctl cluster nope > /dev/null 2> "$TMP/err"
rc=$?
check "cluster nope: exit 1, naming the clusters" \
    sh -c "[ $rc = 1 ] && grep -q 'expected a cluster id (energy-env, new-energy)' '$TMP/err'"
ctl firms --as-of 2022-13-01 > /dev/null 2>&1
check "firms --as-of with a bad date: exit 1" [ $? = 1 ]
"$BIN/clustermonctl" -e "ipc://$TMP/nobody.ipc" -t 200 status > /dev/null 2>&1
check "no daemon: exit 3" [ $? = 3 ]

# ---- /metrics and /healthz ------------------------------------------------------------------
URL=http://127.0.0.1:$HTTP_PORT
timeout 60 "$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --no-snapshot -t 30000 > /dev/null 2>&1 &
SUBPID=$!
PIDS+=("$SUBPID")
check "a subscriber shows as a peer of the alerts socket" \
    wait_for 5 sh -c "curl -sf '$URL/metrics' | grep -q '^clustermon_socket_peers{socket=\"alerts\"} 1\$'"
curl -sf "$URL/metrics" > "$TMP/metrics.txt"
check "GET /metrics: 200" [ $? = 0 ]
check "/metrics is not empty" [ "$(grep -c '^clustermon_' "$TMP/metrics.txt")" -gt 100 ]
out=$(promtool check metrics < "$TMP/metrics.txt" 2>&1)
check "promtool check metrics: clean${out:+ ($out)}" [ $? = 0 -a -z "$out" ]
check "/metrics: this year's figures for new-energy" \
    grep -qx "clustermon_cluster_metric_total{cluster=\"new-energy\",chain=\"\",metric=\"revenue\",period=\"$YEAR\"} 3000.5" \
    "$TMP/metrics.txt"
check "/metrics: self metrics" sh -c "
    grep -qx 'clustermon_samples_applied_total 9273' '$TMP/metrics.txt' &&
    grep -qx 'clustermon_batches_acked_total{result=\"ok\"} 12' '$TMP/metrics.txt' &&
    grep -q '^clustermon_wal_fsync_seconds_count [1-9]' '$TMP/metrics.txt' &&
    grep -q '^clustermon_loop_lag_seconds ' '$TMP/metrics.txt'"
check "GET /healthz: ok" sh -c "[ \"\$(curl -sf '$URL/healthz')\" = ok ]"
check "GET /nope: 404" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$URL/nope')\" = 404 ]"
check "POST /metrics: 405" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -d x '$URL/metrics')\" = 405 ]"
big=$(printf '%*s' 20000 '' | tr ' ' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$URL/metrics")
check "a 20 KB header: 431 (got $code)" [ "$code" = 431 ]
# a client that goes away mid-request does not bother the daemon
(exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" && printf 'GET /metr' >&3 && exec 3>&-) 2> /dev/null
check "after a broken client the endpoint still answers" curl -sf -o /dev/null "$URL/healthz"

# ---- a real Prometheus scrapes it -----------------------------------------------------------
cat > "$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: clustermon
    static_configs:
      - targets: ['127.0.0.1:$HTTP_PORT']
EOF
# start_prometheus: on a picked port; fails if it exits within 2 s (as it
# does when the port was taken meanwhile: retry_bind picks another).
start_prometheus() {
    PROM_PORT=$(free_port)
    prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom-data" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >> "$TMP/prometheus.log" 2>&1 &
    PROMPID=$!
    PIDS+=("$PROMPID")
    local _
    for _ in $(seq 1 20); do
        curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$PROM_PORT/-/ready" && return 0
        kill -0 "$PROMPID" 2> /dev/null || { wait "$PROMPID"; return 1; }
        sleep 0.1
    done
    return 0 # still starting: the checks below wait for it
}
retry_bind "$TMP/prometheus.log" start_prometheus
PROM=http://127.0.0.1:$PROM_PORT
promql() { curl -sf --max-time 5 "$PROM/api/v1/query" --data-urlencode "query=$1"; }
Q="clustermon_cluster_metric_total{cluster=\"new-energy\",chain=\"\",metric=\"revenue\",period=\"$YEAR\"}"
# prom_is QUERY FILTER: Prometheus answers QUERY and FILTER holds on the answer
prom_is() { promql "$1" | jqs "$2"; }
check "Prometheus scrapes clustermond (up == 1)" \
    wait_for 30 prom_is 'up{job="clustermon"}' '.data.result[0].value[1] == "1"'
check "Prometheus returns this year's new-energy revenue: 3000.5" \
    wait_for 10 prom_is "$Q" '.data.result[0].value[1] == "3000.5"'
check "Prometheus sums the member firms of the clusters: 243" \
    prom_is 'sum(clustermon_cluster_firms{chain=""})' '.data.result[0].value[1] == "243"'
check "Prometheus has the previous year's series too" \
    prom_is "clustermon_cluster_firms_reporting{cluster=\"energy-env\",chain=\"\",year=\"$((YEAR - 1))\"}" \
    '.data.result[0].value[1] == "0"'

# every query of the Grafana dashboard is valid PromQL and finds its metrics
check "grafana-dashboard.json is valid JSON" jqe '.panels | length > 5' systemd/grafana-dashboard.json
bad=""
while IFS= read -r expr; do
    q=$(printf '%s' "$expr" | sed -e 's/\$cluster/.*/g' -e "s/\\\$year/$YEAR/g" \
        -e 's/\$metric/revenue/g' -e 's/\$job/clustermon/g')
    promql "$q" | jqs '.status == "success"' || bad="$bad [$expr]"
done < <(jq -r '.. | .expr? // empty' systemd/grafana-dashboard.json)
check "every dashboard query is accepted by Prometheus${bad:+ (not:$bad)}" [ -z "$bad" ]
missing=""
for m in $(jq -r '.. | .expr? // empty' systemd/grafana-dashboard.json | grep -o 'clustermon_[a-z_]*' | sort -u); do
    grep -q "^$m[ {]" "$TMP/metrics.txt" ||
        grep -q "^# TYPE ${m%_sum} summary" "$TMP/metrics.txt" ||
        grep -q "^# TYPE ${m%_count} summary" "$TMP/metrics.txt" || missing="$missing $m"
done
check "every metric the dashboard uses is exposed${missing:+ (not:$missing)}" [ -z "$missing" ]
kill -TERM "$PROMPID" 2> /dev/null
wait_for 10 sh -c "! kill -0 $PROMPID"
wait "$PROMPID" 2> /dev/null

# ---- SIGHUP, then an orderly stop ----------------------------------------------------------------
kill -HUP "$DPID"
check "SIGHUP: the daemon keeps serving" sh -c "
    sleep 0.5; '$BIN/clustermonctl' -e '$CONTROL' -t 2000 ping > /dev/null"
# a reload is announced to systemd: RELOADING=1, then READY=1 (unless this
# version does not reload at all and says so)
check "SIGHUP: RELOADING=1 then READY=1, or logged as not supported" sh -c "
    grep -q 'reload is not supported' '$TMP/daemon.log' ||
    awk '/^RELOADING=1/ { r = 1 } r && /^READY=1/ { ok = 1 } END { exit !ok }' '$TMP/notify.log'"
stop_pid "$SUBPID"
stop_daemon TERM
rc=$?
check "SIGTERM: exit 0" [ "$rc" = 0 ]
check "STOPPING=1 sent on shutdown" grep -q '^STOPPING=1' "$TMP/notify.log"
check "the loop closed cleanly (no handle left open)" sh -c "! grep -q 'uv_loop_close' '$TMP/daemon.log'"
check "the daemon logged no errors" sh -c "! grep -q '\[error\]' '$TMP/daemon.log'"
check "no sanitizer report" sh -c "! grep -qE 'runtime error|Sanitizer' '$TMP/daemon.log'"

finish
