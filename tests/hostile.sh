#!/usr/bin/env bash
# tests/hostile.sh -- hostile input against a running daemon: a table of bad
# batches, each sent as raw bytes with tests/tools/zsend, must be nacked with
# its status and reason and counted in `clustermonctl status` (nacks.<status>),
# with the daemon still answering after each; a frame over 4 MiB is answered
# too_large, one over 8 MiB dropped by ZeroMQ while the daemon serves others; a flood from one connection does not
# keep a well-behaved agent from being acked in time; and the good data sent
# first is intact at the end.
#
#   BIN=build bash tests/hostile.sh        (part of make check)
#
# Every message is spelled in hex with the helpers below (MessagePack by
# hand, because the real encoder refuses to produce any of it). Every wait is
# bounded; every child is killed and reaped by lib.sh.
SUITE=hostile
source "$(dirname "$0")/lib.sh"
export LC_ALL=C # ${#s} counts bytes

ZSEND=$BIN/tests/tools/zsend
ZFLOOD=$BIN/tests/tools/zflood
AGENT=(timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -t 5000)

# ---- MessagePack in hex ---------------------------------------------------------
# bytes HEX: writes the bytes a hex string spells
bytes() { printf "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }
# hraw STRING: the string's bytes in hex (bash only: no fork per string)
hraw() {
    local s=$1 i d h out=
    for ((i = 0; i < ${#s}; i++)); do
        printf -v d '%d' "'${s:i:1}"
        printf -v h '%02x' $((d & 255))
        out+=$h
    done
    printf '%s' "$out"
}
# hstr STRING: a MessagePack str (fixstr, str8 or str16 by length)
hstr() {
    local n=${#1}
    if [ "$n" -lt 32 ]; then printf '%02x' $((0xa0 + n))
    elif [ "$n" -lt 256 ]; then printf 'd9%02x' "$n"
    else printf 'da%04x' "$n"; fi
    hraw "$1"
}
# hint N: a MessagePack integer: fixint, uint32, uint64, negative fixint or int64
hint() {
    local v=$1
    if [ "$v" -ge 0 ] && [ "$v" -lt 128 ]; then printf '%02x' "$v"
    elif [ "$v" -ge 0 ] && [ "$v" -lt 4294967296 ]; then printf 'ce%08x' "$v"
    elif [ "$v" -ge 0 ]; then printf 'cf%016x' "$v"
    elif [ "$v" -ge -32 ]; then printf '%02x' $((v & 0xff))
    else printf 'd3%016x' "$v"; fi # bash prints a negative as its two's complement
}
# sample FIRM_HEX METRIC_HEX VALUE_HEX TS_HEX [PERIOD_HEX]: a sample array
sample() { if [ $# -eq 5 ]; then printf '95%s%s%s%s%s' "$@"; else printf '94%s%s%s%s' "$@"; fi; }
# batch SEQ_HEX SAMPLES_HEX: a batch map of a new agent "hNNNNNN" (stream 1),
# SAMPLES_HEX with its array header. Each message is the first of its own
# stream, so seq 1 is the one the daemon takes and the table sees the status
# of the content, not out_of_order (tests/exactly_once_e2e.sh covers those).
H_SAMPLES=$(hstr samples)
batch() {
    local agent
    printf -v agent 'h%06d' $((SRANDOM % 1000000))
    printf '86%s02%s%s%s%s%s01%s%s%s%s' "$(hstr v)" "$(hstr type)" "$(hstr batch)" "$(hstr seq)" "$1" \
        "$(hstr epoch)" "$(hstr agent)" "$(hstr "$agent")" "$H_SAMPLES" "$2"
}
F_OK=$(hstr ee-001)
M_OK=$(hstr energy)
V_OK=cb4014000000000000 # 5.0
TS_OK=$(hint 1656640800000)
P_OK=$(hstr 2022-07)
S_OK=$(sample "$F_OK" "$M_OK" "$V_OK" "$TS_OK" "$P_OK")
# one_sample SAMPLE_HEX [SEQ]: a batch of one sample
one_sample() { batch "$(hint "${2:-1}")" "91$1"; }
GOOD=$(one_sample "$S_OK")

# ---- daemon and good data ---------------------------------------------------------
make_config "$TMP/hostile.conf"
start_daemon "$TMP/hostile.conf"
check "daemon starts" [ $? = 0 ]

nack_count() { ctl status --json | jq -r ".nacks.$1"; }
ping_ok() { ctl ping > /dev/null; }
total_of() { ctl totals --metric revenue --period "$1" --json | jq -r '.clusters[0].total | tonumber'; }

printf 'ee-001,revenue,1000.5,2031-01\nee-002,revenue,2000,2031-01\nee-003,revenue,3000,2031-01\n' > "$TMP/good.csv"
check "an agent sends good data first" "${AGENT[@]}" -a hostile-good "$TMP/good.csv"
check "and its total is 6000.5" [ "$(total_of 2031-01)" = 6000.5 ]
applied_before=$(ctl status --json | jq -r .samples_applied)

# ---- the table: each bad message, its status and a piece of its reason ------------
# bad NAME STATUS REASON HEX: sends the message and expects the nack, its
# counter one higher (and no other), and a daemon that still answers.
nacks() { ctl status --json | jq -c .nacks; }
NACKS=$(nacks)
bad_file() {
    local name=$1 status=$2 reason=$3 file=$4 now
    timeout 20 "$ZSEND" "$INGEST" "$file" > "$TMP/out" 2>&1
    if grep -q "^$status seq=[0-9]* accepted=0 expected=[0-9]* reason=.*$reason" "$TMP/out"; then
        ok "$name: nacked $status ($reason)"
    else
        no "$name: nacked $status ($reason): got: $(head -c 300 "$TMP/out")"
    fi
    check "$name: the daemon still answers ping" ping_ok
    now=$(nacks)
    check "$name: counted in nacks.$status (only)" jq -en --argjson a "$NACKS" --argjson b "$now" --arg s "$status" \
        '$b[$s] == $a[$s] + 1 and ($b | keys | all(. == $s or $b[.] == $a[.]))'
    NACKS=$now
}
bad() { bytes "$4" > "$TMP/msg.bin"; bad_file "$1" "$2" "$3" "$TMP/msg.bin"; }

# truncated MessagePack: cuts of a valid batch at several places
glen=$((${#GOOD} / 2))
for cut in 0 1 4 12 30 $((glen / 2)) $((glen - 1)); do
    if [ "$cut" = 0 ]; then reason='empty message'; else reason='truncated'; fi
    GOOD=$(one_sample "$S_OK")
    bad "truncated to $cut of $glen bytes" malformed "$reason" "${GOOD:0:$((cut * 2))}"
done
bad "not MessagePack at all" malformed 'invalid MessagePack byte 0xc1' "c1c1c1c1"
bad "not a map" malformed 'expected map' "93010203"
bad "trailing bytes after the map" malformed 'trailing bytes (2)' "$(one_sample "$S_OK")c0c0"

# wrong types
bad "seq as a string" malformed 'seq: expected' "$(batch "$(hstr 100)" "91$S_OK")"
bad "value as a map" malformed 'sample 0: value: expected' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "81$(hstr a)01" "$TS_OK" "$P_OK")")"
bad "agent as an integer" malformed 'agent: expected' "$(batch 01 "91$S_OK" | sed "s/$(hstr agent)a7[0-9a-f]\{14\}/$(hstr agent)2a/")"
bad "samples as a string" malformed 'samples: expected' "$(batch 01 "$(hstr many)")"
bad "a sample of 3 elements" malformed 'sample 0: array of 3' "$(one_sample "93$F_OK$M_OK$V_OK")"
bad "a float where seq wants an integer" malformed 'seq: expected' "$(batch cb3ff0000000000000 "91$S_OK")"

# sizes: a header claiming 10^6 samples, a 1 MiB firm id, deep nesting
bad "a samples array claiming 1,000,000 elements" too_large '1000000 samples exceed the limit 10000' \
    "$(batch 01 dd000f4240)"
bad "a samples array claiming 2^32-1 elements" too_large 'samples exceed the limit' "$(batch 01 ddffffffff)"
{
    bytes "$(batch 01 "9195db00100000")"
    head -c 1048576 /dev/zero | tr '\0' 'a'
    bytes "$M_OK$V_OK$TS_OK$P_OK"
} > "$TMP/mib.bin"
bad_file "a 1 MiB firm string" too_large 'sample 0: firm: string of 1048576 bytes exceeds 64' "$TMP/mib.bin"
bad "a str32 header claiming 4 GiB" malformed 'truncated' "$(one_sample "95dbffffffff")"
bad "an unknown key nested 5 deep" too_large 'nesting deeper than 4' \
    "$(batch 01 "91$S_OK" | sed "s/^86/87/")$(hstr extra)9191919101"

# values
bad "NaN" invalid 'sample 0: value is NaN' "$(one_sample "$(sample "$F_OK" "$M_OK" cb7ff8000000000000 "$TS_OK")")"
bad "+Inf" invalid 'sample 0: value is +Inf' "$(one_sample "$(sample "$F_OK" "$M_OK" cb7ff0000000000000 "$TS_OK")")"
bad "-Inf" invalid 'sample 0: value is -Inf' "$(one_sample "$(sample "$F_OK" "$M_OK" cbfff0000000000000 "$TS_OK")")"
bad "NaN as float32" invalid 'value is NaN' "$(one_sample "$(sample "$F_OK" "$M_OK" ca7fc00000 "$TS_OK")")"
bad "|value| of 2e14" invalid "value 2e+14 exceeds 1e+14" "$(one_sample "$(sample "$F_OK" "$M_OK" cb42e6bcc41e900000 "$TS_OK")")"
bad "seq 0" invalid 'seq: 0 (must be >= 1)' "$(batch 00 "91$S_OK")"
bytes "$(batch 01 90)" > "$TMP/empty.bin"
"$ZSEND" "$INGEST" "$TMP/empty.bin" > "$TMP/out"
check "empty samples: a valid batch that settles its seq with nothing" grep -q '^ok seq=1 accepted=0 ' "$TMP/out"
NACKS=$(nacks)

# periods and dates
bad "period -2021" invalid 'sample 0: period: "-2021" is not YYYY' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "$V_OK" "$TS_OK" "$(hstr -2021)")")"
bad "period 2021-13" invalid 'sample 0: period: "2021-13" is not YYYY' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "$V_OK" "$TS_OK" "$(hstr 2021-13)")")"
bad "period in 1900" invalid 'period: "1900" is not' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "$V_OK" "$TS_OK" "$(hstr 1900)")")"
bad "period in 3000" invalid 'period: "3000-01" is not' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "$V_OK" "$TS_OK" "$(hstr 3000-01)")")"
bad "negative timestamp" invalid 'sample 0: ts_ms: -1 outside' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "$V_OK" "$(hint -1)")")"
bad "timestamp in 1900" invalid 'ts_ms: -2208988800000 outside' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "$V_OK" "$(hint -2208988800000)")")"
bad "timestamp in 3000" invalid 'ts_ms: 32503680000000 outside' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "$V_OK" "$(hint 32503680000000)")")"
bad "timestamp over int64" invalid 'ts_ms: integer 18446744073709551615 out of range' \
    "$(one_sample "$(sample "$F_OK" "$M_OK" "$V_OK" cfffffffffffffffff)")"

# strings: invalid UTF-8, NUL, a GBK firm name
bad "invalid UTF-8 in a firm id" invalid 'sample 0: firm: invalid UTF-8 at byte 3' \
    "$(one_sample "$(sample a565652dc328 "$M_OK" "$V_OK" "$TS_OK")")"
bad "an overlong '/' in a firm id" invalid 'firm: invalid UTF-8 at byte 0' \
    "$(one_sample "$(sample a2c0af "$M_OK" "$V_OK" "$TS_OK")")"
bad "a UTF-16 surrogate in a firm id" invalid 'firm: invalid UTF-8' \
    "$(one_sample "$(sample a3eda080 "$M_OK" "$V_OK" "$TS_OK")")"
bad "a GBK firm name" invalid 'firm: invalid UTF-8' \
    "$(one_sample "$(sample a4b1b1bea9 "$M_OK" "$V_OK" "$TS_OK")")"
bad "a NUL in a firm id" invalid 'firm: NUL at byte 2' "$(one_sample "$(sample a3656500 "$M_OK" "$V_OK" "$TS_OK")")"
bad "an empty firm id" invalid 'firm: empty string' "$(one_sample "$(sample a0 "$M_OK" "$V_OK" "$TS_OK")")"

# duplicate fields, envelope
bad "seq twice" malformed 'duplicate key "seq"' "$(batch 01 "91$S_OK" | sed "s/^86/87/")$(hstr seq)02"
bad "v twice" malformed 'duplicate key "v"' "$(batch 01 "91$S_OK" | sed "s/^86/87/")$(hstr v)01"
bad "type not second" malformed '"type" must be the second key' \
    "85$(hstr v)02$(hstr agent)$(hstr x)$(hstr type)$(hstr batch)$(hstr seq)01$(hstr samples)91$S_OK"
bad "unknown message type" malformed 'unexpected type "bogus"' "$(batch 01 "91$S_OK" | sed "s/$(hstr batch)/$(hstr bogus)/")"
bad "an ack sent to ingest" malformed 'unexpected type "ack"' \
    "87a17602a474797065a361636ba37365712aa6737461747573a26f6ba8616363657074656402ab6d61785f76657273696f6e01a6726561736f6ea0"

# version 3 (and 1, the old one): refused as a whole, with the daemon's max_version
for v in 3 1; do
    before=$(nack_count version)
    bytes "$(batch 01 "91$S_OK" | sed "s/^86a17602/86a1760$v/")" > "$TMP/v.bin"
    timeout 20 "$ZFLOOD" -n 1 "$INGEST" "$TMP/v.bin" > "$TMP/out"
    check "version $v: status version, seq 0, max_version 2" \
        grep -q "^first: version seq=0 accepted=0 max_version=2 reason=v: unsupported version $v (this build speaks 2..2)\$" \
        "$TMP/out"
    check "version $v: the daemon still answers ping" ping_ok
    check "version $v: counted in nacks.version" [ "$(nack_count version)" = $((before + 1)) ]
done

# ---- frames over 4 MiB: answered too_large up to 8 MiB, dropped beyond ---------------
head -c $((4 * 1024 * 1024 + 1)) /dev/zero > "$TMP/huge.bin"
before=$(nack_count too_large)
timeout 20 "$ZFLOOD" -n 1 -t 5000 "$INGEST" "$TMP/huge.bin" > "$TMP/out"
check "a frame of 4 MiB + 1 is answered too_large, naming the limit" \
    grep -q '^first: too_large seq=0 .*a frame of 4194305 bytes exceeds the limit of 4194304 bytes' "$TMP/out"
check "and counted in nacks.too_large" [ "$(nack_count too_large)" = $((before + 1)) ]
# (ZMQ_MAXMSGSIZE: a frame over 8 MiB never reaches the daemon; the
# disconnect is counted, the frame is not a nack)
head -c $((8 * 1024 * 1024 + 1)) /dev/zero > "$TMP/huge.bin"
nacks_before=$(ctl status --json | jq '[.nacks[]] | add')
timeout 20 "$ZFLOOD" -n 1 -t 2000 "$INGEST" "$TMP/huge.bin" > "$TMP/out"
rc=$?
check "a frame of 8 MiB + 1 gets no reply (exit 3)" sh -c "[ $rc = 3 ] && ! grep -q '^first:' '$TMP/out'"
check "after it the daemon still answers ping" ping_ok
bytes "$(one_sample "$S_OK" 1)" > "$TMP/other.bin"
timeout 20 "$ZSEND" "$INGEST" "$TMP/other.bin" > "$TMP/out" 2>&1
check "and serves another client (acked)" grep -q '^ok seq=1 accepted=1 ' "$TMP/out"
check "the dropped frame was not counted as a nack" \
    [ "$(ctl status --json | jq '[.nacks[]] | add')" = "$nacks_before" ]
applied_before=$((applied_before + 1)) # that one good sample

# ---- a flood from one connection while a well-behaved agent sends --------------
# One DEALER pipelines malformed frames for FLOOD_MS; meanwhile an agent must
# get its batch acked within its timeout and control must answer.
FLOOD_MS=${FLOOD_MS:-3000}
bytes "68656c6c6f" > "$TMP/hello.bin"
malformed_before=$(nack_count malformed)
timeout 60 "$ZFLOOD" -d "$FLOOD_MS" -t 10000 "$INGEST" "$TMP/hello.bin" > "$TMP/flood.out" 2>&1 &
FPID=$!
PIDS+=("$FPID")
flooding() { [ "$(nack_count malformed)" -gt $((malformed_before + 1000)) ]; }
for _ in $(seq 1 50); do flooding && break; sleep 0.1; done
check "the flood is under way" flooding
printf 'ee-004,revenue,400,2031-02\nee-005,revenue,500,2031-02\n' > "$TMP/during.csv"
start=$(date +%s%N)
timeout 30 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -a hostile-during -t 5000 -r 1 -v \
    "$TMP/during.csv" 2> "$TMP/during.err"
arc=$?
ms=$((($(date +%s%N) - start) / 1000000))
check "an agent sending during the flood is acked (exit 0, ${ms} ms)" [ "$arc" = 0 ]
check "within its timeout, without a resend" sh -c "[ $ms -lt 5000 ] && ! grep -q 'resending in' '$TMP/during.err'"
start=$(date +%s%N)
ping_ok
prc=$?
check "control answers ping during the flood ($((($(date +%s%N) - start) / 1000000)) ms)" [ "$prc" = 0 ]
kill -0 "$FPID" 2> /dev/null
check "the flood was still running meanwhile" [ $? = 0 ]
wait "$FPID"
frc=$?
flooded=$(sed -n 's/^sent=\([0-9]*\) .*/\1/p' "$TMP/flood.out")
check "every flooded frame was answered: $(tail -1 "$TMP/flood.out")" \
    sh -c "[ $frc = 0 ] && grep -q '^sent=$flooded replies=$flooded malformed=$flooded\$' '$TMP/flood.out'"
check "and counted: nacks.malformed + $flooded" [ "$(nack_count malformed)" = $((malformed_before + ${flooded:-0})) ]
nack_lines=$(grep -c 'ingest: nack' "$TMP/daemon.log")
check "nack log lines are rate-limited ($nack_lines lines in all)" [ "$nack_lines" -lt 1000 ]
# the count of suppressed lines is logged with the first nack of a later second
sleep 1.1
timeout 20 "$ZSEND" "$INGEST" "$TMP/hello.bin" > /dev/null
check "the suppressed ones are summed up" grep -q 'more nacks not logged' "$TMP/daemon.log"

# ---- nothing good was lost, nothing bad was applied --------------------------------
check "the good data is intact: 2031-01 total 6000.5" [ "$(total_of 2031-01)" = 6000.5 ]
check "the agent's data during the flood: 2031-02 total 900" [ "$(total_of 2031-02)" = 900 ]
check "only good samples were applied" \
    [ "$(ctl status --json | jq -r .samples_applied)" = $((applied_before + 2)) ]
check "the daemon is still running" kill -0 "$DPID"
stop_daemon TERM
check "SIGTERM stops it cleanly (exit 0)" [ $? = 0 ]
if grep -q 'error\]' "$TMP/daemon.log"; then
    no "the daemon logged no errors: $(grep 'error\]' "$TMP/daemon.log" | head -3)"
else
    ok "the daemon logged no errors"
fi
finish
