#!/usr/bin/env bash
# Faults the daemon climbs out of by itself, proven with the real daemon.
#  a. Disk full: the state dir on an 8 MiB tmpfs filled to the last byte.
#     Ingest nacks busy; the daemon releases its reserve, snapshots and trims
#     while full; freeing 1 MiB is enough to resume; every acked sample is
#     counted exactly once, and a restart finds no half-written record.
#     (Needs root to mount a tmpfs; skipped with a message otherwise.)
#  b. A flipped byte in the newest snapshot's version field: the daemon starts
#     from the previous snapshot + WAL (or the whole WAL) with exact totals and
#     says so; with no exact start left it refuses without advising to
#     discard good data, and changes nothing.
#  c. Flipped bytes in WAL segment headers: every record is still read;
#     a header flip plus a damaged record loses exactly that record, reported.
SUITE=faults
source "$(dirname "$0")/lib.sh"

MNT=$TMP/fs
mounted=0
faults_cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    [ "$mounted" = 1 ] && umount "$MNT"
    cleanup
}
trap faults_cleanup EXIT

# total METRIC YEAR: the sum over clusters, as the daemon reports it
total() { ctl totals --metric "$1" --period "$2" --json | jq '[.clusters[].total | tonumber] | add'; }
# rows YEAR0 NYEARS VALUE: ee-001..ee-010, every month of NYEARS years
rows() {
    awk -v y0="$1" -v ny="$2" -v v="$3" 'BEGIN { for (y = y0; y < y0 + ny; y++)
        for (m = 1; m <= 12; m++) for (f = 1; f <= 10; f++)
            printf "ee-%03d,revenue,%d,%d-%02d\n", f, v, y, m }'
}
agent() { "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" "$@"; }

# ---- a. disk full ------------------------------------------------------------------
mkdir -p "$MNT"
if [ "$(id -u)" != 0 ]; then
    echo "skip - a. disk full: not root, cannot mount a tmpfs"
elif ! mount -t tmpfs -o size=8m tmpfs "$MNT" 2> "$TMP/mount.err"; then
    echo "skip - a. disk full: cannot mount a tmpfs: $(cat "$TMP/mount.err")"
else
    mounted=1
    STATE=$MNT/state
    make_config "$TMP/full.conf" snapshot_interval_s=1000000
    check "a: daemon starts on the tmpfs" start_daemon "$TMP/full.conf" "$TMP/full.log"
    check "a: it holds a reserve of at least 1 MiB" [ "$(status_field wal.reserve_bytes)" -ge 1048576 ]
    rows 2100 1 7 > "$TMP/p1.csv"        # 120 samples
    rows 2101 10 11 > "$TMP/p2.csv"      # 1200 samples, 120 batches of 10
    check "a: 120 samples acked before the disk fills" agent -a full1 -b 10 "$TMP/p1.csv"
    # fill the file system to the last block
    dd if=/dev/zero of="$MNT/filler" bs=1M status=none 2> /dev/null
    dd if=/dev/zero of="$MNT/filler" bs=4k oflag=append conv=notrunc status=none 2> /dev/null
    echo "   (tmpfs: $(df -k --output=avail "$MNT" | tail -1 | tr -d ' ') KiB free after filling)"
    timeout 120 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a full2 -b 10 -t 300 -r 0 \
        "$TMP/p2.csv" 2> "$TMP/full2.err" &
    apid=$!
    PIDS+=("$apid")
    busy() { [ "$(status_field nacks.busy)" -gt 0 ]; }
    check "a: ingest nacks busy on the full disk" wait_for 30 busy
    check "a: failed appends are counted" [ "$(status_field wal.append_failed)" -gt 0 ]
    # The reserve lets it snapshot twice and trim while the disk is full; it
    # then waits for room to make the reserve again before taking data.
    two_snaps() { [ "$(status_field snapshots.written)" -ge 2 ]; }
    check "a: it snapshots and trims on the full disk (2 snapshots)" wait_for 30 two_snaps
    sleep 1
    check "a: and stays paused while there is no room for the reserve" \
        [ "$(status_field wal.disk_full)" = true ]
    kill -0 "$apid" 2> /dev/null
    check "a: the agent is still waiting (its batches deferred, not lost)" [ $? = 0 ]
    truncate -s -1M "$MNT/filler"
    echo "   (freed 1 MiB: $(df -k --output=avail "$MNT" | tail -1 | tr -d ' ') KiB free)"
    wait "$apid"
    check "a: after freeing 1 MiB every batch is acked" [ $? = 0 ]
    check "a: ingest resumed (disk_full false, reserve back)" \
        sh -c "[ \"\$(BIN=$BIN; $BIN/clustermonctl -e $CONTROL -t 5000 status --json |
                jq -r '[.wal.disk_full, .wal.reserve_bytes >= 1048576] | @tsv')\" = 'false	true' ]"
    check "a: the log says it recovered" grep -q "disk full: recovered in" "$TMP/full.log"
    check "a: samples applied == 1320 acked" [ "$(status_field samples_applied)" = 1320 ]
    check "a: totals exact (120 x 7, 120 x 11 a year)" \
        sh -c "[ '$(total revenue 2100) $(total revenue 2101) $(total revenue 2110)' = '840 1320 1320' ]"
    echo "   ($(status_field wal.append_failed) failed appends, $(status_field nacks.busy) busy nacks," \
         "$(status_field snapshots.written) snapshots, $(status_field snapshots.failed) failed)"
    stop_daemon TERM
    check "a: restarts on the tmpfs" start_daemon "$TMP/full.conf" "$TMP/full-restart.log"
    check "a: after the restart the same 1320 samples" [ "$(status_field samples_applied)" = 1320 ]
    check "a: replay finds no half-written record of the failed appends" \
        [ "$(status_field recovery.wal_damaged)" = 0 ]
    grep -E "damaged|recovered:" "$TMP/full-restart.log" | sed 's/^/   /'
    stop_daemon TERM
fi

# ---- b. damaged snapshot header ----------------------------------------------------
STATE=$TMP/snapstate
make_config "$TMP/snap.conf" snapshot_interval_s=1
start_daemon "$TMP/snap.conf" "$TMP/snap.log"
for i in 1 2 3 4; do
    rows $((2120 + i)) 1 $i | agent -a "snap$i" -b 40 - 2> /dev/null
    sleep 1.2
done
check "b: snapshots were written (at least 3: the WAL was trimmed)" \
    [ "$(status_field snapshots.written)" -ge 3 ]
want="$(total revenue 2121) $(total revenue 2124)"
applied=$(status_field samples_applied)
stop_daemon TERM
snaps=($(ls "$STATE"/snap-*.snap | sort))
newest=${snaps[-1]} prev=${snaps[-2]}
firstseg=$(ls "$STATE"/wal-*.log | sort | head -1)
# version field 1 -> 0x5a01 = 23041: one flipped byte
printf '\x5a' | dd of="$newest" bs=1 seek=9 conv=notrunc status=none
check "b: starts with the newest snapshot's version field damaged" \
    start_daemon "$TMP/snap.conf" "$TMP/snap2.log"
pn=$(basename "$prev" .snap); pn=${pn#snap-}
check "b: the log names the damage and what it started from" \
    grep -Eq "snapshot .*$(basename "$newest") damaged \(format version 23041.*started from snapshot $pn \+ WAL segments [0-9]+\.\.[0-9]+" \
    "$TMP/snap2.log"
grep "started from" "$TMP/snap2.log" | sed 's/^/   /'
check "b: totals exact from the previous snapshot + WAL" \
    [ "$(total revenue 2121) $(total revenue 2124)" = "$want" ]
check "b: the same $applied samples" [ "$(status_field samples_applied)" = "$applied" ]
check "b: status counts the damaged snapshot" [ "$(status_field recovery.snapshots_damaged)" = 1 ]
stop_daemon KILL # no stop snapshot: the files stay as the cron left them

# No usable snapshot and the WAL trimmed: refused, nothing changed, no
# advice to move the state directory aside.
printf '\x5a' | dd of="$prev" bs=1 seek=9 conv=notrunc status=none
ls "$STATE" > "$TMP/before.ls"
"$BIN/clustermond" -c "$TMP/snap.conf" 2> "$TMP/refuse.log"
rc=$?
check "b: no exact start left: refuses (exit 1)" [ "$rc" = 1 ]
check "b: the message names the damage and keeps the WAL" \
    grep -q "format version 23041.*no usable snapshot.*keep the WAL" "$TMP/refuse.log"
check "b: it never advises discarding the state directory" \
    sh -c "! grep -qi 'state directory aside' '$TMP/refuse.log'"
check "b: and changes nothing in the state dir" diff -q "$TMP/before.ls" <(ls "$STATE")

# One snapshot, damaged, and the WAL whole from segment 1: the WAL alone.
STATE=$TMP/onesnap
make_config "$TMP/one.conf" snapshot_interval_s=1
start_daemon "$TMP/one.conf" "$TMP/one.log"
rows 2130 2 5 | agent -a one -b 30 - 2> /dev/null
one_snap() { [ "$(status_field snapshots.written)" -ge 1 ]; }
wait_for 10 one_snap
stop_daemon KILL # (a clean stop would snapshot)
# On a slow run (sanitizers, a loaded machine) the cron may have written a
# snapshot before the data came too; keep only the newest, which covers it all.
ls "$STATE"/snap-*.snap | head -n -1 | xargs -r rm -f
check "b: one snapshot, WAL from segment 1" \
    sh -c "[ \$(ls '$STATE'/snap-*.snap | wc -l) = 1 ] && [ -e '$STATE/wal-0000000000000001.log' ]"
printf '\x5a' | dd of="$(ls "$STATE"/snap-*.snap)" bs=1 seek=9 conv=notrunc status=none
check "b: starts from the whole WAL when the only snapshot is damaged" \
    start_daemon "$TMP/one.conf" "$TMP/one2.log"
check "b: says so" grep -q "started from no snapshot + WAL segments 1\.\." "$TMP/one2.log"
check "b: totals exact from the WAL alone" \
    sh -c "[ '$(total revenue 2130) $(total revenue 2131)' = '600 600' ] && [ \$($BIN/clustermonctl -e $CONTROL status --json | jq .samples_applied) = 240 ]"
stop_daemon TERM

# ---- c. damaged WAL segment headers ----------------------------------------------------
STATE=$TMP/walhdr
make_config "$TMP/wh.conf" snapshot_interval_s=1000000
start_daemon "$TMP/wh.conf" "$TMP/wh.log"
# a first start snapshots the firms' first-seen times at its first tick:
# taken after data came it would close segment 1 mid-stream (a loaded
# machine), so wait for it (taken on an empty WAL, it leaves it as it is)
wait_for 10 sh -c "ls '$STATE'/snap-*.snap > /dev/null 2>&1"
rows 2140 1 3 | agent -a wh1 -b 10 - 2> /dev/null        # segment 1: 12 batches
stop_daemon KILL # no stop snapshot: segments 1 and 2 hold the batches
start_daemon "$TMP/wh.conf" "$TMP/wh.log"
rows 2141 1 4 | agent -a wh2 -b 10 - 2> /dev/null        # segment 2: 12 batches
stop_daemon KILL
cp -a "$STATE" "$TMP/walhdr.pristine"
s1=$STATE/wal-0000000000000001.log s2=$STATE/wal-0000000000000002.log
printf 'X' | dd of="$s1" bs=1 seek=2 conv=notrunc status=none      # magic
printf '\x5a' | dd of="$s2" bs=1 seek=9 conv=notrunc status=none   # version field
check "c: starts with two damaged segment headers" start_daemon "$TMP/wh.conf" "$TMP/wh2.log"
check "c: every record read: 240 samples, totals exact" \
    sh -c "[ \$($BIN/clustermonctl -e $CONTROL status --json | jq .samples_applied) = 240 ] &&
           [ '$(total revenue 2140) $(total revenue 2141)' = '360 480' ]"
check "c: both headers reported, nothing lost" \
    sh -c "[ \$(grep -c 'damaged header: 12 intact records read from the segment, 0 bytes of damage' '$TMP/wh2.log') = 2 ]"
check "c: and the start-up line says so" \
    grep -q "started from no snapshot + WAL segments 1\.\.2 (0 WAL segments missing, 2 with a damaged header)" \
    "$TMP/wh2.log"
stop_daemon TERM
rm -rf "$STATE"; cp -a "$TMP/walhdr.pristine" "$STATE"
# a flipped header check byte, and the first record's payload damaged too:
# exactly that batch (10 samples) is lost, and reported
printf '\x5a' | dd of="$s1" bs=1 seek=13 conv=notrunc status=none
printf '\x5a' | dd of="$s1" bs=1 seek=40 conv=notrunc status=none
check "c: starts with a damaged header and a damaged first record" \
    start_daemon "$TMP/wh.conf" "$TMP/wh3.log"
check "c: loses exactly that batch: 230 samples" [ "$(status_field samples_applied)" = 230 ]
check "c: and reports the damaged region" \
    grep -q "wal-0000000000000001.log: damaged region at offset 16\.\." "$TMP/wh3.log"
stop_daemon TERM

finish
