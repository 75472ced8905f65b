#!/usr/bin/env bash
# Province federation (README "Province deployment"): two city daemons, each
# fed its half of the demo data by its own agent, forward what they applied to
# a province daemon through [upstream]. Proves that
#   - after the city daemon jining and the province are each SIGKILLed several
#     times mid-stream, and the city zibo is cut off from the province for a
#     while (a TCP relay killed and restarted), the province's report equals
#     the sum of the cities' to the last milli-yuan, and the data files' sums;
#   - a restatement at a city is a restatement at the province;
#   - a city's key reporting a firm of another city is refused, per sample,
#     the refusal logged with the firm, and the stream goes on;
#   - a province silence rule with city = zibo fires for zibo's quiet firms only;
#   - series --city at the province equals the city's own series;
#   - the lag figures appear on both sides and return to zero.
#
#   BIN=build bash tests/federation_e2e.sh        (part of make check)
SUITE=federation
source "$(dirname "$0")/lib.sh"

K=$TMP/keys
mkdir -p "$K"
for name in province jining zibo ops; do
    "$BIN/clustermonctl" keygen "$name" -o "$K" > /dev/null || no "keygen $name"
done
pub() { sed -n 's/^public = //p' "$K/$1.pub"; }

# ---- the registries and the data, split in two by a city column ------------------
awk 'NR == 1 { print $0 ",city"; next } { print $0 "," (NR % 2 ? "jining" : "zibo") }' \
    daemon/demo/registry.csv > "$TMP/province.csv"
awk -F, 'NR > 1 { print $1, $NF }' "$TMP/province.csv" > "$TMP/firm-city"
STRAY=$(awk '$2 == "zibo" { print $1; exit }' "$TMP/firm-city") # a zibo firm jining will claim
for c in jining zibo; do
    awk -v c="$c" -v s="$STRAY" 'NR == 1 || $0 ~ ("," c "$") || (c == "jining" && index($0, s ",") == 1)' \
        "$TMP/province.csv" > "$TMP/$c.csv"
    mkdir -p "$TMP/feed-$c"
    # the city's half of 2021 and 2022, in chunks an agent sends one by one
    awk -F, -v c="$c" 'FNR == NR { city[$1] = $2; next } FNR > 1 && city[$1] == c' \
        FS=' ' "$TMP/firm-city" FS=, daemon/demo/2021.csv daemon/demo/2022.csv |
        split -l 300 -d -a 3 - "$TMP/feed-$c/part-"
done
for f in "$TMP"/feed-*/part-*; do sed -i '1i enterprise,metric,value,period' "$f"; done
# and each city's COD readings (of 2022: long quiet by now), the last chunk
for c in jining zibo; do
    awk -F, -v c="$c" 'FNR == NR { city[$1] = $2; next } FNR == 1 || city[$1] == c' \
        FS=' ' "$TMP/firm-city" FS=, daemon/demo/readings.csv > "$TMP/feed-$c/part-999"
done
# zibo's last two chunks are sent while it is cut off, whatever the machine's pace
mkdir -p "$TMP/late-zibo"
for f in $(ls "$TMP/feed-zibo"/part-* | tail -2); do mv "$f" "$TMP/late-zibo/"; done
# Sums are exact decimals (Python's Decimal): a double would round them.
dsum() { /usr/bin/python3 -c 'import sys, decimal; print(sum((decimal.Decimal(l) for l in sys.stdin.read().split()), decimal.Decimal(0)).quantize(decimal.Decimal("0.001")))'; }
# the expected totals per year, from the files themselves
want_year() { # METRIC YEAR
    awk -F, -v m="$1" -v y="$2" 'FNR > 1 && $2 == m && substr($4, 1, 4) == y { print $3 }' \
        daemon/demo/2021.csv daemon/demo/2022.csv | dsum
}

cat > "$TMP/access.csv" <<EOT
name,key,role,scope
jining,$(pub jining),agent,city:jining
zibo,$(pub zibo),agent,city:zibo
ops,$(pub ops),admin,*
EOT

# ---- three daemons ------------------------------------------------------------
ports=($(free_ports 5))
P_INGEST=tcp://127.0.0.1:${ports[0]}
TAP_PORT=${ports[1]}
HTTP_J=127.0.0.1:${ports[2]}
HTTP_Z=127.0.0.1:${ports[3]}
HTTP_P=127.0.0.1:${ports[4]}
# node_config NAME REGISTRY [key=value ...] -> $TMP/NAME.conf on its own endpoints
node_config() {
    local n=$1 reg=$2
    shift 2
    INGEST=ipc://$TMP/$n-ingest.ipc ALERTS=ipc://$TMP/$n-alerts.ipc \
        CONTROL=ipc://$TMP/$n-control.ipc STATE=$TMP/$n-state \
        make_config "$TMP/$n.conf" "registry=$reg" fsync=always snapshot_interval_s=1 "$@"
}
node_config province "$TMP/province.csv" "ingest=$P_INGEST" "curve_secret_key=$K/province.key" \
    "access=$TMP/access.csv" "http=$HTTP_P"
# the province watches the city zibo going quiet: one silence rule, city = zibo
sed -i 's/^group_max = .*/group_max = 1000/' "$TMP/province.conf"
cat >> "$TMP/province.conf" <<'EOT'

[rule zibo-quiet]
type = silence
cluster = energy-env
city = zibo
metric = cod
schedule = continuous
quiet = 1h
clock = wall
EOT
node_config jining "$TMP/jining.csv" "http=$HTTP_J"
node_config zibo "$TMP/zibo.csv" "http=$HTTP_Z"
cat >> "$TMP/jining.conf" <<EOT

[upstream]
endpoint = $P_INGEST
city = jining
server_key = $K/province.pub
key = $K/jining.key
timeout_ms = 500
EOT
cat >> "$TMP/zibo.conf" <<EOT

[upstream]
endpoint = tcp://127.0.0.1:$TAP_PORT
city = zibo
server_key = $K/province.pub
key = $K/zibo.key
timeout_ms = 500
EOT

declare -A NPID
nctl() { # NAME ARGS...: clustermonctl against daemon NAME
    local n=$1
    shift
    if [ "$n" = province ]; then
        CLUSTERMON_SERVER_KEY=$K/province.pub CLUSTERMON_KEY=$K/ops.key \
            "$BIN/clustermonctl" -e "ipc://$TMP/$n-control.ipc" -t 5000 "$@"
    else
        "$BIN/clustermonctl" -e "ipc://$TMP/$n-control.ipc" -t 5000 "$@"
    fi
}
start_node() { # NAME
    "$BIN/clustermond" -c "$TMP/$1.conf" -l info 2>> "$TMP/$1.log" &
    NPID[$1]=$!
    PIDS+=($!)
    wait_for 15 nctl "$1" ping
}
kill_node() { # NAME: SIGKILL, mid-stream
    kill -KILL "${NPID[$1]}" 2> /dev/null
    wait "${NPID[$1]}" 2> /dev/null
}
start_tap() {
    "$BIN/tests/tools/tcptap" "$TAP_PORT" "${ports[0]}" /dev/null > /dev/null &
    TAP=$!
    PIDS+=($TAP)
    sleep 0.2
}

check "the province starts (CURVE, city keys)" start_node province
check "city jining starts" start_node jining
check "city zibo starts" start_node zibo
start_tap
check "the forwarder says where it sends" grep -q 'upstream: city jining forwards to' "$TMP/jining.log"

# ---- the agents: each city's half, chunk by chunk ------------------------------------
feed() { # CITY [DIR]
    local f
    for f in "${2:-$TMP/feed-$1}"/part-*; do
        timeout 120 "$BIN/clustermon-agent" -s "$TMP/spool-$1" -e "ipc://$TMP/$1-ingest.ipc" \
            -a "feed-$1" -b 50 -t 500 -r 0 "$f" 2>> "$TMP/agent-$1.log" || echo "agent $1 $f: $?" >> "$TMP/agent-fail"
        sleep 0.2
    done
}
feed jining &
FJ=$!
feed zibo &
FZ=$!
PIDS+=($FJ $FZ)

# kills and a cut, while both feeds run
for round in 1 2 3; do
    sleep 1
    kill_node jining
    sleep 0.3
    start_node jining || no "jining restarts after SIGKILL $round"
    sleep 0.7
    kill_node province
    [ "$round" = 1 ] && kill "$TAP" && wait "$TAP" 2> /dev/null # zibo cut off from here ...
    sleep 0.5
    start_node province || no "the province restarts after SIGKILL $round"
done
metric() { # HOSTPORT NAME -> value of the first sample of NAME
    curl -s "http://$1/metrics" | awk -v n="$2" '$1 ~ ("^" n "({|$)") { print $2; exit }'
}
wait $FZ
feed zibo "$TMP/late-zibo"
sleep 1
behind=$(metric "$HTTP_Z" clustermon_upstream_bytes_behind)
check "while cut off, zibo's forwarder is behind ($behind bytes)" [ "${behind:-0}" -gt 0 ]
start_tap # ... to here
wait $FJ
check "every agent run delivered everything" [ ! -e "$TMP/agent-fail" ]

# a restatement at jining: one firm-month's revenue, restated
RFIRM=$(awk '$2 == "jining" { print $1; exit }' "$TMP/firm-city")
printf 'enterprise,metric,value,period\n%s,revenue,1234567,2021-03\n' "$RFIRM" > "$TMP/restate.csv"
"$BIN/clustermon-agent" -s "$TMP/spool-jining" -e "ipc://$TMP/jining-ingest.ipc" -a feed-jining \
    "$TMP/restate.csv" 2>> "$TMP/agent-jining.log"
old=$(awk -F, -v f="$RFIRM" '$1 == f && $2 == "revenue" && $4 == "2021-03" { print $3 }' daemon/demo/2021.csv)

caught_up() { # both forwarders at zero bytes behind
    [ "$(metric "$HTTP_J" clustermon_upstream_bytes_behind)" = 0 ] &&
        [ "$(metric "$HTTP_Z" clustermon_upstream_bytes_behind)" = 0 ]
}
check "both forwarders catch up: bytes behind back to 0" wait_for 60 caught_up

# ---- the figures --------------------------------------------------------------------
year_rev() { # NAME YEAR METRIC -> the metric's total over the clusters
    nctl "$1" totals --metric "$3" --period "$2" --json | jq -r '.clusters[].total' | dsum
}
exact=1
for y in 2021 2022; do
    for m in revenue profit; do
        p=$(year_rev province $y $m)
        j=$(year_rev jining $y $m)
        z=$(year_rev zibo $y $m)
        w=$(want_year $m $y)
        [ "$m$y" = revenue2021 ] && w=$(printf '%s\n1234567\n-%s\n' "$w" "$old" | dsum)
        jz=$(printf '%s\n%s\n' "$j" "$z" | dsum)
        echo "# $m $y: province $p, jining $j + zibo $z = $jz, files $w"
        [ -n "$p" ] && [ "$p" = "$jz" ] && [ "$p" = "$w" ] || exact=0
    done
done
check "the province's totals = the sum of the cities' = the files' (restatement included)" [ "$exact" = 1 ]
cities_add_up() {
    nctl province report --year 2021 --json > "$TMP/report.json"
    [ "$(jq -r '.cities[].revenue' "$TMP/report.json" | dsum)" = \
        "$(jq -r '.clusters[].revenue' "$TMP/report.json" | dsum)" ] &&
        [ "$(jq -r '.cities[].profit' "$TMP/report.json" | dsum)" = \
            "$(jq -r '.clusters[].profit' "$TMP/report.json" | dsum)" ]
}
check "the province's report has a row per city, and they add up" cities_add_up
check "the province's report has the rows jining and zibo, no firm without a city" jqe '([.cities[].id] | sort) == ["jining","zibo"] and .no_city.firms == 0' "$TMP/report.json"

series_sum() { # NAME [ARGS...] -> energy-env's revenue 2021-01..2022-12
    local n=$1
    shift
    nctl "$n" series --metric revenue --cluster energy-env --from 2021-01 --to 2022-12 "$@" --json |
        jq -r '.sum'
}
s_p=$(series_sum province --city jining)
s_j=$(series_sum jining)
echo "# series energy-env revenue 2021..2022: province --city jining $s_p, jining $s_j"
check "series --city jining at the province = jining's own series" [ -n "$s_p" -a "$s_p" = "$s_j" ]

# ---- a silence rule for one city ---------------------------------------------------
# every zibo firm of energy-env with COD readings (all of 2022) is quiet; no jining firm is watched
awk -F, 'FNR == NR { city[$1] = $2; next } FNR > 1 && city[$1] == "zibo" { print $1 }' \
    FS=' ' "$TMP/firm-city" FS=, daemon/demo/readings.csv | sort -u > "$TMP/zibo-cod"
quiet_zibo() {
    nctl province alerts --json |
        jq -r '.alerts[] | select(.rule == "zibo-quiet" and .state == "firing") | .firm' |
        sort -u > "$TMP/quiet-firms"
    [ -s "$TMP/quiet-firms" ] && [ -z "$(comm -23 "$TMP/quiet-firms" "$TMP/zibo-cod")" ]
}
check "the province's silence rule with city = zibo fires for zibo's firms only" wait_for 20 quiet_zibo
echo "# zibo-quiet firing for $(wc -l < "$TMP/quiet-firms") firms (zibo firms with COD readings: $(wc -l < "$TMP/zibo-cod"))"

# ---- a city key may report only for its own firms ------------------------------------
before=$(metric "$HTTP_J" clustermon_upstream_samples_refused_total)
printf 'enterprise,metric,value,period\n%s,revenue,777,2021-04\n%s,revenue,5,2021-04\n' "$STRAY" "$RFIRM" > "$TMP/stray.csv"
"$BIN/clustermon-agent" -s "$TMP/spool-jining" -e "ipc://$TMP/jining-ingest.ipc" -a feed-jining \
    "$TMP/stray.csv" 2>> "$TMP/agent-jining.log"
refused() { [ "$(metric "$HTTP_J" clustermon_upstream_samples_refused_total)" = $((before + 1)) ]; }
check "jining's sample for zibo's firm $STRAY is refused by the province" wait_for 20 refused
check "the refusal is logged naming the firm" grep -q "province refused .*firm '$STRAY'.*forbidden" "$TMP/jining.log"
went_on() {
    local p j z
    p=$(year_rev province 2021-04 revenue)
    j=$(year_rev jining 2021-04 revenue)
    z=$(year_rev zibo 2021-04 revenue)
    [ -n "$p" ] && [ "$p" = "$(printf '%s\n%s\n-777\n' "$j" "$z" | dsum)" ]
}
check "the stream went on: the batch's other sample reached the province" wait_for 20 went_on
check "both forwarders at zero bytes behind again" wait_for 30 caught_up
PM=$(curl -s "http://$HTTP_J/metrics")
check "the city's lag figures are on /metrics" \
    grep -q '^clustermon_upstream_last_ack_timestamp_seconds{city="jining"} [1-9]' <<< "$PM"
check "... with nothing unacked" grep -q '^clustermon_upstream_batches_unacked{city="jining"} 0$' <<< "$PM"
PM=$(curl -s "http://$HTTP_P/metrics")
check "the province's per-city figures are on /metrics" \
    grep -q '^clustermon_city_last_seq{city="zibo"} [1-9]' <<< "$PM"
check "... with the age of each city's last batch" \
    grep -q '^clustermon_city_last_batch_age_seconds{city="jining"} ' <<< "$PM"

for n in jining zibo province; do
    kill -TERM "${NPID[$n]}"
    wait "${NPID[$n]}"
    check "$n stops cleanly" [ $? = 0 ]
done
finish
