#!/usr/bin/env bash
# tests/security_e2e.sh -- CURVE end to end, with the real binaries on
# 127.0.0.1 TCP: firm keys bound in the registry, gateway/subscriber/viewer/
# admin keys in the access file. Proves that
#   - a firm key reporting for another firm is refused (forbidden, counted);
#   - a gateway key reports for its cluster only;
#   - an unknown key, and a client without CURVE, cannot connect;
#   - a viewer key cannot add a silence, an admin key can;
#   - a subscriber key limited to a cluster gets that cluster's alerts only;
#   - a key removed on reload is refused afterwards, while a connected agent
#     whose key is unchanged keeps its connection;
#   - samples/s limits nack "rate_limited" and the agent resends;
#   - what crosses the wire is not readable (a relay records the bytes).
#
#   BIN=build bash tests/security_e2e.sh        (part of make check)
SUITE=security
source "$(dirname "$0")/lib.sh"

K=$TMP/keys
mkdir -p "$K"

for name in server ee1 gw sub viewer admin stranger; do
    "$BIN/clustermonctl" keygen "$name" -o "$K" > /dev/null || no "keygen $name"
done
check "keygen writes 0600 files" [ "$(stat -c %a "$K/ee1.key" "$K/ee1.pub" | sort -u)" = 600 ]
pub() { sed -n 's/^public = //p' "$K/$1.pub"; }

# The registry binds ee-001 to its own key; the access file names the rest.
awk -F, -v k="$(pub ee1)" 'NR == 1 { print $0 ",key"; next }
                           { print $0 "," ($1 == "ee-001" ? k : "") }' \
    daemon/demo/registry.csv > "$TMP/registry.csv"
cat > "$TMP/access.csv" <<EOT
name,key,role,scope
ne-gateway,$(pub gw),agent,new-energy
ne-watch,$(pub sub),subscriber,new-energy
wg-viewer,$(pub viewer),viewer,
ops,$(pub admin),admin,*
EOT
# start_secure: the daemon on three picked ports (PORT: ingest), with CURVE
# (run under retry_bind: a port taken before the daemon binds it is picked
# again).
start_secure() {
    local ports
    ports=($(free_ports 3))
    PORT=${ports[0]}
    INGEST=tcp://127.0.0.1:$PORT
    ALERTS=tcp://127.0.0.1:${ports[1]}
    CONTROL=tcp://127.0.0.1:${ports[2]}
    make_config "$TMP/sec.conf" "registry=$TMP/registry.csv" "curve_secret_key=$K/server.key" \
        "access=$TMP/access.csv" "fsync=always"
    # a threshold in each cluster, so each cluster can be made to alert
    cat >> "$TMP/sec.conf" <<'EOT'

[rule ne-cod]
type = threshold
metric = cod
cluster = new-energy
above = 50
EOT
    start_daemon "$TMP/sec.conf"
}

# Every client below is the admin unless it says otherwise.
export CLUSTERMON_SERVER_KEY=$K/server.pub CLUSTERMON_KEY=$K/admin.key
retry_bind "$TMP/daemon.log" start_secure
check "daemon starts with CURVE on 127.0.0.1" [ $? = 0 ]
check "status: curve on, 5 keys" jqe '.security.curve == true and .security.keys == 5' \
    <<< "$(ctl status --json)"
check "clustermonctl status says so" sh -c "'$BIN/clustermonctl' -e '$CONTROL' status | grep -q '^security   CURVE, 5 keys; refused: 0 connections'"

# agent KEY ID CSV...: sends as KEY's owner, agent id ID
agent() {
    local key=$1 id=$2; shift 2
    timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool-$key-$id" -e "$INGEST" -t 3000 -a "$id" \
        --key "$K/$key.key" "$@"
}
total() { # total CLUSTER METRIC PERIOD
    ctl totals --metric "$2" --period "$3" --json | jq -r ".clusters[] | select(.id == \"$1\") | .total"
}

# many handshakes at once: the ZAP handler shares the loop with everything else
pings=()
for i in $(seq 1 30); do ctl ping > "$TMP/ping.$i" 2>&1 & pings+=($!); done
wait "${pings[@]}"
check "30 concurrent CURVE clients are all admitted and answered" \
    [ "$(cat "$TMP"/ping.* | grep -c '^pong$')" = 30 ]

# ---- firm keys -------------------------------------------------------------------
printf 'ee-001,revenue,100,2030-01\n' > "$TMP/own.csv"
check "ee-001's key reports for ee-001" agent ee1 ee-001 "$TMP/own.csv"
check "ee-001's figure is in" [ "$(total energy-env revenue 2030-01)" = 100 ]
printf 'ee-002,revenue,999,2030-01\n' > "$TMP/other.csv"
agent ee1 ee-001.other "$TMP/other.csv" 2> "$TMP/other.out"
check "ee-001's key reporting for ee-002 is refused" [ $? != 0 ]
check "the refusal says which line, key and firm" \
    grep -q "other.csv:1: key 'ee-001' (.*) may not report for firm 'ee-002'" "$TMP/other.out"
check "the refusal is counted (a partial batch; the sample forbidden)" \
    jqe '.nacks.partial == 1' <<< "$(ctl status --json)"
check "ee-002 got nothing" [ "$(total energy-env revenue 2030-01)" = 100 ]

# ---- a gateway for a cluster ----------------------------------------------------
printf 'ne-001,revenue,10,2030-01\nne-002,revenue,20,2030-01\n' > "$TMP/ne.csv"
check "the new-energy gateway reports for two firms" agent gw ne-gateway "$TMP/ne.csv"
check "their figures are in" [ "$(total new-energy revenue 2030-01)" = 30 ]
printf 'ee-003,revenue,5,2030-01\n' > "$TMP/gw-ee.csv"
agent gw ne-gateway.ee "$TMP/gw-ee.csv" 2> "$TMP/gw-ee.out"
check "the gateway may not report for energy-env" grep -q "may not report for firm 'ee-003'" "$TMP/gw-ee.out"
# an agent id is its key's (the daemon dedups per agent id): its name or a firm's it reports for
agent ee1 ne-gateway "$TMP/own.csv" 2> "$TMP/hijack.out"
check "a firm key cannot use the gateway's agent id" \
    grep -q "agent id 'ne-gateway' is not key 'ee-001''s: use 'ee-001' or the id of a firm" "$TMP/hijack.out"
agent ee1 ee-002 "$TMP/own.csv" 2> "$TMP/hijack2.out"
check "nor another firm's" grep -q "agent id 'ee-002' is not key 'ee-001''s" "$TMP/hijack2.out"
check "a gateway may use a firm's id it reports for" agent gw ne-001.meter "$TMP/ne.csv"

# ---- seq poisoning: another key on a firm's agent id ------------------------------------
# A key that may report for a firm (the admin: any) sends as that firm's agent
# id with seq 2^64-1 and then a real stream: its streams are its key's, so the
# firm's own agent still delivers everything (PROTOCOL.md 2).
keyval() { sed -n "s/^$2 = //p" "$K/$1.key"; }
/usr/bin/python3 - "$INGEST" "$(pub server)" "$(keyval admin public)" "$(keyval admin secret)" \
    > "$TMP/poison.out" 2>&1 <<'PY'
import sys, zmq, msgpack
ep, server, public, secret = sys.argv[1:5]
s = zmq.Context().socket(zmq.DEALER)
s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server.encode(), public.encode(), secret.encode()
s.linger = 0
s.connect(ep)
s.send(msgpack.packb({"v": 2, "type": "batch", "seq": 2**64 - 1, "epoch": 77, "agent": "ee-001",
                      "samples": [["ee-001", "energy", 1.0, 0, "2030-05"]]}))
if not s.poll(5000):
    sys.exit("no reply")
a = msgpack.unpackb(s.recv())
print(a["status"], a["seq"], a["expected"])
PY
check "a poisoned seq 2^64-1 on a fresh stream is out_of_order, expecting 1" \
    grep -q '^out_of_order 18446744073709551615 1$' "$TMP/poison.out"
printf 'ee-001,energy,7,2030-06\n' > "$TMP/admin-ee.csv"
check "the admin key delivers a stream on agent id ee-001" agent admin ee-001 "$TMP/admin-ee.csv"
printf 'ee-001,energy,11,2030-07\nee-001,energy,13,2030-08\n' > "$TMP/ee-own.csv"
check "and ee-001's own agent, on the same id, still delivers everything" agent ee1 ee-001 -b 1 "$TMP/ee-own.csv"
check "both streams' figures are in, once" [ "$(total energy-env energy 2030)" = 31 ]

# ---- unknown keys, no CURVE -----------------------------------------------------
check "an unknown key cannot connect to control" \
    sh -c "! '$BIN/clustermonctl' -e '$CONTROL' -t 1000 --key '$K/stranger.key' ping > /dev/null 2>&1"
agent stranger stranger "$TMP/own.csv" -r 1 2> /dev/null
check "an unknown key's agent gets no ack" [ $? != 0 ]
check "a client without CURVE cannot connect" sh -c \
    "! CLUSTERMON_SERVER_KEY= CLUSTERMON_KEY= '$BIN/clustermonctl' -e '$CONTROL' -t 4000 ping > /dev/null 2>&1"
check "refused connections are counted" jqe '.security.connections_refused >= 2' <<< "$(ctl status --json)"
# A libzmq client without CURVE closes as soon as it sees the server's CURVE
# greeting, and its reset can beat its own greeting to the daemon (then it is
# an abandoned handshake, not a failed one). A raw ZMTP peer that sends a NULL
# greeting and stays makes the failure certain.
python3 - "${CONTROL#tcp://}" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32)
time.sleep(2)
s.close()
PY
for _ in $(seq 1 50); do jqe '.security.handshakes_failed >= 1' <<< "$(ctl status --json)" && break; sleep 0.1; done
check "the client without CURVE is counted as a failed handshake" \
    jqe '.security.handshakes_failed >= 1' <<< "$(ctl status --json)"
check "and logged" grep -q "control socket: a connection failed its handshake" "$TMP/daemon.log"
check "the daemon logs the refusal with the key" grep -q -F "unknown key $(pub stranger)" "$TMP/daemon.log"
agent sub sub-ingest "$TMP/ne.csv" -r 1 2> /dev/null
check "a subscriber key's agent gets no ack" [ $? != 0 ]

# ---- viewer and admin on the control socket ---------------------------------------
VIEW=(--key "$K/viewer.key")
check "a viewer may read status" sh -c "ctl_out=\$('$BIN/clustermonctl' -e '$CONTROL' ${VIEW[*]} status) && [ -n \"\$ctl_out\" ]"
"$BIN/clustermonctl" -e "$CONTROL" "${VIEW[@]}" silence add --rule cod-limit --cluster energy-env \
    --for 1h --reason test > /dev/null 2> "$TMP/viewer.out"
check "a viewer cannot add a silence" [ $? != 0 ]
check "the refusal names the command and the key" \
    grep -q "permission denied: 'silence_add' needs an admin key; key 'wg-viewer' is viewer" "$TMP/viewer.out"
"$BIN/clustermonctl" -e "$CONTROL" "${VIEW[@]}" reload > /dev/null 2>&1
check "a viewer cannot reload" [ $? != 0 ]
check "an admin can add a silence" ctl silence add --rule cod-limit --cluster energy-env --firm ee-050 \
    --for 1h --reason test
check "the silence is there" sh -c "'$BIN/clustermonctl' -e '$CONTROL' silence list | grep -q ee-050"
check "denied commands are counted" jqe '.security.commands_denied == 2' <<< "$(ctl status --json)"

# ---- a subscriber limited to new-energy -----------------------------------------
"$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --key "$K/sub.key" -v --state-file "$TMP/sub.state" \
    > "$TMP/sub.out" 2> "$TMP/sub.err" &
SUBPID=$!
PIDS+=("$SUBPID")
for _ in $(seq 1 50); do
    jqe '.security.subscriptions_admitted >= 1' <<< "$(ctl status --json)" && break
    sleep 0.1
done
check "the subscriber's subscription is admitted (narrowed)" \
    jqe '.security.subscriptions_admitted >= 1' <<< "$(ctl status --json)"
printf 'ee-001,cod,70,2030-02-01T08:00:00+08:00\nee-001,cod,71,2030-02-01T09:00:00+08:00\nne-001,cod,90,2030-02-01T08:00:00+08:00\n' \
    > "$TMP/cod.csv"
check "admin reports readings for both clusters" agent admin admin-cod "$TMP/cod.csv"
for _ in $(seq 1 50); do grep -q ne-cod "$TMP/sub.out" && break; sleep 0.1; done
check "the subscriber got new-energy's alert" grep -q "ne-cod" "$TMP/sub.out"
sleep 0.5
check "and not energy-env's" sh -c "! grep -q cod-limit '$TMP/sub.out'"
check "the viewer's alerts list has both" sh -c \
    "'$BIN/clustermonctl' -e '$CONTROL' ${VIEW[*]} alerts | grep -q cod-limit && '$BIN/clustermonctl' -e '$CONTROL' ${VIEW[*]} alerts | grep -q ne-cod"
check "a subscriber's snapshot has only its clusters" sh -c \
    "'$BIN/clustermonctl' -e '$CONTROL' --key '$K/sub.key' alerts --json > '$TMP/sub-snap.json'"
check "  (ne-cod only)" jqe '[.alerts[].rule] | index("ne-cod") != null and index("cod-limit") == null' \
    "$TMP/sub-snap.json"
check "a subscriber may not read status" sh -c \
    "! '$BIN/clustermonctl' -e '$CONTROL' --key '$K/sub.key' status > /dev/null 2>&1"
check "  its snapshot carries new-energy's seq and no other" \
    jqe '.seqs | keys == ["new-energy"] and .["new-energy"] >= 1' "$TMP/sub-snap.json"
# energy-env keeps alerting; its seq moves on while the subscriber hears
# several rounds of heartbeats (one a second per cluster)
for f in ee-002 ee-003 ee-004; do
    printf '%s,cod,80,2030-02-02T08:00:00+08:00\n%s,cod,81,2030-02-02T09:00:00+08:00\n' "$f" "$f"
done > "$TMP/cod2.csv"
check "admin makes energy-env alert again" agent admin admin-cod2 "$TMP/cod2.csv"
for _ in $(seq 1 50); do
    ctl alerts --json > "$TMP/admin-snap.json"
    jqe '.seqs["energy-env"] > .seqs["new-energy"]' "$TMP/admin-snap.json" && break
    sleep 0.1
done
check "  (energy-env's seq is now above new-energy's)" \
    jqe '.seqs["energy-env"] > .seqs["new-energy"] and .seqs["energy-env"] >= 2' "$TMP/admin-snap.json"
sleep 3

# ---- describe: scoped to the caller's key -------------------------------------------
ne_firms=$(ctl firms --cluster new-energy --json | jq '.firms | length')
"$BIN/clustermonctl" -e "$CONTROL" -t 5000 --key "$K/gw.key" describe --json > "$TMP/d-gw.json" 2>&1
check "describe: an agent key may ask" jqe '.key.name == "ne-gateway" and .key.roles == "agent"' \
    "$TMP/d-gw.json"
check "  its firms: new-energy's, all $ne_firms of them" \
    jqe "(.firms | length) == $ne_firms and all(.firms[]; .cluster == \"new-energy\")" "$TMP/d-gw.json"
check "  no cluster's alerts, only ping and describe" \
    jqe '.clusters == [] and ([.commands[].name] == ["ping", "describe"])' "$TMP/d-gw.json"
check "  every metric with its kind" \
    jqe '(.metrics | length) == 4 and (.metrics[] | select(.name == "cod") | .kind) == "reading"' \
    "$TMP/d-gw.json"
"$BIN/clustermonctl" -e "$CONTROL" -t 5000 --key "$K/gw.key" status > /dev/null 2> "$TMP/gw-status.err"
check "an agent key may not read status" \
    grep -q "permission denied: 'status' needs a viewer or admin key; key 'ne-gateway' is agent" \
    "$TMP/gw-status.err"
"$BIN/clustermonctl" -e "$CONTROL" -t 5000 --key "$K/sub.key" describe --json > "$TMP/d-sub.json" 2>&1
check "describe: a subscriber sees its cluster, reports for no firm" \
    jqe '([.clusters[].id] == ["new-energy"]) and .firms == [] and ([.commands[].name] | index("alerts") != null and index("status") == null)' \
    "$TMP/d-sub.json"
"$BIN/clustermonctl" -e "$CONTROL" -t 5000 --key "$K/viewer.key" describe --json > "$TMP/d-view.json" 2>&1
check "describe: a viewer sees both clusters, no admin command" \
    jqe '(.clusters | length) == 2 and ([.commands[].name] | index("reload") == null and index("report") != null)' \
    "$TMP/d-view.json"

kill "$SUBPID" 2>/dev/null
wait "$SUBPID" 2>/dev/null
check "the one-cluster subscriber took the snapshot once, at start, and never again" \
    grep -q "interrupted: .* heartbeats, 0 gaps, 1 snapshots" "$TMP/sub.err"
check "  (no resync said)" sh -c "! grep -q resynchronising '$TMP/sub.err'"
check "it heard new-energy's heartbeats" grep -q "heartbeat: cluster new-energy at seq" "$TMP/sub.err"
check "  (several rounds)" \
    sh -c "[ \"\$(sed -n 's/.* \([0-9]*\) heartbeats, .*/\1/p' '$TMP/sub.err')\" -ge 3 ]"
check "but no heartbeat of energy-env" sh -c "! grep -q 'heartbeat: cluster energy-env' '$TMP/sub.err'"
check "nor any seq of it: it knows only new-energy's" \
    jqe '(.seqs | keys) == ["new-energy"] and ([.firing[].id] | all(startswith("ne-cod:")))' "$TMP/sub.state"

# ---- reload: revoke ee-001's key, keep the gateway's connection ----------------------
mkfifo "$TMP/gw.fifo"
timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool-gwlive" -e "$INGEST" -t 3000 -a ne-gateway.live -b 1 \
    --key "$K/gw.key" - < "$TMP/gw.fifo" 2> "$TMP/gwlive.err" &
GWPID=$!
PIDS+=("$GWPID")
exec 7> "$TMP/gw.fifo"
printf 'ne-003,revenue,7,2030-03\n' >&7
for _ in $(seq 1 50); do [ "$(total new-energy revenue 2030-03)" = 7 ] && break; sleep 0.1; done
check "a live gateway agent reports" [ "$(total new-energy revenue 2030-03)" = 7 ]
admitted=$(ctl status --json | jq '.security.connections_admitted')
awk -F, -v OFS=, 'NR > 1 { $NF = "" } { print }' "$TMP/registry.csv" > "$TMP/registry.new" &&
    mv "$TMP/registry.new" "$TMP/registry.csv"
check "reload without ee-001's key" ctl reload
check "status: 4 keys now" jqe '.security.keys == 4' <<< "$(ctl status --json)"
printf 'ee-001,revenue,1,2030-04\n' > "$TMP/after.csv"
agent ee1 ee-001.after "$TMP/after.csv" -r 1 2> /dev/null
check "ee-001's removed key is refused after the reload" [ $? != 0 ]
printf 'ne-003,revenue,8,2030-04\n' >&7
sleep 1
check "the live gateway agent goes on after the reload" [ "$(total new-energy revenue 2030-04)" = 8 ]
after=$(ctl status --json | jq '.security.connections_admitted')
# each clustermonctl call is one connection (4 since: reload, status, total,
# status); the live agent made none
check "without reconnecting" [ "$after" = $((admitted + 4)) ]
exec 7>&-
wait "$GWPID"
check "the live agent ends cleanly" [ $? = 0 ]

# ---- rate limits -------------------------------------------------------------------
sed -i 's|^rate_per_connection = .*|rate_per_connection = 20|' "$TMP/sec.conf"
check "reload with 20 samples/s per connection" ctl reload
for m in 01 02 03 04 05 06 07 08 09 10 11 12; do
    for f in 004 005 006 007 008; do printf 'ne-%s,revenue,1,2031-%s\n' "$f" "$m"; done
done > "$TMP/many.csv"
check "a gateway sending 60 samples in batches of 10 gets them all in" \
    agent gw ne-gateway.many -b 10 "$TMP/many.csv"
check "some batches were nacked rate_limited" jqe '.nacks.rate_limited >= 1' <<< "$(ctl status --json)"
check "nothing was lost" [ "$(ctl totals --metric revenue --period 2031 --json |
    jq -r '.clusters[] | select(.id == "new-energy") | .total')" = 60 ]

# ---- reload: a removed subscriber key stops receiving ----------------------------------
"$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --key "$K/sub.key" > "$TMP/sub2.out" 2> /dev/null &
SUB2=$!
"$BIN/clustermon-sub" -e "$ALERTS" -C "$CONTROL" --key "$K/viewer.key" > "$TMP/view.out" 2> /dev/null &
VIEWSUB=$!
PIDS+=("$SUB2" "$VIEWSUB")
subs=$(ctl status --json | jq '.security.subscriptions_admitted')
for _ in $(seq 1 50); do
    [ "$(ctl status --json | jq '.security.subscriptions_admitted')" -ge $((subs + 2)) ] && break
    sleep 0.1
done
sleep 0.3
grep -v '^ne-watch,' "$TMP/access.csv" > "$TMP/access.new" && mv "$TMP/access.new" "$TMP/access.csv"
refused=$(ctl status --json | jq '.security.connections_refused')
check "reload without the subscriber's key" ctl reload
check "the alert subscribers were dropped to reconnect" grep -q "alerts: subscribers reconnect" "$TMP/daemon.log"
printf 'ne-002,cod,95,2030-02-01T10:00:00+08:00\n' > "$TMP/cod2.csv"
check "admin reports a new new-energy breach" agent admin admin-cod2 "$TMP/cod2.csv"
for _ in $(seq 1 50); do grep -q '"ne-002"' "$TMP/view.out" && break; sleep 0.1; done
check "a viewer's subscriber gets it after reconnecting" grep -q '"ne-002"' "$TMP/view.out"
sleep 0.5
check "the removed key's subscriber does not" sh -c "! grep -q '\"ne-002\"' '$TMP/sub2.out'"
check "its reconnection is refused" \
    [ "$(ctl status --json | jq '.security.connections_refused')" -gt "$refused" ]
kill "$SUB2" "$VIEWSUB" 2>/dev/null
wait "$SUB2" "$VIEWSUB" 2>/dev/null

# ---- the wire ----------------------------------------------------------------------
# the tap listens on a port the kernel picks, and says which
"$BIN/tests/tools/tcptap" 0 "$PORT" "$TMP/wire.bin" > "$TMP/tap.out" 2> "$TMP/tap.err" &
PIDS+=($!)
for _ in $(seq 1 50); do grep -q '^listening on ' "$TMP/tap.out" && break; sleep 0.1; done
TAP_PORT=$(sed -n 's/^listening on //p' "$TMP/tap.out")
check "the tap listens (port ${TAP_PORT:-none}$(cat "$TMP/tap.err"))" [ -n "$TAP_PORT" ]
printf 'ee-001,revenue,4242,2030-05\n' > "$TMP/wire.csv"
check "an agent through the tap is acked" timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool-tap" \
    -e "tcp://127.0.0.1:$TAP_PORT" -t 3000 -a tapped --key "$K/admin.key" "$TMP/wire.csv"
check "the tap saw the traffic" [ "$(stat -c %s "$TMP/wire.bin")" -gt 200 ]
check "the firm id is not readable on the wire" sh -c "! grep -a -q 'ee-001' '$TMP/wire.bin'"
check "nor the metric" sh -c "! grep -a -q 'revenue' '$TMP/wire.bin'"
check "the CURVE handshake is there" grep -a -q 'CURVE' "$TMP/wire.bin"

stop_daemon
check "SIGTERM stops the daemon with status 0" [ $? = 0 ]
check "the daemon logged no errors" sh -c "! grep -q 'error\]' '$TMP/daemon.log'"
valgrind_clean
finish
