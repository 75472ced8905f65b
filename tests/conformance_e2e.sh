#!/usr/bin/env bash
# tests/conformance_e2e.sh -- runs tests/conformance.py, a client written from
# proto/PROTOCOL.md alone (Python, pyzmq + msgpack from Debian), against a
# daemon on the default config with ipc:// endpoints and a low
# rate_per_connection (so a window of batches meets rate_limited). The client
# prints one ok/FAIL line per check; this script counts them, bounds the run
# and checks the daemon survived it and stops cleanly.
#
#   BIN=build bash tests/conformance_e2e.sh        (part of make e2e)
SUITE=conformance
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3   # Debian's, with python3-zmq and python3-msgpack (.ci/packages.txt)
RATE=200
if ! "$PY" -c 'import zmq, msgpack' 2> /dev/null; then
    no "$PY has zmq and msgpack (apt-get install python3-zmq python3-msgpack)"
    finish; exit 1
fi
make_config "$TMP/c.conf" "rate_per_connection=$RATE"
start_daemon "$TMP/c.conf" || { no "the daemon starts"; finish; exit 1; }

timeout 240 "$PY" tests/conformance.py --ingest "$INGEST" --alerts "$ALERTS" \
    --control "$CONTROL" --registry "$ROOT/daemon/demo/registry.csv" --rate "$RATE" \
    ${ONLY:+--only "$ONLY"} > "$TMP/client.out" 2>&1
rc=$?
cat "$TMP/client.out"
pass=$((pass + $(grep -c '^ok ' "$TMP/client.out")))
fail=$((fail + $(grep -c '^FAIL' "$TMP/client.out")))
check "the client ran to the end within 240 s (exit $rc; 124 = timeout)" [ "$rc" = 0 -o "$rc" = 1 ]
check "the daemon is still running" kill -0 "$DPID"
stop_daemon
check "the daemon stops cleanly (exit 0)" [ "$?" = 0 ]
grep -E '^.{0,40}(error|fatal)' "$TMP/daemon.log" | head -5
finish
