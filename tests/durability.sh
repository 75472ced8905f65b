#!/usr/bin/env bash
# Durability: the WAL, snapshots and recovery, proven with the real daemon.
#  1. SIGKILL the daemon at random moments (5 times) while 4 agents stream
#     200,000+ samples; restart it each time; totals exact, nothing applied twice.
#  2. A damaged newest snapshot falls back to the previous one plus the WAL;
#     an unfinished snapshot (.tmp) is ignored.
#  3. WAL truncated at random offsets and with flipped bytes: start-up keeps
#     every intact record, reports the damage, never crashes.
#  4. State files of another format version are refused with a clear message.
#  5. fsync = always: group commit, nothing acked before it is on disk.
SUITE=durability
source "$(dirname "$0")/lib.sh"

# ---- 1. kill storm -------------------------------------------------------------
make_config "$TMP/d.conf" snapshot_interval_s=1
check "daemon starts on an empty state dir" start_daemon "$TMP/d.conf"
NAG=4
YEARS=${DUR_YEARS:-18}
firms > "$TMP/firms"
nfirms=$(wc -l < "$TMP/firms")
# Agent k restates revenue for its own years; value 1000 + month, so a lost
# sample shows in the total and a doubled one in samples_applied.
for k in $(seq 0 $((NAG - 1))); do
    awk -v y0=$((2100 + k * YEARS)) -v ny="$YEARS" '{ f[NR] = $1 } END {
        for (y = y0; y < y0 + ny; y++) for (m = 1; m <= 12; m++) for (i = 1; i <= NR; i++)
            printf "%s,revenue,%d,%d-%02d\n", f[i], 1000 + m, y, m }' "$TMP/firms" > "$TMP/load$k.csv"
done
rows=$((NAG * YEARS * 12 * nfirms))
lpids=()
for k in $(seq 0 $((NAG - 1))); do
    timeout 180 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a "storm$k" -b 200 -t 300 -r 400 \
        "$TMP/load$k.csv" 2> "$TMP/storm$k.err" &
    lpids+=($!)
    PIDS+=($!)
done
restarts_ok=1
for i in 1 2 3 4 5; do
    sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 0.7 }')"
    kill -KILL "$DPID"
    wait "$DPID" 2>/dev/null
    start_daemon "$TMP/d.conf" || restarts_ok=0
done
check "restarted 5 times after SIGKILL" [ "$restarts_ok" = 1 ]
storm_ok=1
for p in "${lpids[@]}"; do wait "$p" || storm_ok=0; done
check "every agent got every batch acked across the kills" [ "$storm_ok" = 1 ]
[ "$storm_ok" = 1 ] || tail -3 "$TMP"/storm*.err
check "samples applied == $rows input rows: nothing lost, nothing twice" \
    [ "$(status_field samples_applied)" = "$rows" ]
exact=1
for y in 2100 $((2100 + YEARS)) $((2100 + NAG * YEARS - 1)); do
    got=$(ctl totals --metric revenue --period "$y" --json | jq -c '[.clusters[] | .total]')
    [ "$got" = "[$((197 * 12078)),$((46 * 12078))]" ] || { exact=0; echo "year $y: $got"; }
done
check "per-cluster totals equal the input sums exactly" [ "$exact" = 1 ]
check "the kills left WAL damage reported, not fatal" grep -q "recovered:" "$TMP/daemon.log"

# ---- 2. snapshot fallback ---------------------------------------------------------
for i in 1 2 3; do
    printf 'ee-001,energy,%d,2099-%02d\n' "$i" "$i" | "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a "snap$i" - || true
    sleep 1.2
done
check "snapshots were written (at least 2)" [ "$(status_field snapshots.written)" -ge 2 ]
before=$(ctl totals --metric revenue --period 2100 --json | jq -c .clusters)
applied=$(status_field samples_applied)
stop_daemon TERM
newest=$(ls "$STATE"/snap-*.snap | sort | tail -1)
size=$(stat -c %s "$newest")
printf '\xff' | dd of="$newest" bs=1 seek=$((size / 2)) conv=notrunc status=none
# an older daemon's temp name, and fileio's (NAME.XXXXXX.tmp)
printf 'half a snapshot' > "$STATE/snap-9999999999999999.snap.tmp"
printf 'half a snapshot' > "$STATE/snap-9999999999999999.snap.Ab12Cd.tmp"
: > "$TMP/daemon2.log"
check "starts with a damaged newest snapshot" start_daemon "$TMP/d.conf" "$TMP/daemon2.log"
check "says it fell back" grep -q "is damaged: CRC mismatch.*falling back" "$TMP/daemon2.log"
check "the damaged snapshot is set aside" [ -e "$newest.damaged" ]
check "the unfinished snapshot was removed" [ ! -e "$STATE/snap-9999999999999999.snap.tmp" ]
check "and the one under fileio's temp name" [ ! -e "$STATE/snap-9999999999999999.snap.Ab12Cd.tmp" ]
check "previous snapshot + WAL give the same totals" \
    [ "$(ctl totals --metric revenue --period 2100 --json | jq -c .clusters)" = "$before" ]
check "and the same sample count" [ "$(status_field samples_applied)" = "$applied" ]
stop_daemon TERM

# ---- 3. WAL damage ------------------------------------------------------------------
STATE=$TMP/walstate
make_config "$TMP/w.conf" snapshot_interval_s=1000000
start_daemon "$TMP/w.conf" "$TMP/w.log"
# a new state dir snapshots the registry's first-seen times at once: wait for
# it, so that every record below lands in one segment
for _ in $(seq 1 50); do [ "$(status_field snapshots.written)" -ge 1 ] && break; sleep 0.1; done
N=120  # seqs 1..120: one byte each, so every record has the same size
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) printf "ee-001,revenue,1000,%d-%02d\n", 2150 + int(i / 12), i % 12 + 1 }' \
    > "$TMP/wal.csv"
"$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a walagent -b 1 "$TMP/wal.csv"
stop_daemon KILL # a clean stop would snapshot: the state must be in the WAL alone
seg=$(ls "$STATE"/wal-*.log | sort | head -1)
size=$(stat -c %s "$seg")
rec=$(( (size - 16) / N ))
check "the WAL holds $N equal records" [ $(( (size - 16) % N )) = 0 ]
cp -a "$STATE" "$TMP/pristine"

# recovered_ok EXPECTED_SAMPLES LOG: start on the damaged copy, check, stop
recovered() {
    start_daemon "$TMP/w.conf" "$1" || return 1
    local got
    got=$(status_field samples_applied)
    stop_daemon TERM
    echo "$got"
}
trunc_ok=1
for i in 1 2 3 4 5; do
    rm -rf "$STATE"; cp -a "$TMP/pristine" "$STATE"
    off=$(( 16 + (RANDOM * 32768 + RANDOM) % (size - 16) ))
    truncate -s "$off" "$STATE/$(basename "$seg")"
    want=$(( (off - 16) / rec ))
    got=$(recovered "$TMP/trunc$i.log")
    [ "$got" = "$want" ] || { trunc_ok=0; echo "truncated at $off: kept $got, expected $want"; }
    if [ $(( (off - 16) % rec )) != 0 ]; then
        grep -q "damaged tail" "$TMP/trunc$i.log" || { trunc_ok=0; echo "no damage report at $off"; }
    fi
done
check "truncated at 5 random offsets: every whole record kept, the tail reported" [ "$trunc_ok" = 1 ]
flip_ok=1
for i in 1 2 3 4 5; do
    rm -rf "$STATE"; cp -a "$TMP/pristine" "$STATE"
    off=$(( 16 + (RANDOM * 32768 + RANDOM) % (size - 16) ))
    byte=$(od -An -tu1 -j "$off" -N1 "$STATE/$(basename "$seg")" | tr -d ' ')
    printf "\\$(printf '%03o' $(( byte ^ 0x5a )))" |
        dd of="$STATE/$(basename "$seg")" bs=1 seek="$off" conv=notrunc status=none
    got=$(recovered "$TMP/flip$i.log")
    [ "$got" = $((N - 1)) ] || { flip_ok=0; echo "flip at $off: kept $got, expected $((N - 1))"; }
    grep -q "damaged" "$TMP/flip$i.log" || { flip_ok=0; echo "flip at $off not reported"; }
done
check "a flipped byte loses exactly its record, all others kept and reported" [ "$flip_ok" = 1 ]
start_daemon "$TMP/w.conf" "$TMP/w2.log"
printf 'ee-002,revenue,5,2150-01\n' | "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a after-damage - 
check "after damage the daemon takes new data on the repaired log" [ "$(status_field samples_applied)" = "$N" ]
stop_daemon TERM

# ---- 4. other format versions are refused -----------------------------------------------
rm -rf "$STATE"; cp -a "$TMP/pristine" "$STATE"
# A real version-7 segment has a consistent header: version 7 and the CRC-32
# of the first 12 bytes (gzip's trailer holds the CRC-32 of its input). A
# header whose check does not match is damage instead (tests/faults_e2e.sh).
printf 'CMWAL\0\0\0\x07\0\0\0' > "$TMP/hdr12"
{ cat "$TMP/hdr12"; gzip -c < "$TMP/hdr12" | tail -c 8 | head -c 4; } |
    dd of="$STATE/$(basename "$seg")" bs=1 conv=notrunc status=none
"$BIN/clustermond" -c "$TMP/w.conf" 2> "$TMP/v.log"
rc=$?
check "a WAL of format version 7 is refused with a clear message" \
    sh -c "[ $rc = 1 ] && grep -q 'WAL format version 7; this clustermond reads version 1' '$TMP/v.log'"

# ---- 5. fsync = always: group commit ----------------------------------------------------------
STATE=$TMP/always
make_config "$TMP/a.conf" fsync=always
start_daemon "$TMP/a.conf" "$TMP/a.log"
apids=()
for k in 0 1 2 3; do
    awk -v k=$k 'BEGIN { for (i = 0; i < 2000; i++)
        printf "ee-%03d,energy,1,%d-%02d\n", i % 100 + 1, 2120 + 2 * k + int(i / 1200), int(i / 100) % 12 + 1 }' \
        > "$TMP/al$k.csv"
    timeout 120 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a "always$k" -b 10 "$TMP/al$k.csv" &
    apids+=($!)
    PIDS+=($!)
done
all_ok=1
for p in "${apids[@]}"; do wait "$p" || all_ok=0; done
check "fsync = always: 800 batches from 4 agents acked" [ "$all_ok" = 1 ]
fsyncs=$(status_field wal.fsyncs)
appends=$(status_field wal.appends)
echo "   (fsync = always: $appends appends shared $fsyncs fsyncs)"
check "group commit: fewer fsyncs than appends" [ "$fsyncs" -lt "$appends" ]
check "nothing acked is unsynced" [ "$(status_field wal.unsynced_bytes)" = 0 ]
stop_daemon TERM

finish
