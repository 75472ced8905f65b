#!/usr/bin/env bash
# make bench: what the daemon costs, as ratios against a ceiling measured in
# the same run (the machine is shared and noisy: absolute figures move, the
# ratios much less). Tools in tests/tools/: loadgen (pre-encoded protocol-2
# batches from several DEALERs, a window each), barerecv (the ceiling: the
# daemon's zpoll drain + msgpack decode + ack, nothing else), alertprobe
# (alert latency, a REQ/REP-style round trip measured the same way, fan-out).
#
# The daemon runs the default config (every rule on, fsync = interval) on
# ipc:// endpoints, with the rate limits off and flap_max raised (the probes
# fire and resolve the same firms' alerts many times an hour; a flapping
# alert would stop publishing). CPU is utime + stime from /proc/PID/stat
# over the loadgen run only.
#
#  1. CPU per sample, 1000-sample batches: daemon vs barerecv
#  2. CPU per sample, 1-sample batches: daemon vs barerecv
#  3. alert latency p50/p99/p99.9 idle and under a steady 100 k samples/s
#     background: sample -> alert at a SUB vs send -> ack from barerecv
#  4. RSS per firm-metric-month after 10 M samples; replay time for them
#     (WAL only, then a snapshot + WAL), SIGKILL then restart to ready
#  5. fan-out to 100 subscribers: alerts/s, none lost
#  6. clustermon-agent's own CPU and RSS at 1 sample/s and flat out
#  7. tests/bench_sim.sh if it exists (the simulator's rows, merged as "sim")
#
# BENCH_SCALE (default 1) multiplies every sample count (0.1 for a quick
# look). The table goes to stdout and build/bench.json.
SUITE=bench
source "$(dirname "$0")/lib.sh"

SCALE=${BENCH_SCALE:-1}
sc() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s); print (v < 1 ? 1 : v) }'; }
N_BATCHED=$(sc 3000000)
N_SINGLE=$(sc 150000)
N_PROBES=$(sc 1000)
N_REPLAY=$(sc 10000000)
N_FANOUT=$(sc 1000)
N_AGENT=$(sc 200000)
TOOLS=$BIN/tests/tools
HZ=$(getconf CLK_TCK)
OUT=${BENCH_JSON:-$ROOT/build/bench.json}
ROWS=$TMP/rows.jsonl
: > "$ROWS"

make_config "$TMP/b.conf" rate_per_connection=0 rate_global=0 future_slack_days=100000 fsync=interval
sed -i 's/^flap_max = .*/flap_max = 1000000/' "$TMP/b.conf"
BARE=ipc://$TMP/bare.ipc

# cpu_ns PID: the process's utime + stime so far, in ns
cpu_ns() { awk -v hz="$HZ" '{ printf "%.0f\n", ($14 + $15) * 1e9 / hz }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# field NAME LINE: the value of NAME=... in a tool's key=value line
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< " $2"; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
# row FIGURE DAEMON CEILING RATIO GOAL MET: one line of the table
row() {
    jq -nc --arg f "$1" --arg d "$2" --arg c "$3" --arg r "$4" --arg g "$5" --arg m "$6" \
        '{figure: $f, daemon: $d, ceiling: $c, ratio: $r, goal: $g, met: $m}' >> "$ROWS"
    printf '%-44s %-22s %-22s %-7s %-14s %s\n' "$1" "$2" "$3" "$4" "$5" "$6"
}
die() { echo "bench: $*" >&2; exit 1; }

# daemon_up [CONFIG]: a fresh daemon (empty state dir unless KEEP_STATE=1)
daemon_up() {
    [ "${KEEP_STATE:-0}" = 1 ] || rm -rf "$STATE"
    start_daemon "${1:-$TMP/b.conf}" "$TMP/daemon.log" || die "the daemon did not start (see below)
$(tail -5 "$TMP/daemon.log")"
}
bare_up() {
    "$TOOLS/barerecv" "$BARE" > "$TMP/bare.out" &
    BPID=$!
    PIDS+=("$BPID")
    wait_for 5 test -S "${BARE#ipc://}" || die "barerecv did not bind"
}
bare_down() { kill -TERM "$BPID"; wait "$BPID"; }

# throughput PID ENDPOINT SAMPLES LOADGEN-OPTS...: CPU ns per sample of PID
# over a loadgen run; fails the bench unless every batch is acked ok
throughput() {
    local pid=$1 ep=$2 n=$3 c0 c1 line
    shift 3
    c0=$(cpu_ns "$pid")
    line=$("$TOOLS/loadgen" -n "$n" "$@" "$TMP/b.conf" "$ep") || die "loadgen: $line"
    c1=$(cpu_ns "$pid")
    echo "  $line" >&2
    calc "($c1 - $c0) / $(field acked_samples "$line")" 0
}
# (the ns figures are whole: at this resolution a decimal would be noise)

echo "clustermon bench (BENCH_SCALE=$SCALE) on $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null)"
printf '%-44s %-22s %-22s %-7s %-14s %s\n' figure daemon ceiling ratio goal met?

# ---- 1, 2: CPU per sample ---------------------------------------------------
cpu_rows() { # LABEL SAMPLES GOAL LOADGEN-OPTS...
    local label=$1 n=$2 goal=$3 d b r
    shift 3
    daemon_up "${CPU_CONF:-$TMP/b.conf}"
    d=$(throughput "$DPID" "$INGEST" "$n" "$@") || exit 1
    stop_daemon
    # the ceiling gets 4x the samples: its CPU time is read in clock ticks
    # (10 ms), and at a few hundred ms that would be a coarse figure
    bare_up
    b=$(throughput "$BPID" "$BARE" "$((4 * n))" "$@") || exit 1
    bare_down
    r=$(calc "$b / $d" 2)
    row "CPU/sample, $label" "$d ns ($(calc "1e9 / $d" 0)/s)" "$b ns ($(calc "1e9 / $b" 0)/s)" \
        "$r" "≥ $goal" "$(awk -v r="$r" -v g="$goal" 'BEGIN { print (r >= g ? "yes" : "no") }')"
}
cpu_rows "1000-sample batches" "$N_BATCHED" 0.50 -c 4 -w 16 -b 1000
cpu_rows "1-sample batches" "$N_SINGLE" 0.25 -c 8 -w 64 -b 1
# the same with WAL group writes on (README "Durability", off by default)
sed 's/^group_writes = .*/group_writes = yes/' "$TMP/b.conf" > "$TMP/g.conf"
CPU_CONF=$TMP/g.conf cpu_rows "1-sample batches, group_writes = yes" "$N_SINGLE" 0.25 -c 8 -w 64 -b 1
CPU_CONF=$TMP/g.conf cpu_rows "1000-sample batches, group_writes = yes" "$N_BATCHED" 0.50 -c 4 -w 16 -b 1000

# ---- 3: alert latency -------------------------------------------------------
# background TARGET: a steady 100 k samples/s (100-sample batches) until killed
background() {
    "$TOOLS/loadgen" -c 2 -w 8 -b 100 -r 100000 -d 3600 -a bg "$TMP/b.conf" "$1" > "$TMP/bg.out" &
    BGPID=$!
    PIDS+=("$BGPID")
    sleep 1
}
background_stop() {
    kill -TERM "$BGPID"
    wait "$BGPID" || die "background loadgen: $(cat "$TMP/bg.out")"
    echo "  $(cat "$TMP/bg.out")" >&2
}
probe() { # MODE ARGS...: the probe's key=value line
    local line
    line=$("$TOOLS/alertprobe" "$@") || die "alertprobe $1: $line"
    echo "  $line" >&2
    echo "$line"
}
latency_rows() { # LABEL LOADED(0/1)
    local a r
    daemon_up
    [ "$2" = 1 ] && background "$INGEST"
    a=$(probe lat -n "$N_PROBES" "$TMP/b.conf" "$INGEST" "$ALERTS") || exit 1
    [ "$2" = 1 ] && background_stop
    stop_daemon
    bare_up
    [ "$2" = 1 ] && background "$BARE"
    r=$(probe rtt -n "$((2 * N_PROBES))" "$TMP/b.conf" "$BARE") || exit 1
    [ "$2" = 1 ] && background_stop
    bare_down
    local q ratio
    for q in p50 p99 p999; do
        ratio=$(calc "$(field ${q}_us "$a") / $(field ${q}_us "$r")" 2)
        if [ $q = p99 ]; then
            row "alert latency $q, $1" "$(field ${q}_us "$a") µs" "REQ/REP $(field ${q}_us "$r") µs" \
                "$ratio" "≤ 2.0" "$(awk -v r="$ratio" 'BEGIN { print (r <= 2.0 ? "yes" : "no") }')"
        else
            row "alert latency $q, $1" "$(field ${q}_us "$a") µs" "REQ/REP $(field ${q}_us "$r") µs" \
                "$ratio" "—" "—"
        fi
    done
}
latency_rows "idle" 0
latency_rows "100 k samples/s" 1

# ---- 4: RSS per series-month, replay ----------------------------------------
# Snapshots off while the state is built, so the restart replays the WAL only.
make_config "$TMP/r.conf" rate_per_connection=0 rate_global=0 future_slack_days=100000 fsync=interval \
    snapshot_interval_s=1000000 snapshot_wal_mb=100000
sed -i 's/^flap_max = .*/flap_max = 1000000/' "$TMP/r.conf"
daemon_up "$TMP/r.conf"
rss0=$(rss_kb "$DPID")
line=$("$TOOLS/loadgen" -n "$N_REPLAY" -c 4 -w 16 -b 1000 "$TMP/r.conf" "$INGEST") || die "loadgen: $line"
echo "  $line" >&2
rss1=$(rss_kb "$DPID")
distinct=$(field distinct "$line")
row "RSS per firm-metric-month" "$(calc "($rss1 - $rss0) * 1024 / $distinct" 0) B" \
    "—" "—" "—" "— ($distinct series-months, $((rss1 / 1024)) MB)"
stop_daemon KILL 2> /dev/null
wal_mb=$(du -sm "$STATE" | cut -f1)
# restart CONFIG: restarts on the state dir; sets READY (the daemon's own
# ready_ms) and WALL (ms from exec to its first control answer)
restart() {
    local t0 t1
    t0=$(date +%s%N)
    KEEP_STATE=1 daemon_up "$1"
    t1=$(date +%s%N)
    READY=$(ctl status --json | jq -r '.recovery.ready_ms')
    WALL=$(((t1 - t0) / 1000000))
}
goal_s=$(calc "2 * $N_REPLAY / 10000000" 2)
replay_row() { # LABEL READY_MS WALL_MS
    row "replay $N_REPLAY samples, $1" "$(calc "$2 / 1000" 2) s (ready in $(calc "$3 / 1000" 2) s)" \
        "—" "—" "≤ $goal_s s" "$(awk -v m="$2" -v g="$goal_s" 'BEGIN { print (m / 1000 <= g ? "yes" : "no") }')"
}
# WAL only: the restart also takes a snapshot a second after new data
sed -e 's/^snapshot_interval_s = .*/snapshot_interval_s = 1/' "$TMP/r.conf" > "$TMP/s.conf"
restart "$TMP/s.conf"
replay_row "WAL only ($wal_mb MB)" "$READY" "$WALL"
# snapshot + WAL: a little more data, a snapshot of all of it, a WAL tail after it
newest_snap() { ls "$STATE"/*.snap 2> /dev/null | tail -1; }
snap0=$(newest_snap)
"$TOOLS/loadgen" -n 1000 -c 1 -b 1000 -a snap "$TMP/s.conf" "$INGEST" > /dev/null || die "loadgen (snapshot)"
snap_taken() { [ "$(newest_snap)" != "$snap0" ]; }
wait_for 60 snap_taken || die "no snapshot taken"
sleep 1
"$TOOLS/loadgen" -n "$(sc 100000)" -c 1 -b 1000 -a tail "$TMP/s.conf" "$INGEST" > /dev/null || die "loadgen (tail)"
stop_daemon KILL 2> /dev/null
restart "$TMP/r.conf"
replay_row "snapshot + WAL" "$READY" "$WALL"
stop_daemon

# ---- 5: fan-out -------------------------------------------------------------
daemon_up
pub0=$(ctl status --json | jq -r .alerts_published)
f=$(probe fanout -n "$N_FANOUT" -s 100 -w 8 "$TMP/b.conf" "$INGEST" "$ALERTS") || exit 1
pub1=$(ctl status --json | jq -r .alerts_published)
stop_daemon
published=$((pub1 - pub0))
lost=$((published - $(field min "$f")))
row "fan-out to 100 subscribers" "$(field alerts_per_s "$f") alerts/s" \
    "$(field deliveries_per_s "$f") deliveries/s" "—" "none lost" \
    "$([ "$lost" = 0 ] && [ "$(field gaps "$f")" = 0 ] && echo yes || echo "no ($lost lost)")"

# ---- 6: the agent ------------------------------------------------------------
daemon_up
agent_run() { # LABEL AGENT-OPTS... (input on stdin): "<cpu ns> <max rss kB>"
    /usr/bin/time -f '%U %S %M' -o "$TMP/time.out" "$BIN/clustermon-agent" -s "$TMP/spool-$1" \
        -e "$INGEST" -a "agent-$1-$SRANDOM" "${@:2}" - || die "the agent failed ($1)"
    awk '{ printf "%.0f %d\n", ($1 + $2) * 1e9, $3 }' "$TMP/time.out"
}
firms | awk -v n="$N_AGENT" '{ f[NR] = $1 } END { for (i = 0; i < n; i++)
    printf "%s,revenue,%d.5,%d-%02d\n", f[i % NR + 1], 1000 + i % 7, 2000 + int(i / NR / 12) % 200, int(i / NR) % 12 + 1 }' \
    > "$TMP/agent.csv"
read -r acpu arss < <(agent_run flat -b 1000 -w 16 < "$TMP/agent.csv")
row "agent flat out ($N_AGENT samples)" "$(calc "$acpu / $N_AGENT" 0) ns/sample" "—" "—" "—" \
    "— (max RSS $((arss / 1024)) MB)"
read -r acpu arss < <(for i in 1 2 3 4 5; do sleep 1; echo "ee-001,energy,$i,2001-0$i"; done |
    agent_run slow -b 1)
row "agent at 1 sample/s (5 s)" "$(calc "$acpu / 1e6" 0) ms CPU in 5 s" "—" "—" "—" \
    "— (max RSS $((arss / 1024)) MB)"
stop_daemon

# ---- 7: the simulator ---------------------------------------------------------
sim=null
if [ -f "$ROOT/tests/bench_sim.sh" ]; then
    echo
    echo "== tests/bench_sim.sh"
    BIN=$BIN bash "$ROOT/tests/bench_sim.sh" || echo "bench: tests/bench_sim.sh failed" >&2
    [ -f "$ROOT/build/bench-sim.json" ] && sim=$(cat "$ROOT/build/bench-sim.json")
fi

mkdir -p "$(dirname "$OUT")"
jq -s --arg commit "$(git rev-parse HEAD 2>/dev/null)" --arg scale "$SCALE" --argjson sim "$sim" \
    '{commit: $commit, bench_scale: ($scale | tonumber), rows: ., sim: $sim}' "$ROWS" > "$OUT"
echo "wrote $OUT"
