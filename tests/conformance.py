#!/usr/bin/python3
"""tests/conformance.py -- a stranger's client, written from proto/PROTOCOL.md
alone, checks that a running clustermond speaks the protocol the document
describes: ingest (acks, resends, windows, final nacks, versions, malformed
frames, agent conflicts), control (every command of 4.7, its reply body and
its argument checks, the size limit, another version) and alerts (the
two-frame message, per-cluster seq, heartbeats, the Clone pattern), plus the
encoding rules of section 3 a client can observe on every frame it receives.

It uses pyzmq and msgpack for sockets and for encoding requests, and its own
small MessagePack reader for everything the daemon sends, so that it can see
what a general decoder hides (float32 vs float64, duplicate keys, key order,
trailing bytes, nesting depth).

Run by tests/conformance_e2e.sh against a daemon on the default config with a
low rate_per_connection:

    /usr/bin/python3 tests/conformance.py --ingest EP --alerts EP --control EP \
        --registry daemon/demo/registry.csv --rate 200

Prints one `ok   - ...` or `FAIL - ...` line per check and exits 1 if any
failed. Every wait is bounded.
"""
import argparse
import collections
import csv
import math
import random
import struct
import sys
import time

import msgpack
import zmq

TIMEOUT_MS = 5000
VERSION = 2
MAX_TS_MS = 7258118400000

STATUSES = ["ok", "malformed", "version", "unknown_firm", "unknown_metric", "invalid",
            "too_large", "forbidden", "busy", "internal", "rate_limited", "out_of_order",
            "agent_conflict", "partial"]

passed = 0
failed = 0


def ok(name):
    global passed
    passed += 1
    print("ok   - " + name, flush=True)


def no(name, why=""):
    global failed
    failed += 1
    print("FAIL - " + name + (": " + why if why else ""), flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        no(name, why)
    return cond


def note(text):
    print("# " + text, flush=True)


# ---- MessagePack: our own reader for what the daemon sends -------------------------------

class DecodeError(Exception):
    pass


class F32(float):
    pass


class F64(float):
    pass


class Reader:
    """Reads one MessagePack value with a hard end; records the nesting depth,
    every float's format and every integer not in its smallest format."""

    def __init__(self, buf):
        self.b = buf
        self.i = 0
        self.depth = 0
        self.floats = []        # (path, 'f32' | 'f64')
        self.wide_ints = []     # (path, code, value)

    def take(self, n):
        if self.i + n > len(self.b):
            raise DecodeError("truncated at byte %d" % self.i)
        r = self.b[self.i:self.i + n]
        self.i += n
        return r

    def u(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def value(self, depth, path):
        c = self.take(1)[0]
        if c <= 0x7f:
            return c
        if c >= 0xe0:
            return c - 0x100
        if 0x80 <= c <= 0x8f:
            return self.map(c & 0x0f, depth, path)
        if 0x90 <= c <= 0x9f:
            return self.array(c & 0x0f, depth, path)
        if 0xa0 <= c <= 0xbf:
            return self.string(c & 0x1f, path)
        if c == 0xc0:
            return None
        if c == 0xc1:
            raise DecodeError("byte 0xc1 at %s" % path)
        if c == 0xc2:
            return False
        if c == 0xc3:
            return True
        if c in (0xc4, 0xc5, 0xc6):
            return bytes(self.take(self.u({0xc4: ">B", 0xc5: ">H", 0xc6: ">I"}[c])))
        if c in (0xc7, 0xc8, 0xc9) or 0xd4 <= c <= 0xd8:
            raise DecodeError("ext type at %s" % path)
        if c == 0xca:
            self.floats.append((path, "f32"))
            return F32(self.u(">f"))
        if c == 0xcb:
            self.floats.append((path, "f64"))
            return F64(self.u(">d"))
        if 0xcc <= c <= 0xd3:
            fmt = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
                   0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}[c]
            v = self.u(fmt)
            if smallest_int(v) != c:
                self.wide_ints.append((path, hex(c), v))
            return v
        if c in (0xd9, 0xda, 0xdb):
            return self.string(self.u({0xd9: ">B", 0xda: ">H", 0xdb: ">I"}[c]), path)
        if c in (0xdc, 0xdd):
            return self.array(self.u(">H" if c == 0xdc else ">I"), depth, path)
        if c in (0xde, 0xdf):
            return self.map(self.u(">H" if c == 0xde else ">I"), depth, path)
        raise DecodeError("unknown byte 0x%02x" % c)

    def string(self, n, path):
        raw = self.take(n)
        try:
            s = raw.decode("utf-8")  # strict: no overlong forms, no surrogates
        except UnicodeDecodeError:
            raise DecodeError("invalid UTF-8 in a str at %s" % path)
        if "\x00" in s:
            raise DecodeError("NUL in a str at %s" % path)
        return s

    def array(self, n, depth, path):
        self.depth = max(self.depth, depth)
        if n > len(self.b) - self.i:
            raise DecodeError("array header of %d at %s exceeds the frame" % (n, path))
        return [self.value(depth + 1, "%s[%d]" % (path, k)) for k in range(n)]

    def map(self, n, depth, path):
        self.depth = max(self.depth, depth)
        if 2 * n > len(self.b) - self.i:
            raise DecodeError("map header of %d at %s exceeds the frame" % (n, path))
        d = {}
        for _ in range(n):
            k = self.value(depth + 1, path + ".<key>")
            if not isinstance(k, str):
                raise DecodeError("a map key at %s is not a str: %r" % (path, k))
            if k in d:
                raise DecodeError("duplicate key %r at %s" % (k, path))
            d[k] = self.value(depth + 1, path + "." + k)
        return d


def smallest_int(v):
    if 0 <= v <= 0x7f or -32 <= v < 0:
        return None  # a fixint: never an explicit code
    if v > 0:
        return 0xcc if v <= 0xff else 0xcd if v <= 0xffff else 0xce if v <= 0xffffffff else 0xcf
    return 0xd0 if v >= -0x80 else 0xd1 if v >= -0x8000 else 0xd2 if v >= -0x80000000 else 0xd3


# Section 3 as observed on every frame the daemon sends: rule -> [frames checked, violations]
enc = collections.OrderedDict()


def enc_rule(rule, good, example):
    e = enc.setdefault(rule, [0, []])
    e[0] += 1
    if not good:
        e[1].append(example)


def decode(frame, what, depth_exempt=False):
    """Decodes one daemon frame, checking the rules of section 3 on it.
    Returns the map or None."""
    frame = bytes(frame)
    r = Reader(frame)
    try:
        v = r.value(1, what)
        if r.i != len(frame):
            raise DecodeError("%d trailing bytes" % (len(frame) - r.i))
    except DecodeError as e:
        enc_rule("§3: a daemon frame is exactly one well-formed MessagePack value "
                 "(str keys, no duplicates, valid UTF-8 without NUL, no ext, no trailing bytes)",
                 False, "%s: %s: %s" % (what, e, frame[:64].hex()))
        return None
    enc_rule("§3: a daemon frame is exactly one well-formed MessagePack value "
             "(str keys, no duplicates, valid UTF-8 without NUL, no ext, no trailing bytes)",
             True, None)
    try:  # a general decoder must agree
        same = msgpack.unpackb(frame, raw=False, strict_map_key=True) == v
    except Exception as e:  # noqa: BLE001 -- any failure is the finding
        same = False
    enc_rule("§3: pyzmq's msgpack decodes every daemon frame to the same value", same, what)
    if not isinstance(v, dict):
        enc_rule("§1: the frame holds a MessagePack map", False, "%s: %r" % (what, type(v)))
        return None
    enc_rule("§1: the frame holds a MessagePack map", True, None)
    keys = list(v)
    good = (len(keys) >= 2 and keys[0] == "v" and keys[1] == "type" and is_uint(v["v"])
            and v["v"] == VERSION and isinstance(v["type"], str))
    enc_rule("§3: \"v\" (uint, 2) is the first key and \"type\" (str) the second", good,
             "%s: keys %s" % (what, keys[:3]))
    if not depth_exempt:
        enc_rule("§3: nesting depth <= 4 (PROTO_MAX_DEPTH)", r.depth <= 4,
                 "%s: depth %d" % (what, r.depth))
    bad_floats = [p for p, f in r.floats if f != "f64"]
    enc_rule("§3: floats are written as float64 (0xcb)", not bad_floats,
             "%s: %s" % (what, bad_floats[:3]))
    if r.wide_ints:
        enc_rule("§3 (should): integers in the smallest format", False,
                 "%s: %s" % (what, r.wide_ints[:3]))
    else:
        enc_rule("§3 (should): integers in the smallest format", True, None)
    return v


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_uint(v):
    return is_int(v) and v >= 0


# ---- type specs of bodies -----------------------------------------------------------------

def conform(v, spec, path, errs):
    """Checks v against spec: 'str', 'int', 'uint', 'float', 'bool', 'bin', 'any'
    (a trailing ? allows nil), ('list', S), ('mapof', S), ('enum', a, b...),
    ('opt', S) or a dict of required keys (other keys are allowed: 4.7)."""
    if isinstance(spec, str):
        base = spec.rstrip("?")
        if v is None:
            if base == spec:
                errs.append("%s: nil, expected %s" % (path, spec))
            return
        good = {"str": isinstance(v, str), "int": is_int(v), "uint": is_uint(v),
                "float": isinstance(v, float), "bool": isinstance(v, bool),
                "bin": isinstance(v, bytes), "any": True, "map": isinstance(v, dict)}[base]
        if not good:
            errs.append("%s: %r is not %s" % (path, v, spec))
    elif isinstance(spec, tuple):
        kind = spec[0]
        if kind == "opt":
            if v is not None:
                conform(v, spec[1], path, errs)
        elif kind == "enum":
            if v not in spec[1:]:
                errs.append("%s: %r not one of %s" % (path, v, spec[1:]))
        elif kind == "list":
            if not isinstance(v, list):
                errs.append("%s: %r is not an array" % (path, type(v).__name__))
                return
            for k, x in enumerate(v):
                conform(x, spec[1], "%s[%d]" % (path, k), errs)
        elif kind == "mapof":
            if not isinstance(v, dict):
                errs.append("%s: not a map" % path)
                return
            for k, x in v.items():
                conform(x, spec[1], "%s.%s" % (path, k), errs)
    elif isinstance(spec, dict):
        if not isinstance(v, dict):
            errs.append("%s: %s is not a map" % (path, type(v).__name__))
            return
        for k, s in spec.items():
            if k not in v:
                errs.append("%s: key %r missing" % (path, k))
            else:
                conform(v[k], s, path + "." + k, errs)


def check_shape(name, v, spec):
    errs = []
    conform(v, spec, "body", errs)
    return check(name, not errs, "; ".join(errs[:6]))


TALLY = {"firms": "uint", "reporting": "uint", "above_scale": "uint",
         "revenue_milli": "int?", "profit_milli": "int?"}

BODIES = {
    "describe": {
        "protocol": {"min_version": "uint", "max_version": "uint", "max_request_bytes": "uint"},
        "key": ("opt", {"name": "str", "roles": "str"}),
        "timezone": "str",
        "metrics": ("list", {"name": "str", "kind": ("enum", "period", "reading"), "unit": "str?"}),
        "clusters": ("list", {"id": "str", "title": "str", "chains": ("list", "str")}),
        "firms": ("list", {"id": "str", "cluster": "str", "chain": "str?"}),
        "commands": ("list", {"name": "str", "args": ("list", {
            "name": "str", "type": ("enum", "int", "str"), "required": "bool"})}),
    },
    "status": {
        "version": "str", "uptime_ms": "int", "firms": "uint", "clusters": "uint", "rules": "uint",
        "samples_applied": "uint", "batches_ok": "uint", "batches_duplicate": "uint",
        "bad_envelopes": "uint", "nacks": ("mapof", "uint"), "alerts_published": "uint",
        "alerts_firing": "uint", "replay_skipped": "uint",
        "control": {k: "uint" for k in ("requests", "max_request_bytes", "refused_too_large",
                                        "refused_args", "refused_version")},
        "security": dict({"curve": "bool"}, **{k: "uint" for k in (
            "keys", "connections_admitted", "connections_refused", "handshakes_failed",
            "commands_denied", "subscriptions_admitted", "subscriptions_refused")}),
        "wal": dict({"fsync": "str"}, **{k: "uint" for k in (
            "segment", "appends", "bytes_written", "unsynced_bytes", "fsyncs", "fsync_avg_us",
            "fsync_max_us")}),
        "snapshots": {k: "uint" for k in ("written", "failed", "last_segment", "last_bytes")},
        "recovery": dict({"ready_ms": "int"}, **{k: "uint" for k in (
            "snapshot_segment", "wal_records", "wal_damaged", "wal_bytes_skipped",
            "wal_truncated")}),
    },
    "runtime": {
        "pid": "int", "started_ms": "int", "samples_per_s": "float", "loop_lag_ms": "int",
        "agents_connected": "int", "agents_known": "uint",
        "sockets": ("list", {"name": "str", "endpoint": "str", "peers": "int", "accepted": "uint"}),
        "systemd": {"notify": "bool", "watchdog_ms": "uint"}, "log_level": "str",
    },
    "report": {
        "year": "int", "timezone": "str", "revenue_metric": "str", "profit_metric": "str?",
        "above_scale_line_milli": "int",
        "clusters": ("list", dict(TALLY, id="str", title="str",
                                  chains=("list", dict(TALLY, id="str")),
                                  no_chain=TALLY,
                                  tiers=("list", dict(TALLY, id="str")),
                                  designations=("list", dict(TALLY, id="str")))),
        "cities": ("list", dict(TALLY, id="str")), "no_city": TALLY,
    },
    "series": {
        "metric": "str", "unit": "str", "cluster": "str", "chain": "str?", "tier": "str?",
        "designation": "str?", "city": "str?", "firm": "str?",
        "by": ("enum", "month", "quarter", "year"),
        "range": "str", "yoy": "bool", "timezone": "str", "sum_milli": "int?",
        "points": ("list", {"period": "str", "value_milli": "int?", "reporting": "uint",
                            "members": "uint", "coverage_pct": "float?"}),
    },
    "history": {
        "timezone": "str", "matched": "uint", "retention_ms": "int",
        "entries": ("list", {"id": "int", "ts_ms": "int",
                             "kind": ("enum", "alert", "ack", "silence_add", "silence_rm"),
                             "alert_id": "str?", "rule": "str?", "cluster": "str?",
                             "firm": "str?", "state": "str?", "severity": "str?",
                             "seq": "uint?", "n": "uint?", "since_ms": "int?", "summary": "str?",
                             "who": "str?", "note": "str?", "silence_id": "uint?",
                             "until_ms": "int?"}),
    },
    "totals": {
        "metric": "str", "unit": "str", "period": "str",
        "clusters": ("list", {"id": "str", "title": "str", "firms": "uint", "reporting": "uint",
                              "total_milli": "int?",
                              "chains": ("list", {"id": "str", "firms": "uint",
                                                  "reporting": "uint", "total_milli": "int?"})}),
    },
    "clusters": {
        "year": "int", "timezone": "str", "silent_days": "int",
        "clusters": ("list", dict(TALLY, id="str", title="str", chains=("list", "str"),
                                  silent="uint", alerts_firing="uint")),
    },
    "cluster": {
        "id": "str", "title": "str", "timezone": "str", "revenue_metric": "str",
        "year": "int", "through": "int", "above_scale_line_milli": "int",
        "units": ("mapof", "str"),
        "targets": ("list", {"rule": "str", "metric": "str", "chain": "str?", "year": "int",
                             "target_pct": "float", "tolerance_pp": "float",
                             "growth_pct": "float?", "coverage": "str?", "firing": "uint"}),
        "rows": ("list", {"kind": ("enum", "cluster", "chain", "tier"), "id": "str",
                          "firms": "uint", "reporting": "uint", "above_scale": "uint",
                          "metrics": ("mapof", {"ytd_milli": "int?", "ytd_firms": "uint",
                                                "last_year_milli": "int?",
                                                "last_year_firms": "uint",
                                                "growth_pct": "float?"})}),
    },
    "firms": {
        "timezone": "str", "as_of_ms": "int", "silent_days": "int", "cluster": "str?",
        "firms": ("list", {"id": "str", "name": "str", "cluster": "str", "chain": "str?",
                           "tier": "str", "status": ("enum", "active", "inactive", "left"),
                           "last_data": "str?", "last_data_ms": "int?", "days_since": "int?",
                           "silent": "bool"}),
    },
    "alerts": {"seqs": ("mapof", "uint"), "alerts": ("list", ("opt", "bin")),
               "acks": ("list", {"alert_id": "str", "who": "str", "at_ms": "int", "note": "str",
                                 "since_ms": "int"})},
    "silence_add": {"id": "uint", "until_ms": "int"},
    "silence_list": ("list", {"id": "uint", "rule": "str", "cluster": "str", "firm": "str?",
                              "created_ms": "int", "until_ms": "int", "reason": "str"}),
    "silence_rm": {"id": "int"},
    "reload": {"firms": "uint", "rules": "uint", "reloads": "uint"},
}

# 4.7: every command, its arguments (name, type, required)
COMMANDS = collections.OrderedDict([
    ("ping", []), ("describe", []), ("status", []), ("runtime", []),
    ("report", [("year", "int", False)]),
    ("totals", [("metric", "str", True), ("period", "str", True)]),
    ("clusters", [("year", "int", False), ("days", "int", False)]),
    ("cluster", [("id", "str", True), ("through", "str", False)]),
    ("firms", [("cluster", "str", False), ("silent", "int", False), ("days", "int", False),
               ("as_of", "str", False), ("all", "int", False)]),
    ("alerts", []),
    ("silence_add", [("rule", "str", True), ("cluster", "str", True), ("for", "str", True),
                     ("reason", "str", True), ("firm", "str", False)]),
    ("silence_list", []), ("silence_rm", [("id", "int", True)]), ("reload", []),
    ("series", [("metric", "str", True), ("cluster", "str", False), ("firm", "str", False),
                ("chain", "str", False), ("tier", "str", False), ("designation", "str", False),
                ("city", "str", False), ("from", "str", True), ("to", "str", True),
                ("by", "str", False), ("yoy", "int", False)]),
    ("ranking", [("metric", "str", True), ("cluster", "str", False), ("firm", "str", False),
                 ("chain", "str", False), ("tier", "str", False), ("designation", "str", False),
                 ("city", "str", False), ("from", "str", True), ("to", "str", True),
                 ("by", "str", False), ("target", "str", False), ("limit", "int", False)]),
    ("history", [("since", "str", False), ("until", "str", False), ("cluster", "str", False),
                 ("rule", "str", False), ("firm", "str", False), ("alert", "str", False),
                 ("limit", "int", False)]),
    ("ack", [("id", "str", True), ("note", "str", True)]),
    ("seed_snapshot", []), ("seed_files", []),
    ("seed_read", [("name", "str", True), ("offset", "int", True)]),
])


# ---- sockets ------------------------------------------------------------------------------

ctx = zmq.Context()


def sock(kind, ep):
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    return s


def recv(s, timeout=TIMEOUT_MS):
    if s.poll(timeout, zmq.POLLIN):
        return s.recv_multipart()
    return None


def P(x):
    return msgpack.packb(x, use_bin_type=True)


class Raw(bytes):
    """Bytes written into a hand-built message verbatim."""


def enc_any(x):
    return bytes(x) if isinstance(x, Raw) else P(x)


def rawmap(pairs):
    n = len(pairs)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return Raw(head + b"".join(enc_any(k) + enc_any(v) for k, v in pairs))


def rawarr(items, claimed=None):
    n = len(items) if claimed is None else claimed
    head = bytes([0x90 | n]) if n < 16 else (b"\xdc" + struct.pack(">H", n) if n < 65536
                                            else b"\xdd" + struct.pack(">I", n))
    return Raw(head + b"".join(enc_any(x) for x in items))


# ---- control client -----------------------------------------------------------------------

CTL_KEYS = ["v", "type", "ok", "reason", "max_version", "body"]


def ctl_frame(cmd, args=None, v=VERSION, with_args=True):
    d = {"v": v, "type": "ctl", "cmd": cmd}
    if with_args:
        d["args"] = args if args is not None else {}
    return P(d)


def ctl_raw(frame, what, kind=zmq.DEALER, timeout=TIMEOUT_MS):
    """Sends one request on a fresh socket; returns (reply map, reply bytes) or
    (None, None) on timeout. Checks the ctl_reply envelope (4.5)."""
    s = sock(kind, CONTROL)
    try:
        s.send(frame)
        fr = recv(s, timeout)
    finally:
        s.close()
    if fr is None:
        return None, None
    enc_rule("§2: a ctl_reply is one frame on a DEALER", len(fr) == 1, "%s: %d frames" % (what, len(fr)))
    rep = decode(fr[-1], "ctl_reply(%s)" % what, depth_exempt=True)
    if rep is None:
        return None, fr[-1]
    good = (list(rep) == CTL_KEYS and rep["type"] == "ctl_reply" and isinstance(rep["ok"], bool)
            and isinstance(rep["reason"], str) and len(rep["reason"].encode()) <= 1024
            and is_uint(rep["max_version"]) and rep["max_version"] == VERSION
            and (rep["reason"] == "" if rep["ok"] else (rep["reason"] != "" and rep["body"] is None)))
    enc_rule("§4.5: a ctl_reply has exactly v, type, ok (bool), reason (str: empty on success), "
             "max_version (2), body (nil on failure), in this order", good,
             "%s: %r" % (what, {k: rep.get(k) for k in rep if k != "body"}))
    return rep, fr[-1]


def ctl(cmd, args=None, **kw):
    rep, _ = ctl_raw(ctl_frame(cmd, args, **kw), cmd)
    return rep


def body(cmd, args=None):
    rep = ctl(cmd, args)
    if rep is None or not rep["ok"]:
        no("%s %r answers ok" % (cmd, args), "no reply" if rep is None else rep["reason"])
        return None
    return rep["body"]


def status():
    return body("status") or {}


def totals(metric, period):
    b = body("totals", {"metric": metric, "period": period})
    return {c["id"]: c["total_milli"] for c in (b or {}).get("clusters", [])}


# ---- ingest client ------------------------------------------------------------------------

ACK_KEYS = {"v", "type", "seq", "status", "accepted", "expected", "max_version", "reason"}
ACK_OPTIONAL = {"dry_run", "refused"}  # only to a "partial" batch or a "check" (4.2)
SAMPLE_STATUSES = {"unknown_firm", "unknown_metric", "invalid", "forbidden"}


def batch(seq, epoch, agent, samples, v=VERSION):
    return P({"v": v, "type": "batch", "seq": seq, "epoch": epoch, "agent": agent,
              "samples": samples})


def check_ack(fr, what, nsamples=None):
    """Decodes and type-checks an ack per 4.2; returns it (or None)."""
    ack = decode(fr, "ack(%s)" % what)
    if ack is None:
        return None
    errs = []
    if not (ACK_KEYS <= set(ack) <= ACK_KEYS | ACK_OPTIONAL):
        errs.append("keys %s" % sorted(ack))
    if "dry_run" in ack and ack["dry_run"] is not True:
        errs.append("dry_run %r (written only when true)" % ack["dry_run"])
    if ack.get("status") == "partial" and "refused" not in ack:
        errs.append("partial without refused")
    for e in ack.get("refused", []) if isinstance(ack.get("refused", []), list) else [None]:
        if not (isinstance(e, list) and len(e) == 3 and is_uint(e[0]) and e[0] < 10000 and
                e[1] in SAMPLE_STATUSES and isinstance(e[2], str) and
                e[2].startswith("sample %s: " % e[0])):
            errs.append("refused entry %r" % (e,))
            break
    if ack.get("type") != "ack":
        errs.append("type %r" % ack.get("type"))
    if not is_uint(ack.get("seq")):
        errs.append("seq %r" % ack.get("seq"))
    if ack.get("status") not in STATUSES:
        errs.append("status %r" % ack.get("status"))
    a = ack.get("accepted")
    if not (is_uint(a) and a <= 10000):
        errs.append("accepted %r" % a)
    if not is_uint(ack.get("expected")):
        errs.append("expected %r" % ack.get("expected"))
    if not (is_uint(ack.get("max_version")) and ack["max_version"] <= 255):
        errs.append("max_version %r" % ack.get("max_version"))
    elif ack["max_version"] != VERSION:
        errs.append("max_version %r, this build speaks 2" % ack["max_version"])
    r = ack.get("reason")
    if not (isinstance(r, str) and len(r.encode()) <= 1024):
        errs.append("reason %r" % r)
    elif ack.get("status") == "ok" and r != "":
        errs.append("reason %r on ok" % r)
    elif ack.get("status") != "ok" and (r == "" or not r.isascii() or len(r) > 255):
        errs.append("nack reason %r is not 1..255 bytes of ASCII (§5)" % r)
    if ack.get("status") not in ("ok", "partial") and a != 0:
        errs.append("accepted %r on a nack" % a)
    enc_rule("§4.2: every ack has exactly the 8 keys with their types (uint seq/accepted/expected/"
             "max_version 2, status a §5 name, reason empty on ok, ASCII <= 255 bytes on a nack, "
             "accepted 0 on a nack)", not errs, "%s: %s" % (what, "; ".join(errs)))
    return ack


def want(name, ack, **fields):
    """One check: the ack exists and has these field values (a callable tests one)."""
    if ack is None:
        return no(name, "no ack within %d ms" % TIMEOUT_MS)
    bad = []
    for k, v in fields.items():
        got = ack.get(k)
        if callable(v):
            if not v(got):
                bad.append("%s=%r" % (k, got))
        elif got != v or type(got) is not type(v):
            bad.append("%s=%r (want %r)" % (k, got, v))
    return check(name, not bad, ", ".join(bad) + "; ack %r" % ack)


class Stream:
    """One sender stream (agent id, epoch) on its own DEALER connection."""

    def __init__(self, agent, epoch=None, kind=zmq.DEALER):
        self.agent = agent
        self.epoch = epoch if epoch is not None else random.getrandbits(53) | 1
        self.s = sock(kind, INGEST)

    def frame(self, seq, samples):
        return batch(seq, self.epoch, self.agent, samples)

    def send(self, frame):
        self.s.send(frame)

    def ack(self, what, timeout=TIMEOUT_MS):
        fr = recv(self.s, timeout)
        if fr is None:
            return None
        enc_rule("§2: an ack to a one-frame batch on a DEALER is one frame", len(fr) == 1,
                 "%s: %d frames" % (what, len(fr)))
        return check_ack(fr[-1], what)

    def rt(self, frame, what):
        self.send(frame)
        return self.ack(what)

    def close(self):
        self.s.close()


def now_ms():
    return int(time.time() * 1000)


# ---- 8. test vectors ----------------------------------------------------------------------

VEC = {
    "8.1": ("86a17602a474797065a56261746368a37365712aa565706f636809a56167656e"
            "74a76167656e742d37a773616d706c65739295a461636d65a7726576656e7565"
            "cb40934a0000000000cf0000018bcfe56800a7323032332d313194a461636d65"
            "a86370755f6c6f6164cb3fe8000000000000cf0000018bcfe5687b", 123),
    "8.2": ("88a17602a474797065a361636ba37365712aa6737461747573a26f6ba8616363"
            "657074656402a865787065637465642bab6d61785f76657273696f6e02a67265"
            "61736f6ea0", 69),
    "8.3": ("88a17602a474797065a361636ba37365712ba6737461747573ac756e6b6e6f77"
            "6e5f6669726da8616363657074656400a865787065637465642cab6d61785f76"
            "657273696f6e02a6726561736f6ed92573616d706c6520313a206669726d3a20"
            "756e6b6e6f776e206669726d2022676c6f62657822", 117),
    "8.4": ("de0010a17602a474797065a5616c657274a26964ad7265762d64726f703a6163"
            "6d65a472756c65a87265762d64726f70a87365766572697479a77761726e696e"
            "67a57374617465a6666972696e67a7636c7573746572a465617374a563686169"
            "6ec0a46669726da461636d65a66d6574726963a7726576656e7565a86f627365"
            "72766564cb40934a0000000000a86578706563746564cb409f400000000000a7"
            "73756d6d617279d92161636d6520726576656e756520313233342e3520697320"
            "62656c6f772032303030a573696e6365cf0000018bcfe56800a27473cf000001"
            "8bcfe65260a373657107", 234),
    "8.5": ("84a17602a474797065a363746ca3636d64a67265706f7274a46172677381a479"
            "656172cd07e7", 38),
    "8.6": ("86a17602a474797065a963746c5f7265706c79a26f6bc2a6726561736f6ed933"
            "6669726d3a20756e6b6e6f776e20617267756d656e7420666f7220277265706f"
            "7274272028616c6c6f7765643a207965617229ab6d61785f76657273696f6e02"
            "a4626f6479c0", 102),
}

VEC_VALUES = {
    "8.1": {"v": 2, "type": "batch", "seq": 42, "epoch": 9, "agent": "agent-7",
            "samples": [["acme", "revenue", 1234.5, 1700000000000, "2023-11"],
                        ["acme", "cpu_load", 0.75, 1700000000123]]},
    "8.2": {"v": 2, "type": "ack", "seq": 42, "status": "ok", "accepted": 2, "expected": 43,
            "max_version": 2, "reason": ""},
    "8.3": {"v": 2, "type": "ack", "seq": 43, "status": "unknown_firm", "accepted": 0,
            "expected": 44, "max_version": 2, "reason": "sample 1: firm: unknown firm \"globex\""},
    "8.4": {"v": 2, "type": "alert", "id": "rev-drop:acme", "rule": "rev-drop",
            "severity": "warning", "state": "firing", "cluster": "east", "chain": None,
            "firm": "acme", "metric": "revenue", "observed": 1234.5, "expected": 2000.0,
            "summary": "acme revenue 1234.5 is below 2000", "since": 1700000000000,
            "ts": 1700000060000, "seq": 7},
    "8.5": {"v": 2, "type": "ctl", "cmd": "report", "args": {"year": 2023}},
    "8.6": {"v": 2, "type": "ctl_reply", "ok": False,
            "reason": "firm: unknown argument for 'report' (allowed: year)", "max_version": 2,
            "body": None},
}


def test_vectors():
    for k, (hx, n) in VEC.items():
        b = bytes.fromhex(hx)
        check("§8.%s: the vector is %d bytes as stated" % (k[2:], n), len(b) == n, "%d" % len(b))
        try:
            r = Reader(b)
            v = r.value(1, k)
            good = r.i == len(b) and v == VEC_VALUES[k] and list(v) == list(VEC_VALUES[k])
        except DecodeError as e:
            good, v = False, str(e)
        check("§8.%s: the vector decodes to the JSON-like text given" % k[2:], good, repr(v))
        check("§8.%s: msgpack encodes the text to exactly the vector" % k[2:],
              P(VEC_VALUES[k]) == b, P(VEC_VALUES[k]).hex())
    # The daemon: 8.5 is a valid request; 8.6 is its exact answer to 8.5 plus firm=acme.
    rep, _ = ctl_raw(bytes.fromhex(VEC["8.5"][0]), "8.5")
    check("§8.5: the daemon answers the vector request ok with a report body",
          rep is not None and rep["ok"] and isinstance(rep["body"], dict)
          and rep["body"].get("year") == 2023, repr(rep)[:200])
    _, raw = ctl_raw(P({"v": 2, "type": "ctl", "cmd": "report",
                        "args": {"year": 2023, "firm": "acme"}}), "8.6")
    check("§8.6: the daemon's reply to report with firm=acme is byte for byte the vector",
          raw == bytes.fromhex(VEC["8.6"][0]), raw.hex() if raw else "no reply")
    # 8.1 as sent: a fresh epoch must start at 1 (§2), so seq 42 is out of order.
    s = Stream("conf-vec81", epoch=9)
    a = s.rt(bytes.fromhex(VEC["8.1"][0]), "8.1")
    want("§2/§8.1: the vector batch (seq 42 of an unseen epoch) is out_of_order, expected 1",
         a, seq=42, status="out_of_order", expected=1, accepted=0)
    s.close()


# ---- control ------------------------------------------------------------------------------

def test_control(reg):
    rep, raw = ctl_raw(P({"v": 2, "type": "ctl", "cmd": "ping", "args": {}}), "ping")
    want_raw = P({"v": 2, "type": "ctl_reply", "ok": True, "reason": "", "max_version": 2,
                  "body": "pong"})
    check("§4.7 ping: the reply is exactly the one shown", raw == want_raw,
          raw.hex() if raw else "no reply")
    rep = ctl("ping", with_args=False)
    check("§4.4: args absent = no args: ping without args is pong",
          rep is not None and rep["ok"] and rep["body"] == "pong", repr(rep))
    rep, _ = ctl_raw(ctl_frame("ping"), "ping-req", kind=zmq.REQ)
    check("§2: a REQ control client gets its reply", rep is not None and rep["body"] == "pong",
          repr(rep))

    # describe, checked against 4.7 and the daemon's own config and registry
    d = body("describe")
    if d is not None:
        check_shape("§4.7 describe: every body key with its type", d, BODIES["describe"])
        check("§4.7 describe: protocol is min 2, max 2, max_request_bytes 65536 (§6, §7)",
              d.get("protocol") == {"min_version": 2, "max_version": 2, "max_request_bytes": 65536},
              repr(d.get("protocol")))
        check("§4.7 describe: key is nil without CURVE", d.get("key", 0) is None, repr(d.get("key")))
        # 4.7 fixes no order of commands or arguments: compare sets
        got = {c["name"]: {(a["name"], a["type"], a["required"]) for a in c["args"]}
               for c in d.get("commands", [])}
        check("§4.7 describe: commands and their args are exactly those of 4.7",
              got == {k: set(v) for k, v in COMMANDS.items()}, "daemon %r" % got)
        check("§4.7 describe: firms are the registry's (%d) with their clusters" % len(reg),
              {f["id"]: f["cluster"] for f in d.get("firms", [])}
              == {k: v["cluster"] for k, v in reg.items()}, "")
        check("§4.7 describe: metrics revenue, profit, energy (period), cod (reading)",
              {m["name"]: m["kind"] for m in d.get("metrics", [])}
              == {"revenue": "period", "profit": "period", "energy": "period", "cod": "reading"},
              repr(d.get("metrics")))
        check("§4.7 describe: clusters energy-env and new-energy",
              sorted(c["id"] for c in d.get("clusters", [])) == ["energy-env", "new-energy"],
              repr(d.get("clusters")))

    st = status()
    if st:
        check_shape("§4.7 status: every body key with its type", st, BODIES["status"])
        check("§4.7 status: nacks has every §5 status but ok",
              set(st.get("nacks", {})) == set(STATUSES) - {"ok"}, repr(st.get("nacks")))
        check("§4.7 status: firms, clusters, rules are the configured counts (%d, 2, 6)" % len(reg),
              (st.get("firms"), st.get("clusters"), st.get("rules")) == (len(reg), 2, 6),
              repr((st.get("firms"), st.get("clusters"), st.get("rules"))))
        check("§4.7 status: control.max_request_bytes is 65536",
              st.get("control", {}).get("max_request_bytes") == 65536, repr(st.get("control")))
    rt = body("runtime")
    if rt is not None:
        check_shape("§4.7 runtime: every body key with its type", rt, BODIES["runtime"])
        socks = rt.get("sockets", [])
        names = [x.get("name") for x in socks]
        check("§4.7 runtime: sockets are ingest, alerts, control (then http)",
              names[:3] == ["ingest", "alerts", "control"] and set(names[3:]) <= {"http"},
              repr(names))
        check("§4.7 runtime: the three ZeroMQ sockets have disconnects (uint) and their endpoints",
              all(is_uint(x.get("disconnects")) for x in socks[:3])
              and [x.get("endpoint") for x in socks[:3]] == [INGEST, ALERTS, CONTROL],
              repr(socks))
    rp = body("report", {"year": 2031})
    if rp is not None:
        check_shape("§4.7 report: every body key with its type", rp, BODIES["report"])
        check("§4.7 report: year as asked, both clusters with their firm counts",
              rp.get("year") == 2031 and sum(c.get("firms", 0) for c in rp.get("clusters", []))
              == len(reg), repr(rp)[:300])
    tt = body("totals", {"metric": "revenue", "period": "2023-Q2"})
    if tt is not None:
        check_shape("§4.7 totals: every body key with its type", tt, BODIES["totals"])
        check("§4.7 totals: metric, unit and period as asked",
              (tt.get("metric"), tt.get("unit"), tt.get("period")) == ("revenue", "yuan", "2023-Q2"),
              repr(tt)[:200])
    cs = body("clusters", {"year": 2031, "days": 30})
    if cs is not None:
        check_shape("§4.7 clusters: every body key with its type", cs, BODIES["clusters"])
        check("§4.7 clusters: year and silent_days as asked",
              (cs.get("year"), cs.get("silent_days")) == (2031, 30), repr(cs)[:200])
    cl = body("cluster", {"id": "new-energy", "through": "2022-06"})
    if cl is not None:
        check_shape("§4.7 cluster: every body key with its type", cl, BODIES["cluster"])
        check("§4.7 cluster: id, year 2022 and through 6 as asked",
              (cl.get("id"), cl.get("year"), cl.get("through")) == ("new-energy", 2022, 6),
              repr(cl)[:200])
        tg = cl.get("targets", [])
        check("§4.7 cluster: targets has the growth rule ne-revenue-growth (15 %, 2 pp)",
              len(tg) == 1 and tg[0].get("rule") == "ne-revenue-growth"
              and tg[0].get("target_pct") == 15.0 and tg[0].get("tolerance_pp") == 2.0, repr(tg))
        check("§4.7 cluster: the first row is the cluster",
              bool(cl.get("rows")) and cl["rows"][0].get("kind") == "cluster", repr(cl.get("rows"))[:200])
    fm = body("firms", {"cluster": "energy-env", "silent": 0, "days": 45, "as_of": "2031-06-01"})
    if fm is not None:
        check_shape("§4.7 firms: every body key with its type", fm, BODIES["firms"])
        n_ee = sum(1 for f in reg.values() if f["cluster"] == "energy-env")
        check("§4.7 firms: cluster as asked, its %d firms" % n_ee,
              fm.get("cluster") == "energy-env" and len(fm.get("firms", [])) == n_ee,
              "%r, %d firms" % (fm.get("cluster"), len(fm.get("firms", []))))
    al = body("alerts")
    if al is not None:
        check_shape("§4.7 alerts: every body key with its type", al, BODIES["alerts"])
        check("§4.7 alerts: seqs has every configured cluster",
              set(al.get("seqs", {})) == {"energy-env", "new-energy"}, repr(al.get("seqs")))

    # silences: on ee-002 only, so the cod-limit alert of ee-001 below still fires
    t0 = now_ms()
    sa = body("silence_add", {"rule": "cod-limit", "cluster": "energy-env", "for": "2h",
                              "reason": "conformance", "firm": "ee-002"})
    if sa is not None:
        check_shape("§4.7 silence_add: every body key with its type", sa, BODIES["silence_add"])
        check("§4.7 silence_add: until_ms is now + 2h",
              abs(sa.get("until_ms", 0) - (t0 + 7200000)) < 60000, repr(sa))
        sl = body("silence_list")
        if sl is not None:
            check_shape("§4.7 silence_list: every body key with its type", sl,
                        BODIES["silence_list"])
            mine = [x for x in sl if x.get("id") == sa.get("id")]
            check("§4.7 silence_list: lists the silence as added",
                  len(mine) == 1 and (mine[0]["rule"], mine[0]["cluster"], mine[0]["firm"],
                                      mine[0]["reason"], mine[0]["until_ms"])
                  == ("cod-limit", "energy-env", "ee-002", "conformance", sa["until_ms"]), repr(sl))
        sr = body("silence_rm", {"id": sa.get("id")})
        if sr is not None:
            check_shape("§4.7 silence_rm: every body key with its type", sr, BODIES["silence_rm"])
            check("§4.7 silence_rm: body is the id", sr == {"id": sa.get("id")}, repr(sr))
        sl = body("silence_list") or []
        check("§4.7 silence_rm: the silence is gone", all(x.get("id") != sa.get("id") for x in sl),
              repr(sl))
        r = ctl("silence_rm", {"id": sa.get("id")})
        check("§4.7 silence_rm: an unknown id: 'id: no silence N'",
              r is not None and not r["ok"] and r["reason"] == "id: no silence %d" % sa.get("id"),
              repr(r))
    se = body("series", {"metric": "revenue", "cluster": "energy-env", "from": "2031",
                         "to": "2031", "by": "quarter"})
    if se is not None:
        check_shape("§4.7 series: every body key with its type", se, BODIES["series"])
        check("§4.7 series: a point per quarter", len(se.get("points", [])) == 4, repr(se))
    hi = body("history", {"cluster": "energy-env"})
    if hi is not None:
        check_shape("§4.7 history: every body key with its type", hi, BODIES["history"])
        check("§4.7 history: the silence's add and removal, by key",
              [e["kind"] for e in hi.get("entries", []) if e["kind"].startswith("silence")][-2:]
              == ["silence_add", "silence_rm"], repr(hi.get("entries", [])[-3:]))
    rl = body("reload")
    if rl is not None:
        check_shape("§4.7 reload: every body key with its type", rl, BODIES["reload"])
        check("§4.7 reload: firms %d, rules 6, reloads 1" % len(reg),
              (rl.get("firms"), rl.get("rules"), rl.get("reloads")) == (len(reg), 6, 1), repr(rl))

    # argument checks (4.7): unknown, wrong type, missing/nil, each counted
    before = status().get("control", {}).get("refused_args", 0)
    sent = 0
    for cmd, args in COMMANDS.items():
        r = ctl(cmd, {"zz": 1})
        sent += 1
        head = "zz: unknown argument for '%s' " % cmd
        got = r["reason"] if r is not None and not r["ok"] else ""
        if args:  # the order of the allowed list is not specified: compare sets
            good = (got.startswith(head + "(allowed: ") and got.endswith(")") and
                    set(got[len(head + "(allowed: "):-1].split(", ")) == {a[0] for a in args})
        else:
            good = got == head + "(it takes none)"
        check("§4.7 %s: an unknown argument is refused naming it and the allowed ones" % cmd,
              good, repr(r and r["reason"]))
        for name, typ, req in args:
            bad = "x" if typ == "int" else 7
            full = {a[0]: (1 if a[1] == "int" else "x") for a in args if a[2]}
            full[name] = bad
            r = ctl(cmd, full)
            sent += 1
            msg = ("%s: expected an integer, got a string" % name if typ == "int"
                   else "%s: expected a string, got an integer" % name)
            check("§4.7 %s: %s of the wrong type is refused" % (cmd, name),
                  r is not None and not r["ok"] and r["reason"] == msg, repr(r and r["reason"]))
            if req:
                for how, val in (("absent", None), ("nil", "nil")):
                    a2 = {a[0]: (1 if a[1] == "int" else "x") for a in args if a[2] and a[0] != name}
                    if how == "nil":
                        a2[name] = None
                    r = ctl(cmd, a2)
                    sent += 1
                    msg = "%s: required by '%s' (%s)" % (name, cmd,
                                                       "an integer" if typ == "int" else "a string")
                    check("§4.7 %s: %s %s is refused as required" % (cmd, name, how),
                          r is not None and not r["ok"] and r["reason"] == msg,
                          "%r, want %r" % (r and r["reason"], msg))
    after = status().get("control", {}).get("refused_args", 0)
    check("§4.7: each argument refusal is counted in control.refused_args (%d)" % sent,
          after - before == sent, "delta %d" % (after - before))

    # value checks the commands make, reason "NAME: ..."
    for cmd, args, reason in (
            ("report", {"year": 1969}, "year: out of range"),
            ("totals", {"metric": "cod", "period": "2023"}, "metric: expected the name of a period metric"),
            ("totals", {"metric": "nope", "period": "2023"}, "metric: expected the name of a period metric"),
            ("totals", {"metric": "revenue", "period": "2023-13"}, "period: expected YYYY, YYYY-Qn or YYYY-MM, or a range P..P (2024-01..2024-06)"),
            ("silence_add", {"rule": "nope", "cluster": "energy-env", "for": "2h", "reason": "x"},
             "rule: unknown rule 'nope'"),
            ("clusters", {"year": 2200}, "year: "), ("clusters", {"days": 0}, "days: "),
            ("cluster", {"id": "nope"}, "id: "), ("cluster", {"id": "energy-env", "through": "2023"},
                                                  "through: "),
            ("firms", {"as_of": "2023-02-30"}, "as_of: "), ("firms", {"days": 36501}, "days: "),
            ("silence_add", {"rule": "cod-limit", "cluster": "energy-env", "for": "2h", "reason": ""},
             "reason: "),
            ("silence_add", {"rule": "cod-limit", "cluster": "energy-env", "for": "2x", "reason": "r"},
             "for: ")):
        r = ctl(cmd, args)
        exact = not reason.endswith(": ")
        got = r["reason"] if r else None
        check("§4.7 %s %r: refused, reason %s%r" % (cmd, args, "" if exact else "starting ", reason),
              r is not None and not r["ok"] and (got == reason if exact else got.startswith(reason)),
              repr(got))
    r = ctl("cluster", {"id": "nope"})
    check("§4.7 cluster: an unknown id's reason lists the clusters",
          r is not None and "energy-env" in r["reason"] and "new-energy" in r["reason"],
          repr(r and r["reason"]))
    r = ctl("frobnicate")
    known = None
    if r is not None and r["reason"].startswith("unknown command 'frobnicate' (known: "):
        known = r["reason"][len("unknown command 'frobnicate' (known: "):].rstrip(")").split(", ")
    check("§4.7: an unknown command is refused listing every known command",
          known is not None and set(known) == set(COMMANDS), repr(r and r["reason"]))

    # size (§2 Control): 65536 bytes is a request, 65537 is refused with a reply
    before = status().get("control", {})
    def padded(n):
        base = {"v": 2, "type": "ctl", "cmd": "ping", "args": {}, "pad": ""}
        k = n - len(P(base))
        for _ in range(3):  # the str header grows with the length
            f = P(dict(base, pad="x" * k))
            k += n - len(f)
        f = P(dict(base, pad="x" * k))
        assert len(f) == n, (len(f), n)
        return f
    rep, _ = ctl_raw(padded(65536), "64KiB")
    check("§2 Control: a request of exactly 65536 bytes (an unknown key padding it) is served",
          rep is not None and rep["ok"] and rep["body"] == "pong", repr(rep and rep["reason"]))
    n_big = 0
    for n in (65537, 70000, 1000000):
        rep, _ = ctl_raw(padded(n), "%d bytes" % n)
        n_big += 1
        msg = ("too large: a request of %d bytes exceeds the control socket's limit of 65536 bytes" % n)
        check("§2 Control: a request of %d bytes is answered ok false, %r" % (n, msg[:30] + "..."),
              rep is not None and not rep["ok"] and rep["reason"] == msg,
              repr(rep and rep["reason"]))
    rep, _ = ctl_raw(padded(1100000), "1.1MB", timeout=1500)
    check("§2 Control: a frame over 1 MiB is dropped unanswered", rep is None, repr(rep))
    check("§2 Control: the daemon still serves after that",
          (ctl("ping") or {}).get("body") == "pong", "")
    after = status().get("control", {})
    check("§2 Control: control.refused_too_large counts the %d refusals" % n_big,
          after.get("refused_too_large", 0) - before.get("refused_too_large", 0) == n_big,
          "%r -> %r" % (before.get("refused_too_large"), after.get("refused_too_large")))

    # another version (4.5, §6)
    before = status().get("control", {}).get("refused_version", 0)
    for v in (3, 1, 255):
        rep, _ = ctl_raw(P({"v": v, "type": "ctl", "cmd": "ping", "args": {}}), "v%d" % v)
        check("§4.5: a ctl of version %d: ok false, reason 'version: ...', max_version 2, body nil" % v,
              rep is not None and rep["ok"] is False and rep["reason"].startswith("version: ")
              and rep["max_version"] == 2 and rep["body"] is None, repr(rep))
    rep, _ = ctl_raw(P({"v": 3, "type": 17, "cmd": [1, 2], "zz": {"a": [[[[1]]]]}}), "v3-junk")
    check("§3/§6: v is checked before anything else: a version-3 ctl with junk after it is "
          "'version: ...'", rep is not None and rep["reason"].startswith("version: "), repr(rep))
    after = status().get("control", {}).get("refused_version", 0)
    check("§4.5: refusals of a version are counted in control.refused_version (4)",
          after - before == 4, "delta %d" % (after - before))

    # requests that do not decode get ok false and the decoder's reason
    for what, frame, part in (
            ("not MessagePack", b"\xc1", ""),
            ("an empty frame", b"", ""),
            ("an array", P([2, "ctl"]), ""),
            ("type batch", P({"v": 2, "type": "batch", "cmd": "ping"}), ""),
            ("type before v", P({"type": "ctl", "v": 2, "cmd": "ping"}), ""),
            ("cmd missing", P({"v": 2, "type": "ctl", "args": {}}), 'missing key "cmd"'),
            ("trailing bytes", P({"v": 2, "type": "ctl", "cmd": "ping"}) + b"\x00", "trailing bytes"),
            ("cmd twice", rawmap([("v", 2), ("type", "ctl"), ("cmd", "ping"), ("cmd", "ping")]), ""),
            ("a float argument", P({"v": 2, "type": "ctl", "cmd": "report", "args": {"year": 2023.0}}), ""),
            ("an array argument", P({"v": 2, "type": "ctl", "cmd": "report", "args": {"year": [1]}}), ""),
            ("args an array", P({"v": 2, "type": "ctl", "cmd": "ping", "args": []}), ""),
            ("17 arguments", P({"v": 2, "type": "ctl", "cmd": "ping",
                                "args": {"a%d" % i: 1 for i in range(17)}}), ""),
            ("a 65-byte cmd", P({"v": 2, "type": "ctl", "cmd": "p" * 65}), ""),
            ("a bin cmd", rawmap([("v", 2), ("type", "ctl"), ("cmd", Raw(b"\xc4\x04ping"))]), ""),
            ("invalid UTF-8 in cmd", rawmap([("v", 2), ("type", "ctl"), ("cmd", Raw(b"\xa2\xc0\xaf"))]), ""),
            ("depth 5 in an unknown key", P({"v": 2, "type": "ctl", "cmd": "ping", "zz": [[[[1]]]]}), ""),
            ("an argument over int64", rawmap([("v", 2), ("type", "ctl"), ("cmd", "report"),
                                               ("args", rawmap([("year", Raw(b"\xcf" + b"\xff" * 8))]))]), "")):
        rep, _ = ctl_raw(frame, what)
        check("§4.5: a request with %s gets ok false and a reason%s" % (what, " (%s)" % part if part else ""),
              rep is not None and rep["ok"] is False and rep["reason"] != "" and part in rep["reason"],
              repr(rep))
    rep, _ = ctl_raw(P({"v": 2, "type": "ctl", "cmd": "ping", "zz": {"a": [1, {"b": None}]},
                        "ext": None}), "unknown keys")
    check("§3: unknown keys in a ctl are ignored", rep is not None and rep["body"] == "pong", repr(rep))
    rep, _ = ctl_raw(rawmap([("v", 2), ("type", "ctl"), ("cmd", "ping"),
                             ("zz", Raw(b"\xd4\x01\x00"))]), "ext in unknown key")
    check("§3: an ext value inside an unknown key is skipped", rep is not None and rep["body"] == "pong",
          repr(rep))
    rep, _ = ctl_raw(rawmap([("v", Raw(b"\xcf" + struct.pack(">Q", 2))), ("type", "ctl"),
                             ("cmd", "ping")]), "v as uint64")
    check("§3: v in any integer format (uint64) is accepted", rep is not None and rep["body"] == "pong",
          repr(rep))


# ---- ingest -------------------------------------------------------------------------------

def test_ingest(reg, rate):
    ee = sorted(f for f, r in reg.items() if r["cluster"] == "energy-env")
    ne = sorted(f for f, r in reg.items() if r["cluster"] == "new-energy")
    st0 = status()
    t0 = totals("energy", "2031-01")

    # a batch acked ok, then its resend: ok with the original accepted, applied once
    s = Stream("conf-basic")
    samples = [[ee[0], "energy", 1000.5, now_ms(), "2031-01"],
               [ee[1], "energy", 2000.25, now_ms(), "2031-01"],
               [ne[0], "energy", 7.125, now_ms(), "2031-01"]]
    f1 = s.frame(1, samples)
    a = s.rt(f1, "basic seq 1")
    want("§2: a fresh stream's seq 1 with 3 samples: ok, accepted 3, expected 2, reason ''",
         a, seq=1, status="ok", accepted=3, expected=2, reason="")
    st1 = status()
    a = s.rt(f1, "basic seq 1 resend")
    want("§2: a resend of it: ok with the original accepted 3, expected 2", a,
         seq=1, status="ok", accepted=3, expected=2)
    st2 = status()
    check("§2: the resend is not applied again (status samples_applied +3, then +0)",
          (st1.get("samples_applied", 0) - st0.get("samples_applied", 0),
           st2.get("samples_applied", 0) - st1.get("samples_applied", 0)) == (3, 0),
          "%r %r %r" % (st0.get("samples_applied"), st1.get("samples_applied"), st2.get("samples_applied")))
    check("§4.7 status: batches_ok +1 for the batch, batches_duplicate +1 for the resend",
          (st1.get("batches_ok", 0) - st0.get("batches_ok", 0),
           st2.get("batches_duplicate", 0) - st1.get("batches_duplicate", 0)) == (1, 1),
          "batches_ok %r->%r, batches_duplicate %r->%r" % (
              st0.get("batches_ok"), st1.get("batches_ok"), st1.get("batches_duplicate"),
              st2.get("batches_duplicate")))
    t1 = totals("energy", "2031-01")
    check("§4.1: totals of energy 2031-01 per cluster are the samples' values in milli",
          (t1.get("energy-env"), t1.get("new-energy")) == (3000750, 7125), repr((t0, t1)))

    # empty batch: settles its seq with nothing
    a = s.rt(s.frame(2, []), "empty")
    want("§2/§4.1: an empty batch is ok, accepted 0, expected 3", a,
         seq=2, status="ok", accepted=0, expected=3)
    # a window with a gap: 3, 4, (5 held back), 6, 7, 8
    frames = {q: s.frame(q, [[ee[q], "energy", float(q), 0, "2031-02"]]) for q in range(3, 9)}
    for q in (3, 4, 6, 7, 8):
        s.send(frames[q])
    got = {}
    for _ in range(5):
        a = s.ack("window")
        if a is None:
            break
        got[a["seq"]] = a
    want("§2 window: seq 3 ok, expected 4", got.get(3), status="ok", expected=4, accepted=1)
    want("§2 window: seq 4 ok, expected 5", got.get(4), status="ok", expected=5, accepted=1)
    for q in (6, 7, 8):
        want("§2 window: seq %d sent before 5: out_of_order, expected 5" % q, got.get(q),
             status="out_of_order", expected=5, accepted=0)
    for q in range(5, 9):
        s.send(frames[q])
    got = {}
    for _ in range(4):
        a = s.ack("window resend")
        if a is None:
            break
        got[a["seq"]] = a
    check("§2 window: resent from the gap (5..8) in order, all ok with expected seq+1",
          all(got.get(q, {}).get("status") == "ok" and got[q].get("expected") == q + 1
              for q in range(5, 9)), repr(got))
    t2 = totals("energy", "2031-02")
    check("§2 window: exact totals (3+4+5+6+7+8 in energy-env)",
          t2.get("energy-env") == 33000, repr(t2))

    # final nacks settle their seq; a resend gets the same answer
    nseq = 9
    other_reason = []
    for what, smp, status_, part in (
            ("an unknown firm", [[ee[0], "energy", 1.0, 0, "2031-03"], ["no-such-firm", "energy", 1.0, 0, "2031-03"]],
             "unknown_firm", "sample 1"),
            ("an unknown metric", [[ee[0], "no_metric", 1.0, 0]], "unknown_metric", "sample 0"),
            ("a NaN value", [[ee[0], "energy", float("nan"), 0, "2031-03"]], "invalid", "sample 0: value"),
            ("+Inf", [[ee[0], "energy", float("inf"), 0, "2031-03"]], "invalid", "sample 0"),
            ("|value| over 1e14", [[ee[0], "energy", 1.5e14, 0, "2031-03"]], "invalid", "sample 0"),
            ("ts = PROTO_MAX_TS_MS", [[ee[0], "cod", 1.0, MAX_TS_MS]], "invalid", "sample 0"),
            ("a negative ts", [[ee[0], "cod", 1.0, -1]], "invalid", "sample 0"),
            ("a period on a reading", [[ee[0], "cod", 1.0, now_ms(), "2031-03"]], "invalid", "sample 0"),
            ("period 2021-13", [[ee[0], "energy", 1.0, 0, "2021-13"]], "invalid",
             'sample 0: period: "2021-13" is not YYYY, YYYY-Qn or YYYY-MM with year 1970..2199'),
            ("period 2021-q3", [[ee[0], "energy", 1.0, 0, "2021-q3"]], "invalid", "sample 0: period"),
            ("period 2021-7", [[ee[0], "energy", 1.0, 0, "2021-7"]], "invalid", "sample 0: period"),
            ("period 1969", [[ee[0], "energy", 1.0, 0, "1969"]], "invalid", "sample 0: period"),
            ("period 2200", [[ee[0], "energy", 1.0, 0, "2200"]], "invalid", "sample 0: period"),
            ("an empty firm id", [["", "energy", 1.0, 0, "2031-03"]], "invalid", "sample 0"),
            ("a NUL in a firm id", [["ee\x00001", "energy", 1.0, 0, "2031-03"]], "invalid", "sample 0"),
            ("a 65-byte metric", [[ee[0], "m" * 65, 1.0, 0]], "too_large", "sample 0: metric"),
            ("a sample of 3", [[ee[0], "energy", 1.0]], "malformed", "sample 0"),
            ("a sample of 6", [[ee[0], "energy", 1.0, 0, "2031-03", 1]], "malformed", "sample 0"),
            ("a str value", [[ee[0], "energy", "1.0", 0, "2031-03"]], "malformed", "sample 0"),
            ("a float ts", [[ee[0], "energy", 1.0, 0.0, "2031-03"]], "malformed", "sample 0"),
            ("a sample as a map", [{"firm": ee[0]}], "malformed", "sample 0")):
        f = s.frame(nseq, smp)
        a1 = s.rt(f, what)
        want("§2/§5: %s: %s, reason naming %r, settles (expected %d)" % (what, status_, part, nseq + 1),
             a1, seq=nseq, status=status_, accepted=0, expected=nseq + 1,
             reason=lambda r, p=part: isinstance(r, str) and r.startswith(p))
        a2 = s.rt(f, what + " resend")
        want("§2: %s resent: the same answer" % what, a2, seq=nseq, status=status_, expected=nseq + 1,
             accepted=0)
        if a1 and a2 and a1.get("reason") != a2.get("reason"):
            other_reason.append("%r / %r" % (a1["reason"], a2["reason"]))
        nseq += 1
    if other_reason:
        note("%d resends of a final nack got another reason than the first answer, e.g. %s"
             % (len(other_reason), other_reason[0]))
    t3 = totals("energy", "2031-03")
    check("§2: nothing of a refused batch is applied (atomic: energy 2031-03 has no figure)",
          t3.get("energy-env") in (None, 0), repr(t3))

    # raw-encoded batches the spec accepts, or refuses with a given status
    def rb(seq, samples_raw, extra=()):
        return rawmap([("v", 2), ("type", "batch"), ("seq", seq), ("epoch", s.epoch),
                       ("agent", s.agent), ("samples", samples_raw)] + list(extra))
    for what, frame, status_ in (
            ("a float32 value", rb(nseq, rawarr([rawarr([ee[2], "energy", Raw(b"\xca" + struct.pack(">f", 2.5)), 0, "2031-04"])])), "ok"),
            ("an integer value", rb(nseq + 1, rawarr([rawarr([ee[3], "energy", 3, 0, "2031-04"])])), "ok"),
            ("a negative integer value", rb(nseq + 2, rawarr([rawarr([ee[4], "energy", -4, 0, "2031-04"])])), "ok"),
            ("a nil period", rb(nseq + 3, rawarr([rawarr([ee[5], "energy", 1.0, now_ms(), None])])), "ok"),
            ("seq as int64", rawmap([("v", 2), ("type", "batch"), ("seq", Raw(b"\xd3" + struct.pack(">q", nseq + 4))),
                                     ("epoch", s.epoch), ("agent", s.agent), ("samples", [])]), "ok"),
            ("|value| = 1e14 exactly and ts just below the limit",
             rb(nseq + 5, rawarr([rawarr([ee[6], "energy", 1e14, MAX_TS_MS - 1, "2199-Q4"])])), "ok"),
            ("unknown keys (one an ext, one a map) before and after samples",
             rawmap([("v", 2), ("type", "batch"), ("zz", {"a": [1]}), ("seq", nseq + 6), ("epoch", s.epoch),
                     ("agent", s.agent), ("samples", []), ("yy", Raw(b"\xd5\x01\x00\x00"))]), "ok"),
            ("keys in another order (samples first)",
             rawmap([("v", 2), ("type", "batch"), ("samples", []), ("agent", s.agent), ("epoch", s.epoch),
                     ("seq", nseq + 7)]), "ok")):
        a = s.rt(bytes(frame), what)
        q = nseq
        nseq += 1
        want("§3/§4.1: %s is accepted" % what, a, status="ok", expected=nseq)
        if a and a["seq"] != q:
            no("§3: %s acked with its seq %d" % (what, q), repr(a))
    t4 = totals("energy", "2031-04")
    check("§3: float32 2.5, int 3 and -4 are applied as values (energy 2031-04 = 1.5)",
          t4.get("energy-env") == 1500, repr(t4))
    for what, frame, status_ in (
            ("a trailing byte", bytes(rb(nseq, [])) + b"\x00", "malformed"),
            ("samples twice", rb(nseq + 1, [], [("samples", [])]), "malformed"),
            ("samples missing", rawmap([("v", 2), ("type", "batch"), ("seq", nseq + 2), ("epoch", s.epoch),
                                        ("agent", s.agent)]), "malformed"),
            ("samples a map", rb(nseq + 3, {}), "malformed"),
            ("a bin firm", rb(nseq + 4, rawarr([rawarr([Raw(b"\xc4\x06" + ee[0].encode()), "energy", 1.0, 0])])),
             "malformed"),
            ("an ext value", rb(nseq + 5, rawarr([rawarr([ee[0], "energy", Raw(b"\xd4\x01\x00"), 0])])), "malformed"),
            ("invalid UTF-8 in a firm", rb(nseq + 6, rawarr([rawarr([Raw(b"\xa3ee\xff"), "energy", 1.0, 0])])), "invalid"),
            ("a surrogate in a firm", rb(nseq + 7, rawarr([rawarr([Raw(b"\xa3\xed\xa0\x80"), "energy", 1.0, 0])])), "invalid"),
            ("an overlong form in a firm", rb(nseq + 8, rawarr([rawarr([Raw(b"\xa2\xc0\xaf"), "energy", 1.0, 0])])), "invalid"),
            ("depth 5 in an unknown key after samples", rb(nseq + 9, [], [("zz", [[[[1]]]])]), "too_large"),
            ("a header of 10001 samples", rb(nseq + 10, rawarr([rawarr([ee[0], "energy", 1.0, 0])], claimed=10001)),
             "too_large"),
            ("a 1025-byte str in a sample's period", rb(nseq + 11, rawarr([rawarr([ee[0], "energy", 1.0, 0, "x" * 1025])])),
             None)):
        a = s.rt(bytes(frame), what)
        if status_ is None:
            want("§5: %s is refused and settles" % what, a, seq=nseq, expected=nseq + 1,
                 status=lambda x: x in ("too_large", "invalid"))
        else:
            want("§5: %s: %s, settles (seq, epoch, agent were read)" % (what, status_), a,
                 seq=nseq, status=status_, expected=nseq + 1)
        nseq += 1
    last_seq = nseq - 1
    s.close()

    # batches whose seq cannot be read: seq 0, expected 0
    g = Stream("conf-broken")
    for what, frame, status_, part in (
            ("not MessagePack (0xc1)", b"\xc1", "malformed", ""),
            ("an empty frame", b"", "malformed", ""),
            ("an array", P([2, "batch"]), "malformed", ""),
            ("a map truncated inside seq", g.frame(1, [])[:12], "malformed", ""),
            ("type before v", P({"type": "batch", "v": 2, "seq": 1, "epoch": g.epoch, "agent": g.agent,
                                 "samples": []}), "malformed", ""),
            ("type ack", P({"v": 2, "type": "ack", "seq": 1, "epoch": g.epoch, "agent": g.agent,
                            "samples": []}), "malformed", ""),
            ("seq missing", P({"v": 2, "type": "batch", "epoch": g.epoch, "agent": g.agent, "samples": []}),
             "malformed", 'missing key "seq"'),
            ("a float seq", rawmap([("v", 2), ("type", "batch"), ("seq", Raw(b"\xcb" + struct.pack(">d", 1.0))),
                                    ("epoch", g.epoch), ("agent", g.agent), ("samples", [])]), "malformed", ""),
            ("seq 0", g.frame(0, []), "invalid", ""),
            ("a negative seq", rawmap([("v", 2), ("type", "batch"), ("seq", -1), ("epoch", g.epoch),
                                       ("agent", g.agent), ("samples", [])]), "invalid", ""),
            ("v as a string", P({"v": "2", "type": "batch"}), "malformed", "")):
        a = g.rt(frame, what)
        want("§5: %s: %s, seq 0, expected 0%s" % (what, status_, ", reason %r" % part if part else ""), a,
             seq=0, status=status_, expected=0, accepted=0,
             reason=lambda r, p=part: isinstance(r, str) and p in r)
    a = g.rt(batch(1, 0, g.agent, []), "epoch 0")
    want("§5: epoch 0: invalid, seq 1 (it was read), expected 0 (not attributed)", a,
         seq=1, status="invalid", expected=0, accepted=0)
    # frame layouts (§2)
    g.s.send_multipart([g.frame(1, []), g.frame(1, [])])
    a = g.ack("two frames")
    want("§2: two body frames: malformed, seq 0", a, seq=0, status="malformed", expected=0)
    g.s.send_multipart([b"", g.frame(1, [])])
    fr = recv(g.s)
    check("§2: a DEALER sending [\"\"][batch] gets [\"\"][ack] (the delimiter echoed)",
          fr is not None and len(fr) == 2 and fr[0] == b"", repr(fr))
    if fr:
        a = check_ack(fr[-1], "delimited")
        want("§2: ... and the batch is taken (seq 1 ok)", a, seq=1, status="ok", expected=2)
    g.close()
    r = Stream("conf-req", kind=zmq.REQ)
    fr = None
    r.s.send(r.frame(1, [[ee[7], "energy", 1.0, 0, "2031-05"]]))
    fr = recv(r.s)
    a = check_ack(fr[-1], "REQ") if fr else None
    want("§2: a REQ agent gets its ack (seq 1 ok, accepted 1)", a, seq=1, status="ok", accepted=1, expected=2)
    r.close()

    # versions (§6): refused as a whole, seq 0, max_version 2
    v = Stream("conf-version")
    for ver in (1, 3, 0):
        a = v.rt(batch(1, v.epoch, v.agent, [[ee[0], "energy", 1.0, 0, "2031-05"]], v=ver), "v%d" % ver)
        want("§6: a batch of version %d: status version, seq 0, expected 0, max_version 2" % ver, a,
             status="version", seq=0, expected=0, max_version=2, accepted=0)
    a = v.rt(P({"v": 3, "type": 12, "seq": "x", "samples": {"a": [[[[1]]]]}}), "v3 junk")
    want("§3/§6: v is read first: a version-3 map with junk after it is 'version'", a, status="version", seq=0)
    a = v.rt(v.frame(1, []), "after version")
    want("§6: the stream is untouched: its seq 1 is then ok", a, seq=1, status="ok", expected=2)
    v.close()

    # new stream not at 1; forgotten seqs; one of the last 64 remembered
    n = Stream("conf-start")
    a = n.rt(n.frame(5, []), "start at 5")
    want("§2: a new stream's first batch at seq 5: out_of_order, expected 1", a,
         seq=5, status="out_of_order", expected=1)
    frames = {q: n.frame(q, []) for q in range(1, 71)}
    for lo in range(1, 71, 10):
        for q in range(lo, lo + 10):
            n.send(frames[q])
        for _ in range(10):
            n.ack("fill")
    a = n.rt(frames[70], "last")
    want("§2: after 70 batches, a resend of seq 70: ok, expected 71", a, seq=70, status="ok", expected=71)
    a = n.rt(frames[7], "64th last")
    want("§2: seq 7, the 64th last settled: the answer again (ok, expected 71)", a, seq=7, status="ok",
         expected=71)
    a = n.rt(frames[6], "65th last")
    want("§2: seq 6, settled longer ago: out_of_order with expected 71 > seq", a, seq=6,
         status="out_of_order", expected=71)
    n.close()

    # two streams on one agent id: agent_conflict; the owner goes on
    s2 = Stream("conf-basic")  # s's agent id, another epoch; s sent a batch just now
    a = s2.rt(s2.frame(1, [[ee[0], "energy", 99.0, 0, "2031-01"]]), "conflict")
    want("§2: another epoch on a live agent id: agent_conflict, reason 'agent id ... in use by another agent'",
         a, seq=1, status="agent_conflict", accepted=0,
         reason=lambda r: isinstance(r, str) and "in use by another agent" in r and "own id" in r)
    if a:
        note("agent_conflict ack: expected = %r (§2 and §5 do not say which)" % a.get("expected"))
    a = s2.rt(s2.frame(1, [[ee[0], "energy", 99.0, 0, "2031-01"]]), "conflict again")
    want("§2: again: agent_conflict", a, status="agent_conflict")
    s3 = Stream("conf-basic", epoch=s.epoch)  # the owner, reconnected
    a = s3.rt(s3.frame(last_seq + 1, [[ee[8], "energy", 2.0, 0, "2031-05"]]), "owner")
    want("§2: the owner, reconnected with its epoch, goes on: ok", a, seq=last_seq + 1, status="ok",
         expected=last_seq + 2)
    s3.close()
    s2.close()
    t5 = totals("energy", "2031-01")
    check("§2: nothing the second stream sent is applied (energy 2031-01 unchanged)",
          t5 == t1, "%r vs %r" % (t5, t1))
    st9 = status()
    nk0, nk9 = st0.get("nacks", {}), st9.get("nacks", {})
    check("§4.7 status: nacks counts the refusals (unknown_firm, agent_conflict, version, out_of_order...)",
          all(nk9.get(k, 0) > nk0.get(k, 0) for k in
              ("malformed", "version", "unknown_firm", "unknown_metric", "invalid", "too_large",
               "out_of_order", "agent_conflict")), "%r -> %r" % (nk0, nk9))

    # a frame over PROTO_MAX_MSG_SIZE is answered too_large with seq 0; one
    # over twice that is dropped with the connection (§2)
    big = Stream("conf-big")
    big.send(b"\x00" * (4 * 1024 * 1024 + 16))
    a = big.ack("big", timeout=5000)
    check("§2: a frame over 4 MiB is answered too_large, seq 0, naming the limit",
          a is not None and a.get("status") == "too_large" and a.get("seq") == 0
          and "4194304" in a.get("reason", ""), "%r" % (a,))
    big.close()
    huge = Stream("conf-huge")
    huge.send(b"\x00" * (8 * 1024 * 1024 + 16))
    check("§2: a frame over 8 MiB gets no ack", huge.ack("huge", timeout=1500) is None, "")
    huge.close()
    ok_ = Stream("conf-after-big")
    want("§2: ... and the daemon still acks others", ok_.rt(ok_.frame(1, []), "after big"), status="ok")
    ok_.close()

    test_rate_window(reg, rate)


def test_partial(reg):
    """§2 per-sample answers: a partial batch, its resend, a check."""
    ee = sorted(f for f, r in reg.items() if r["cluster"] == "energy-env")
    t0 = totals("energy", "2031-03")
    st0 = status()
    s = Stream("conf-partial")
    samples = [[ee[0], "energy", 10.5, now_ms(), "2031-03"],
               ["no-such-firm", "energy", 1.0, now_ms(), "2031-03"],
               [ee[1], "energy", 20.25, now_ms(), "2031-03"],
               [ee[2], "cod", 1.0, 5]]  # a reading timestamped 5 ms: before ts_floor
    fr = P({"v": VERSION, "type": "batch", "seq": 1, "epoch": s.epoch, "agent": s.agent,
            "partial": True, "samples": samples})
    a = s.rt(fr, "partial seq 1")
    idx = lambda v: isinstance(v, list) and [(e[0], e[1]) for e in v] == [(1, "unknown_firm"),
                                                                          (3, "invalid")]
    want("§2: a partial batch with two bad samples: partial, accepted 2, expected 2, "
         "refused [1 unknown_firm, 3 invalid]", a, seq=1, status="partial", accepted=2,
         expected=2, refused=idx)
    t1 = totals("energy", "2031-03")
    check("§2: its good samples are applied (energy 2031-03 +30750 milli)",
          t1.get("energy-env", 0) - t0.get("energy-env", 0) == 30750, repr((t0, t1)))
    a = s.rt(fr, "partial seq 1 resend")
    want("§2: a resend gets the same answer: partial, accepted 2, the same refused", a,
         seq=1, status="partial", accepted=2, expected=2, refused=idx)
    check("§2: the resend applies nothing again (samples_applied +2 in all)",
          status().get("samples_applied", 0) - st0.get("samples_applied", 0) == 2)
    # a check: answered per sample, applies nothing, settles nothing
    c = Stream("conf-check")
    chk = P({"v": VERSION, "type": "check", "seq": 1, "epoch": c.epoch, "agent": c.agent,
             "samples": samples})
    a = c.rt(chk, "check seq 1")
    want("§2 checks: a check is answered dry_run, partial, accepted 2, expected 0", a,
         seq=1, status="partial", accepted=2, expected=0, dry_run=True, refused=idx)
    check("§2 checks: nothing is applied", totals("energy", "2031-03") == t1)
    a = c.rt(c.frame(1, [[ee[3], "energy", 1.0, now_ms(), "2031-03"]]), "after the check")
    want("§2 checks: no seq was consumed: seq 1 of the same stream is then taken (ok)", a,
         seq=1, status="ok", accepted=1, expected=2)
    # without "partial" a batch stays atomic
    b = Stream("conf-atomic")
    a = b.rt(b.frame(1, samples), "atomic")
    want("§2: without partial one bad sample refuses the batch (unknown_firm, accepted 0)", a,
         seq=1, status="unknown_firm", accepted=0, expected=2)
    check("§4.2: an atomic nack has no refused list", a is not None and "refused" not in a)
    for x in (s, c, b):
        x.close()


def test_rate_window(reg, rate):
    """A window of W batches over the connection's rate: the first one refused
    rate_limited holds every later one out_of_order; resending from it ends exact."""
    firms = sorted(reg)
    W, per = 8, max(10, rate * 3 // 10)
    samples = {}
    want_tot = collections.Counter()
    k = 0
    for q in range(1, W + 1):
        row = []
        for i in range(per):
            f = firms[k % len(firms)]
            k += 1
            val = 1 + (k % 97) + 0.125
            row.append([f, "energy", val, 0, "2032-%02d" % q])
            want_tot[reg[f]["cluster"]] += int(val * 1000)
        samples[q] = row
    st0 = status()
    s = Stream("conf-rate")
    frames = {q: s.frame(q, samples[q]) for q in samples}
    first = None
    pending = list(range(1, W + 1))
    settled = {}
    deadline = time.time() + 30
    rounds = 0
    while pending and time.time() < deadline:
        rounds += 1
        for q in pending:
            s.send(frames[q])
        got = {}
        for _ in pending:
            a = s.ack("rate window")
            if a is None:
                break
            got[a["seq"]] = a
        if first is None:
            first = got
        hold = None
        for q in pending:
            a = got.get(q)
            if a is None:
                break
            if a["status"] == "ok":
                settled[q] = a
            elif hold is None:
                hold = (q, a["status"])
        pending = [q for q in pending if q not in settled]
        time.sleep(0.3)
    s.close()
    statuses = [(q, first[q]["status"], first[q]["expected"]) for q in sorted(first or {})]
    held = [x for x in statuses if x[1] == "rate_limited"]
    check("§2/§5: a window of %d batches of %d samples over rate_per_connection=%d/s: one is rate_limited"
          % (W, per, rate), bool(held), repr(statuses))
    if held:
        n = held[0][0]
        check("§2: ... seq %d rate_limited with expected %d, reason 'rate limited: ...'" % (n, n),
              first[n]["expected"] == n and first[n]["reason"].startswith("rate limited"),
              repr(first[n]))
        later = [x for x in statuses if x[0] > n]
        check("§2: ... every later batch of the window is out_of_order with expected %d" % n,
              all(x[1] == "out_of_order" and x[2] == n for x in later), repr(later))
        check("§2: ... every earlier one ok", all(x[1] == "ok" for x in statuses if x[0] < n), repr(statuses))
    check("§2: resending from the gap (%d rounds), every batch ends ok with accepted %d" % (rounds, per),
          sorted(settled) == list(range(1, W + 1)) and all(a["accepted"] == per for a in settled.values()),
          "settled %r" % sorted(settled))
    tot = totals("energy", "2032")
    check("§2: exact totals of energy 2032 per cluster after the resends",
          tot == dict(want_tot), "%r vs %r" % (tot, dict(want_tot)))
    st1 = status()
    check("§2: samples_applied grew by exactly %d" % (W * per),
          st1.get("samples_applied", 0) - st0.get("samples_applied", 0) == W * per,
          "%r -> %r" % (st0.get("samples_applied"), st1.get("samples_applied")))


# ---- alerts -------------------------------------------------------------------------------

ALERT_KEYS = ["v", "type", "id", "rule", "severity", "state", "cluster", "chain", "firm", "metric",
              "observed", "expected", "summary", "since", "ts", "seq"]


def check_alert(a, raw, what, topic=None):
    r = Reader(bytes(raw))
    try:
        r.value(1, what)
    except DecodeError:
        pass
    errs = []
    if list(a)[:16] != ALERT_KEYS:
        errs.append("keys %s" % list(a))
    extra = list(a)[16:]
    if not set(extra) <= {"reminder", "count", "n", "rn", "details"}:
        errs.append("extra keys %s" % extra)
    if a.get("type") != "alert":
        errs.append("type")
    for k in ("id", "rule", "cluster", "metric"):
        if not (isinstance(a.get(k), str) and 1 <= len(a[k].encode()) <= (160 if k == "id" else 64)):
            errs.append("%s %r" % (k, a.get(k)))
    for k in ("chain", "firm"):
        if not (a.get(k) is None or (isinstance(a[k], str) and 1 <= len(a[k].encode()) <= 64)):
            errs.append("%s %r" % (k, a.get(k)))
    if a.get("severity") not in ("info", "warning", "critical"):
        errs.append("severity %r" % a.get("severity"))
    if a.get("state") not in ("firing", "resolved", "revised", "flapping"):
        errs.append("state %r" % a.get("state"))
    for k in ("observed", "expected"):
        if not (isinstance(a.get(k), F64) and math.isfinite(a[k])):
            errs.append("%s %r not a finite float64" % (k, a.get(k)))
    if not (isinstance(a.get("summary"), str) and len(a["summary"].encode()) <= 1024):
        errs.append("summary")
    for k in ("since", "ts"):
        if not (is_int(a.get(k)) and 0 <= a[k] < MAX_TS_MS):
            errs.append("%s %r" % (k, a.get(k)))
    if not (is_uint(a.get("seq")) and a["seq"] >= 1):
        errs.append("seq %r" % a.get("seq"))
    if "reminder" in a and a["reminder"] is not True:
        errs.append("reminder written but %r" % a["reminder"])
    if "count" in a and not (is_uint(a["count"]) and a["count"] > 0):
        errs.append("count %r" % a["count"])
    for k in ("n", "rn"):
        if k in a and not (is_uint(a[k]) and a[k] > 0):
            errs.append("%s %r" % (k, a[k]))
    if "details" in a:
        d = a["details"]
        if not (isinstance(d, dict) and 0 < len(d) <= 24 and all(
                1 <= len(k.encode()) <= 64 and (isinstance(x, F64) or (isinstance(x, str) and len(x.encode()) <= 1024))
                for k, x in d.items())):
            errs.append("details %r" % d)
    if topic is not None and topic != "alert.%s.%s" % (a.get("cluster"), a.get("severity")):
        errs.append("topic %r" % topic)
    enc_rule("§4.3: every alert (published or in the snapshot) has the 16 keys in order with their "
             "types, then only reminder/count/details when set; topic alert.<cluster>.<severity>",
             not errs, "%s: %s" % (what, "; ".join(errs)))
    return not errs


class Copy:
    """The Clone pattern of §2: firing alerts by id, the last seq per cluster."""

    def __init__(self):
        self.alerts = {}
        self.last = {}
        self.stale = []

    def snapshot(self):
        b = body("alerts")
        if b is None:
            return None
        self.alerts = {}
        for raw in b.get("alerts", []):
            if raw is None:
                self.stale.append("nil entry in the snapshot")
                continue
            a = decode(raw, "snapshot alert")
            if a is not None:
                check_alert(a, raw, "snapshot alert")
                self.alerts[a["id"]] = a
        self.last = dict(b.get("seqs", {}))
        return b

    def apply(self, a):
        c = a["cluster"]
        last = self.last.get(c, 0)
        if a.get("count"):
            self.stale.append("grouped alert %s" % a["id"])
        if a["seq"] == last + 1:
            if a["state"] == "resolved":
                self.alerts.pop(a["id"], None)
            else:
                self.alerts[a["id"]] = dict(a, state="firing" if a["state"] == "revised" else a["state"])
            self.last[c] = a["seq"]
        elif a["seq"] > last + 1:
            self.stale.append("%s: seq %d after %d" % (c, a["seq"], last))

    def heartbeat(self, h):
        if h["seq"] > self.last.get(h["cluster"], 0):
            self.stale.append("heartbeat of %s at %d above %d" % (h["cluster"], h["seq"],
                                                                 self.last.get(h["cluster"], 0)))


def test_alerts(reg):
    subs = {}
    for prefix in ("alert.", "alert.new-energy.", "alert.energy-env.warning"):
        s = sock(zmq.SUB, ALERTS)
        s.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        subs[prefix] = s
    seen = collections.defaultdict(list)   # prefix -> [(topic, map, raw, time)]
    hb_times = collections.defaultdict(list)
    hb_bad = []
    copy = Copy()

    def pump(until, timeout):
        """Reads every SUB until until() or timeout seconds; checks each message."""
        end = time.time() + timeout
        while time.time() < end:
            if until():
                return True
            ready = set(zmq.select(list(subs.values()), [], [], 0.1)[0])
            for prefix, s in subs.items():
                if s not in ready:
                    continue
                fr = s.recv_multipart()
                if len(fr) != 2:
                    enc_rule("§2 Alerts: a published message has two frames", False, repr(fr)[:100])
                    continue
                enc_rule("§2 Alerts: a published message has two frames", True, None)
                try:
                    topic = fr[0].decode("ascii")
                except UnicodeDecodeError:
                    topic = repr(fr[0])
                enc_rule("§2 Alerts: the topic matches the subscribed prefix", topic.startswith(prefix),
                         "%s under %s" % (topic, prefix))
                m = decode(fr[1], topic)
                if m is None:
                    continue
                seen[prefix].append((topic, m, fr[1], time.time()))
                if m.get("type") == "heartbeat":
                    errs = []
                    if list(m) != ["v", "type", "cluster", "seq", "ts"]:
                        errs.append("keys %s" % list(m))
                    if topic != "alert.%s.heartbeat" % m.get("cluster"):
                        errs.append("topic %s" % topic)
                    if not is_uint(m.get("seq")):
                        errs.append("seq %r" % m.get("seq"))
                    if not (is_int(m.get("ts")) and abs(m["ts"] - now_ms()) < 60000):
                        errs.append("ts %r" % m.get("ts"))
                    if errs:
                        hb_bad.append("%s: %s" % (topic, "; ".join(errs)))
                    if prefix == "alert.":
                        hb_times[m.get("cluster")].append(time.time())
                        copy.heartbeat(m)
                elif m.get("type") == "alert":
                    check_alert(m, fr[1], topic, topic)
                    if prefix == "alert.":
                        copy.apply(m)
                else:
                    enc_rule("§2 Alerts: messages are alert or heartbeat", False, repr(m)[:100])
        return until()

    got_hb = pump(lambda: {"energy-env", "new-energy"} <= set(hb_times), 5)
    check("§2 Alerts: heartbeats of both clusters arrive under alert. within 5 s", got_hb,
          repr(dict(hb_times)))
    snap = copy.snapshot()
    check("§2 Clone: the alerts snapshot has seqs for both clusters",
          snap is not None and set(copy.last) == {"energy-env", "new-energy"}, repr(snap))
    last0 = dict(copy.last)

    # fire cod-limit on ee-001 (above 50 for 2 samples), then resolve it (<= 40)
    s = Stream("conf-alerts")
    t = now_ms() - 10000  # readings taken a little before they are sent
    for q, val in ((1, 60.0), (2, 61.0)):
        a = s.rt(s.frame(q, [["ee-001", "cod", val, t + q * 1000]]), "cod %s" % val)
        want("alerts: cod reading %s of ee-001 acked ok" % val, a, status="ok", seq=q)

    def find(prefix, aid, state):
        return [x for x in seen[prefix] if x[1].get("type") == "alert" and x[1].get("id") == aid
                and x[1].get("state") == state]
    fired = pump(lambda: bool(find("alert.", "cod-limit:ee-001", "firing")), 5)
    check("§2 Alerts: cod-limit:ee-001 firing is published under alert. within 5 s", fired,
          repr([x[0] for x in seen["alert."] if x[1].get("type") == "alert"]))
    if fired:
        topic, al, raw, _ = find("alert.", "cod-limit:ee-001", "firing")[0]
        check("§4.3: topic alert.energy-env.warning, rule, cluster, firm, metric as configured",
              (topic, al["rule"], al["severity"], al["cluster"], al["firm"], al["metric"])
              == ("alert.energy-env.warning", "cod-limit", "warning", "energy-env", "ee-001", "cod"),
              repr(al))
        check("§4.3: chain is the chain the rule is narrowed to (water-pollution-control)",
              al["chain"] == "water-pollution-control", "chain %r" % al["chain"])
        check("§4.3: observed is the crossing reading (61), expected the limit (50)",
              (al["observed"], al["expected"]) == (61.0, 50.0), repr((al["observed"], al["expected"])))
        check("§2: the cluster's seq goes up by exactly 1 (%d -> %d)" % (last0["energy-env"], al["seq"]),
              al["seq"] == last0.get("energy-env", 0) + 1, repr(al["seq"]))
        hb_ok = pump(lambda: any(m[1].get("type") == "heartbeat" and m[1]["cluster"] == "energy-env"
                                 and m[1]["seq"] == al["seq"]
                                 for m in seen["alert."]), 3)
        check("§4.6: energy-env's heartbeat then carries the alert's seq %d" % al["seq"], hb_ok, "")
        check("§2: an alert.energy-env.warning subscriber gets it",
              bool(find("alert.energy-env.warning", "cod-limit:ee-001", "firing")), "")
        note("firing: since %d, ts %d; readings at %d, %d; published at about %d (§4.3 does not say "
             "which clock since and ts use)" % (al["since"], al["ts"], t + 1000, t + 2000, now_ms()))
        copy2 = Copy()
        b2 = copy2.snapshot()
        check("§2 Clone: the snapshot's seqs[energy-env] is the alert's seq",
              copy2.last.get("energy-env") == al["seq"], repr(copy2.last))
        sa = copy2.alerts.get("cod-limit:ee-001")
        check("§2 Clone: the snapshot holds the alert firing with its seq and since",
              sa is not None and (sa["state"], sa["seq"], sa["since"]) == ("firing", al["seq"], al["since"]),
              repr(sa))
        raws = [x for x in (b2 or {}).get("alerts", []) if x]
        diff = {k: (al.get(k), (sa or {}).get(k)) for k in set(al) | set(sa or {})
                if al.get(k) != (sa or {}).get(k)}
        check("§2 Clone: the snapshot's entry of an alert published once is that message "
              "(\"encoded exactly as the second frame of a published alert\")",
              raw in raws, "differs in (published, snapshot) %r" % diff)
        check("§2 Clone: the copy kept from the stream equals the new snapshot",
              {k: (v["state"], v["seq"]) for k, v in copy.alerts.items()}
              == {k: (v["state"], v["seq"]) for k, v in copy2.alerts.items()} and copy.last == copy2.last,
              "%r vs %r" % ({k: v["seq"] for k, v in copy.alerts.items()},
                            {k: v["seq"] for k, v in copy2.alerts.items()}))
        a = s.rt(s.frame(3, [["ee-001", "cod", 30.0, t + 3000]]), "cod 30")
        want("alerts: cod reading 30 of ee-001 acked ok", a, status="ok", seq=3)
        res = pump(lambda: bool(find("alert.", "cod-limit:ee-001", "resolved")), 5)
        check("§2 Alerts: cod-limit:ee-001 resolved is published", res, "")
        if res:
            r2 = find("alert.", "cod-limit:ee-001", "resolved")[0][1]
            check("§2/§4.3: resolved with the same id, seq + 1, the same since",
                  (r2["seq"], r2["since"]) == (al["seq"] + 1, al["since"]), repr(r2))
            copy3 = Copy()
            copy3.snapshot()
            check("§2 Clone: the copy equals the snapshot after the resolve (alert gone)",
                  "cod-limit:ee-001" not in copy.alerts and set(copy.alerts) == set(copy3.alerts)
                  and copy.last == copy3.last, "%r / %r vs %r" % (list(copy.alerts), copy.last, copy3.last))
    s.close()
    pump(lambda: False, 2.5)
    check("§2 Clone: no gap, stale heartbeat or grouped alert seen by the copy", not copy.stale,
          repr(copy.stale))
    check("§4.6: every heartbeat is {v, type, cluster, seq, ts} under alert.<cluster>.heartbeat",
          not hb_bad and sum(len(v) for v in hb_times.values()) > 0, repr(hb_bad[:3]))
    gaps = [b - a for c in hb_times for a, b in zip(hb_times[c], hb_times[c][1:])]
    check("§2: heartbeats come about once a second per cluster (%d intervals, 0.3..2.5 s)" % len(gaps),
          len(gaps) >= 4 and all(0.3 <= g <= 2.5 for g in gaps),
          repr(sorted(round(g, 2) for g in gaps)))
    ne_topics = {x[0] for x in seen["alert.new-energy."]}
    check("§2: an alert.new-energy. subscriber gets that cluster's heartbeat and nothing of energy-env",
          "alert.new-energy.heartbeat" in ne_topics and all(t.startswith("alert.new-energy.") for t in ne_topics),
          repr(ne_topics))
    w_topics = {x[0] for x in seen["alert.energy-env.warning"]}
    check("§2: an alert.energy-env.warning subscriber gets no heartbeat", w_topics == {"alert.energy-env.warning"},
          repr(w_topics))
    for s in subs.values():
        s.close()


# ---- main ---------------------------------------------------------------------------------

def main():
    global INGEST, ALERTS, CONTROL
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingest", required=True)
    ap.add_argument("--alerts", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--rate", type=int, required=True, help="the daemon's rate_per_connection")
    ap.add_argument("--only", default="")
    o = ap.parse_args()
    INGEST, ALERTS, CONTROL = o.ingest, o.alerts, o.control
    with open(o.registry, newline="", encoding="utf-8-sig") as f:
        reg = {r["id"]: r for r in csv.DictReader(f)}
    random.seed()
    parts = {"vectors": test_vectors, "control": lambda: test_control(reg),
             "ingest": lambda: test_ingest(reg, o.rate), "partial": lambda: test_partial(reg),
             "alerts": lambda: test_alerts(reg)}
    for name, fn in parts.items():
        if o.only and name not in o.only.split(","):
            continue
        print("# ---- %s" % name, flush=True)
        try:
            fn()
        except Exception as e:  # noqa: BLE001 -- a crash of the client is a failure, not an abort
            import traceback
            traceback.print_exc()
            no("%s: the client ran to the end" % name, "%s: %s" % (type(e).__name__, e))
    print("# ---- section 3, on every frame received", flush=True)
    for rule, (n, bad) in enc.items():
        if rule.startswith("§3 (should)") and bad:
            note("%s: %d of %d frames not: %s" % (rule, len(bad), n, bad[:3]))
            continue
        check("%s (%d frames)" % (rule, n), not bad, "%d bad: %s" % (len(bad), bad[:3]))
    print("conformance client: %d passed, %d failed" % (passed, failed), flush=True)
    ctx.destroy(linger=0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
