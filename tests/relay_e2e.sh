#!/usr/bin/env bash
# clustermon-relay end to end (README "clustermon-relay"): two city daemons
# (the demo registry split in two: city A has energy-env, city B new-energy),
# each with CURVE and its own agents, and two relays in front of them:
#   province: both cities, --clusters energy-env,new-energy
#   ee:       city A only, --clusters energy-env
# Proves that
#  1. a key that may see every cluster is admitted by the province relay and
#     a key for energy-env only is refused there (ZAP), but admitted by the
#     ee relay; an unknown key is refused by both;
#  2. the relay's control endpoint answers `alerts` with the union of the
#     cities' snapshots (clustermonctl through the relay);
#  3. at a steady rate of alerts in both cities, the province subscriber
#     prints every alert of both, and the ee subscriber exactly city A's,
#     each cluster's seqs contiguous (the cities' own seqs, untouched), no
#     gap reported;
#  4. after the province relay is stopped (alerts fire and resolve
#     meanwhile) and restarted, its subscriber notices the gap from a
#     heartbeat, resynchronises through the relay's control endpoint, and
#     its copy of the firing alerts equals the cities' again; alerts after
#     the restart arrive live.
#
#   BIN=build bash tests/relay_e2e.sh        (part of make check)
SUITE=relay
source "$(dirname "$0")/lib.sh"

K=$TMP/keys
mkdir -p "$K"
for name in cityA cityB relay ag ops prov eeonly stranger; do
    "$BIN/clustermonctl" keygen "$name" -o "$K" > /dev/null || no "keygen $name"
done
pub() { sed -n 's/^public = //p' "$K/$1.pub"; }

# ---- two cities ------------------------------------------------------------------
# city_conf CITY DROP: the default config without DROP's cluster and its rules
# (a paragraph naming it), on the city's own ipc endpoints and state dir.
city_conf() {
    local c=$1 drop=$2
    awk -v RS= -v ORS='\n\n' -v d="$drop" \
        'index($0, "[cluster " d "]") == 0 && index($0, "cluster = " d) == 0' \
        "$ROOT/daemon/clustermond.conf" |
        sed -e "/^future_slack_days = /d" -e "s|^flap_max = .*|flap_max = 1000|" -e "s|^group_max = .*|group_max = 100|" -e "s|^ingest = .*|ingest = ipc://$TMP/$c.ingest|" \
            -e "s|^alerts = .*|alerts = ipc://$TMP/$c.alerts|" \
            -e "s|^control = .*|control = ipc://$TMP/$c.control|" \
            -e "s|^state_dir = .*|state_dir = $TMP/$c.state|" \
            -e "s|^registry = .*|registry = $TMP/$c.registry.csv|" \
            -e "s|^\[daemon\]|[daemon]\nfuture_slack_days = 100000\ncurve_secret_key = $K/$c.key\naccess = $TMP/$c.access.csv|" \
            > "$TMP/$c.conf"
}
head -1 daemon/demo/registry.csv > "$TMP/cityA.registry.csv"
cp "$TMP/cityA.registry.csv" "$TMP/cityB.registry.csv"
grep ',energy-env,' daemon/demo/registry.csv >> "$TMP/cityA.registry.csv"
grep ',new-energy,' daemon/demo/registry.csv >> "$TMP/cityB.registry.csv"
city_conf cityA new-energy
city_conf cityB energy-env
# city B's own threshold, so both cities can be made to alert
cat >> "$TMP/cityB.conf" <<'EOT'
[rule ne-cod]
type = threshold
metric = cod
cluster = new-energy
above = 50
clear = 40
for_samples = 2
severity = warning
EOT
cat > "$TMP/cityA.access.csv" <<EOT
name,key,role,scope
gateway,$(pub ag),agent,*
province-relay,$(pub relay),subscriber,energy-env
ops,$(pub ops),admin,*
EOT
cat > "$TMP/cityB.access.csv" <<EOT
name,key,role,scope
gateway,$(pub ag),agent,*
province-relay,$(pub relay),subscriber,new-energy
ops,$(pub ops),admin,*
EOT
check "city A's config is valid" "$BIN/clustermond" -n -c "$TMP/cityA.conf"
check "city B's config is valid" "$BIN/clustermond" -n -c "$TMP/cityB.conf"

start_city() {
    "$BIN/clustermond" -c "$TMP/$1.conf" -l info 2>> "$TMP/$1.log" &
    PIDS+=($!)
    eval "${1}_PID=$!"
    wait_for 10 cctl "$1" ping
}
# cctl CITY ARGS...: clustermonctl at a city, with the admin key
cctl() {
    local c=$1
    shift
    "$BIN/clustermonctl" -e "ipc://$TMP/$c.control" -t 5000 --server-key "$K/$c.pub" \
        --key "$K/ops.key" "$@"
}
check "city A starts" start_city cityA
check "city B starts" start_city cityB

# ---- two relays -----------------------------------------------------------------
cat > "$TMP/relay.access.csv" <<EOT
name,key,role,scope
province-desk,$(pub prov),subscriber,*
ee-desk,$(pub eeonly),subscriber,energy-env
some-gateway,$(pub ag),agent,*
EOT
PROV=ipc://$TMP/prov.alerts
PROVCTL=ipc://$TMP/prov.control
EE=ipc://$TMP/ee.alerts
EECTL=ipc://$TMP/ee.control
start_prov() {
    "$BIN/clustermon-relay" -v -k "$K/relay.key" -A "$TMP/relay.access.csv" \
        --clusters energy-env,new-energy -b "$PROV" -C "$PROVCTL" \
        -u "A=ipc://$TMP/cityA.alerts,ipc://$TMP/cityA.control,$K/cityA.pub" \
        -u "B=ipc://$TMP/cityB.alerts,ipc://$TMP/cityB.control,$K/cityB.pub" \
        2>> "$TMP/prov.log" &
    PROV_PID=$!
    PIDS+=($!)
    wait_for 10 rctl "$PROVCTL" prov ping
}
# rctl ENDPOINT KEY ARGS...: clustermonctl at a relay's control endpoint
rctl() {
    local e=$1 k=$2
    shift 2
    "$BIN/clustermonctl" -e "$e" -t 5000 --server-key "$K/relay.pub" --key "$K/$k.key" "$@"
}
check "the province relay starts" start_prov
"$BIN/clustermon-relay" -v -k "$K/relay.key" -A "$TMP/relay.access.csv" --clusters energy-env \
    -b "$EE" -C "$EECTL" -u "A=ipc://$TMP/cityA.alerts,ipc://$TMP/cityA.control,$K/cityA.pub" \
    2>> "$TMP/ee.log" &
PIDS+=($!)
check "the ee relay starts (it has the same server key as the province relay)" \
    wait_for 10 rctl "$EECTL" eeonly ping

# ---- 1. admission ---------------------------------------------------------------
check "province relay: the province key is admitted" rctl "$PROVCTL" prov ping
check "province relay: the energy-env-only key is refused" \
    bash -c "! '$BIN/clustermonctl' -e '$PROVCTL' -t 1500 --server-key '$K/relay.pub' --key '$K/eeonly.key' ping" 
check "  and the relay says why" \
    wait_for 5 grep -q "key 'ee-desk' may not see cluster 'new-energy', which this relay carries" "$TMP/prov.log"
check "province relay: an agent key is refused" \
    bash -c "! '$BIN/clustermonctl' -e '$PROVCTL' -t 1500 --server-key '$K/relay.pub' --key '$K/ag.key' ping"
check "province relay: an unknown key is refused" \
    bash -c "! '$BIN/clustermonctl' -e '$PROVCTL' -t 1500 --server-key '$K/relay.pub' --key '$K/stranger.key' ping"
check "ee relay: the energy-env-only key is admitted" rctl "$EECTL" eeonly ping
check "ee relay: the province key too (it may see more)" rctl "$EECTL" prov ping
check "a command the relay does not answer is refused with a reason" \
    bash -c "! '$BIN/clustermonctl' -e '$PROVCTL' -t 5000 --server-key '$K/relay.pub' --key '$K/prov.key' report 2> '$TMP/report.err'"
check "  (it names the command)" grep -q "ask a city's daemon for 'report'" "$TMP/report.err"

# ---- subscribers ----------------------------------------------------------------
# start_sub NAME RELAY_ALERTS RELAY_CONTROL KEY: clustermon-sub through a relay
start_sub() {
    "$BIN/clustermon-sub" -v -e "$2" -C "$3" --server-key "$K/relay.pub" --key "$K/$4.key" \
        --state-file "$TMP/$1.state" >> "$TMP/$1.out" 2>> "$TMP/$1.err" &
    PIDS+=($!)
    eval "${1}_PID=$!"
}
start_sub psub "$PROV" "$PROVCTL" prov
start_sub esub "$EE" "$EECTL" eeonly
heard() { grep -q "heartbeat: cluster $2 at seq" "$TMP/$1.err"; }
check "the province subscriber took its snapshot through the relay" \
    wait_for 10 grep -q 'snapshot: 0 firing alerts' "$TMP/psub.err"
check "  and hears both cities' heartbeats through it" \
    wait_for 10 bash -c "grep -q 'heartbeat: cluster energy-env at seq' '$TMP/psub.err' &&
                         grep -q 'heartbeat: cluster new-energy at seq' '$TMP/psub.err'"
check "the ee subscriber hears energy-env" wait_for 10 heard esub energy-env

# ---- 2. alerts at a steady rate ------------------------------------------------------
# Water-pollution-control firms in A (cod-limit), new-energy firms in B (ne-cod).
mapfile -t AF < <(awk -F, '$4 == "water-pollution-control" { print $1 }' "$TMP/cityA.registry.csv" | head -8)
mapfile -t BF < <(awk -F, 'NR > 1 { print $1 }' "$TMP/cityB.registry.csv" | head -8)
T0=$(date -d '2022-07-02T10:00:00+08:00' +%s)000
tick=0
# round V: every chosen firm of both cities gets two readings of V (70 fires
# cod-limit / ne-cod on the second; 10 resolves), one agent run per city
round() {
    local v=$1 c f
    tick=$((tick + 2))
    for c in A B; do
        local -n firms=${c}F
        for f in "${firms[@]}"; do
            printf '%s,cod,%s,%.0f\n%s,cod,%s,%.0f\n' "$f" "$v" "$((T0 + tick * 60000))" \
                "$f" "$v" "$((T0 + tick * 60000 + 1000))"
        done | "$BIN/clustermon-agent" -s "$TMP/spool.$c" -e "ipc://$TMP/city$c.ingest" \
            --server-key "$K/city$c.pub" --key "$K/ag.key" -a "gateway.$c" - > /dev/null 2>> "$TMP/agents.log" ||
            echo "agent $c failed in round $tick" >> "$TMP/agents.log"
    done
}
for i in $(seq 1 10); do
    round 70
    sleep 0.2
    round 10
    sleep 0.2
done
published() { cctl "$1" status --json | jq -r '.alerts_published'; }
pa=$(published cityA)
pb=$(published cityB)
check "both cities published: A $pa, B $pb alerts (8 firms x 10 firings + 10 resolutions)" \
    [ "$pa" = 160 -a "$pb" = 160 ]
# seqs CLUSTER FILE: that cluster's seqs as printed, one line
seqs() { jq -r --arg c "$1" 'select(.cluster == $c and (.snapshot | not)) | .seq' "$2" | tr '\n' ' '; }
want=$(seq 1 160 | tr '\n' ' ')
check "province subscriber: every energy-env alert, seqs 1..160 in order" \
    wait_for 10 bash -c "[ \"\$(jq -r 'select(.cluster == \"energy-env\") | .seq' '$TMP/psub.out' | tr '\n' ' ')\" = '$want' ]"
check "province subscriber: every new-energy alert, seqs 1..160 in order" \
    wait_for 10 bash -c "[ \"\$(jq -r 'select(.cluster == \"new-energy\") | .seq' '$TMP/psub.out' | tr '\n' ' ')\" = '$want' ]"
check "ee subscriber: every energy-env alert, seqs 1..160 in order" \
    wait_for 10 bash -c "[ \"\$(jq -r 'select(.cluster == \"energy-env\") | .seq' '$TMP/esub.out' | tr '\n' ' ')\" = '$want' ]"
check "  and nothing of new-energy: not an alert, not a heartbeat" \
    bash -c "! grep -q new-energy '$TMP/esub.out' '$TMP/esub.err'"
check "no subscriber reported a gap" bash -c "! grep -q 'gap' '$TMP/psub.err' '$TMP/esub.err'"

# ---- 3. the snapshot through the relay ---------------------------------------------
round 70
sleep 0.5
check "the relay's alerts snapshot is the union of the cities' (16 firing)" \
    jqe '(.alerts | length) == 16 and .seqs == {"energy-env": 168, "new-energy": 168}' \
    <<< "$(rctl "$PROVCTL" prov alerts --json)"
check "the ee relay's holds city A's only" \
    jqe '(.alerts | length) == 8 and .seqs == {"energy-env": 168}' <<< "$(rctl "$EECTL" eeonly alerts --json)"

# ---- 4. a relay restart --------------------------------------------------------------
stop_pid "$PROV_PID"
round 10                      # all 16 resolve while the relay is down
for f in "${AF[@]:0:3}"; do   # then three of A's fire again
    printf '%s,cod,90,%.0f\n%s,cod,91,%.0f\n' "$f" "$((T0 + 99 * 60000))" "$f" "$((T0 + 99 * 60000 + 1000))"
done | "$BIN/clustermon-agent" -s "$TMP/spool.A" -e "ipc://$TMP/cityA.ingest" \
    --server-key "$K/cityA.pub" --key "$K/ag.key" -a gateway.A - > /dev/null 2>> "$TMP/agents.log"
tick=100
check "the province relay restarts" start_prov
check "its subscriber notices the gap and resynchronises through the relay" \
    wait_for 15 grep -q 'resynchronising from '"$PROVCTL" "$TMP/psub.err"
expect=$( (cctl cityA alerts --json; cctl cityB alerts --json) | jq -r '.alerts[].id' | sort | tr '\n' ' ')
check "  the cities have 3 firing" [ "$(wc -w <<< "$expect")" = 3 ]
check "  and the subscriber's copy equals them" wait_for 10 bash -c "[ \"\$(jq -r '.firing[].id' '$TMP/psub.state' | sort | tr '\n' ' ')\" = '$expect' ]"
round 70
check "alerts after the restart arrive live (B's 8 firings: its seq reaches 184)" \
    wait_for 10 bash -c "[ \"\$(jq -r 'select(.cluster == \"new-energy\" and (.snapshot | not)) | .seq' '$TMP/psub.out' | tail -1)\" = 184 ]"
check "the ee subscriber, on its own relay, saw no gap through all this" \
    bash -c "! grep -q 'gap' '$TMP/esub.err'"
stop_pid "$cityB_PID"
check "with city B down, the relay refuses the whole snapshot, naming B (a partial one would drop B's alerts)" \
    bash -c "! '$BIN/clustermonctl' -e '$PROVCTL' -t 8000 --server-key '$K/relay.pub' --key '$K/prov.key' alerts 2> '$TMP/snap.err'"
check "  (the reason)" grep -q "city B (ipc://$TMP/cityB.control) did not answer its alerts snapshot within 3000 ms" "$TMP/snap.err"
ee_seen() { jq -r 'select(.cluster == "energy-env" and (.snapshot | not)) | .seq' "$TMP/psub.out" | tail -1; }
last=$(ee_seen)
f=$(awk -F, '$4 == "water-pollution-control" { print $1 }' "$TMP/cityA.registry.csv" | sed -n 9p) # not firing yet
printf '%s,cod,95,%.0f\n%s,cod,96,%.0f\n' "$f" "$((T0 + 200 * 60000))" "$f" "$((T0 + 200 * 60000 + 1000))" |
    "$BIN/clustermon-agent" -s "$TMP/spool.A" -e "ipc://$TMP/cityA.ingest" --server-key "$K/cityA.pub" \
        --key "$K/ag.key" -a gateway.A - > /dev/null 2>> "$TMP/agents.log"
check "  while city A's alerts still flow through the relay (seq $last, then $((last + 1)))" \
    wait_for 10 bash -c "[ \"\$(jq -r 'select(.cluster == \"energy-env\" and (.snapshot | not)) | .seq' '$TMP/psub.out' | tail -1)\" = $((last + 1)) ]"
check "relay status counts what passed" \
    jqe '.from_cities > 0 and .to_subscribers > 0 and .refused == 0' <<< "$(rctl "$PROVCTL" prov status --json)"

finish
