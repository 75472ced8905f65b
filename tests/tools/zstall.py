#!/usr/bin/env python3
"""zstall -- a test tool: peers that stall. Opens N TCP connections to a
ZeroMQ endpoint, speaks ZMTP 3.x by hand (python3-zmq is not needed), and
stops talking at a chosen point:

  frame      (default) the whole NULL handshake (greeting, READY), then a
             frame header announcing --size bytes (4 MiB, the daemon's
             ZMQ_MAXMSGSIZE) and --send bytes of it; then nothing
  handshake  the first 10 bytes of the greeting; then nothing

The daemon must drop such peers after [daemon] peer_timeout (ZMTP heartbeats
for the first, ZMQ_HANDSHAKE_IVL for the second). The tool keeps reading
(and ignoring) whatever arrives, so it sees each connection closed by the
other side; it never answers a PING, as a stalled peer would not.

  zstall.py [--mode frame|handshake] [--size BYTES] [--send BYTES]
            [--minor 0|1] [--hold SECONDS] HOST PORT N

Prints "ready=N" once every connection stalled (for frame: after the
daemon's READY came back on each), then "closed=K seconds=T" each time
connections close, and at the end (all closed, or --hold seconds after the
last connection was made)
"stalled=N closed=K seconds=T". Exit 0 if every connection was closed by the
daemon, 1 if some stayed open, 2 if a connection or handshake failed.
"""
import argparse
import os
import selectors
import socket
import struct
import sys
import time


def greeting(minor):
    # signature, version 3.minor, mechanism NULL, as-server 0, filler
    return (b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, minor]) +
            b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31)


def ready_command():
    def prop(name, value):
        return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    body = b"\x05READY" + prop(b"Socket-Type", b"DEALER")
    return bytes([0x04, len(body)]) + body  # a short command


def frame_header(size):
    return bytes([0x02]) + struct.pack(">Q", size)  # long frame, last


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.got = b""
        self.ready = False  # the daemon's greeting and READY arrived
        self.closed = False
        self.retries = 0
        self.connected = False


def server_ready(buf):
    """True once buf holds the 64-byte greeting and a READY command."""
    if len(buf) < 64:
        return False
    rest = buf[64:]
    if len(rest) < 2:
        return False
    flags = rest[0]
    if flags & 0x02:
        if len(rest) < 9:
            return False
        size = struct.unpack(">Q", rest[1:9])[0]
        body = rest[9:9 + size]
    else:
        size = rest[1]
        body = rest[2:2 + size]
    return len(body) == size and body.startswith(b"\x05READY")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["frame", "handshake"], default="frame")
    ap.add_argument("--size", type=int, default=4 << 20)
    ap.add_argument("--send", type=int, default=16)
    ap.add_argument("--minor", type=int, choices=[0, 1], default=1)
    ap.add_argument("--hold", type=float, default=60.0)
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    a = ap.parse_args()

    if a.mode == "handshake":
        payload = greeting(a.minor)[:10]
    else:
        # all of it at once: ZMTP is a byte stream, the daemon parses the
        # greeting, then READY, then the frame header as they come
        payload = greeting(a.minor) + ready_command() + frame_header(a.size) + b"\x00" * a.send
    # connect in parallel: one by one, a listen backlog that overflows costs
    # a SYN retry (a second) per hundred connections
    sel = selectors.DefaultSelector()
    peers = []
    for _ in range(a.n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((a.host, a.port))
        p = Peer(s)
        peers.append(p)
        sel.register(s, selectors.EVENT_WRITE, p)
    connecting = a.n
    closed = 0
    announced = a.mode == "handshake"
    start = time.monotonic()
    give_up = start + 60
    deadline = None  # --hold counts from when every connection stalled
    while closed < a.n and (deadline is None or time.monotonic() < deadline):
        if connecting and time.monotonic() > give_up:
            print("zstall: %d connections not made within 60 s" % connecting, file=sys.stderr)
            return 2
        before = closed
        for key, _ in sel.select(timeout=0.2):
            p = key.data
            if not p.connected:
                e = p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                try:
                    if e:
                        raise OSError(e, os.strerror(e))
                    p.sock.send(payload)  # < 100 bytes: fits an empty send buffer
                except OSError as err:
                    # a full accept queue may reset a connection: make it again
                    p.retries += 1
                    if p.retries > 20:
                        print("zstall: connect: %s" % err, file=sys.stderr)
                        return 2
                    sel.unregister(p.sock)
                    p.sock.close()
                    p.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    p.sock.setblocking(False)
                    p.sock.connect_ex((a.host, a.port))
                    sel.register(p.sock, selectors.EVENT_WRITE, p)
                    continue
                p.connected = True
                sel.modify(p.sock, selectors.EVENT_READ, p)
                connecting -= 1
                continue
            try:
                data = p.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except BlockingIOError:
                continue
            if data:
                if not p.ready:
                    p.got += data
                    p.ready = server_ready(p.got)
                continue
            sel.unregister(p.sock)
            p.sock.close()
            p.closed = True
            closed += 1
        if not connecting and deadline is None:
            deadline = time.monotonic() + a.hold
            start = time.monotonic()
            if a.mode == "handshake":
                print("ready=%d" % a.n, flush=True)
        if not announced and all(p.ready or p.closed for p in peers):
            announced = True
            nready = sum(p.ready for p in peers)
            print("ready=%d" % nready, flush=True)
            if nready != a.n:
                print("zstall: %d connections closed during the handshake" % (a.n - nready),
                      file=sys.stderr)
                return 2
        if closed != before:
            print("closed=%d seconds=%.1f" % (closed, time.monotonic() - start), flush=True)
    print("stalled=%d closed=%d seconds=%.1f" % (a.n, closed, time.monotonic() - start),
          flush=True)
    for p in peers:
        if not p.closed:
            p.sock.close()
    return 0 if closed == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
