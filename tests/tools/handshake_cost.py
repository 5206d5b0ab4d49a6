#!/usr/bin/env python3
"""handshake_cost.py - what a stranger with no key costs a running replica.

Plays a stranger against one replica (address and process id given): each
attempt connects, sends a HELLO naming a replica id (default 1) with a random
ephemeral key, answers the replica's HELLO (if it sends one) with 64 random
bytes as AUTH, and waits for the replica to hang up. The replica's CPU time
(utime + stime from /proc/PID/stat) is read before and after.

  cost   -n N          N attempts one after the other: CPU per attempt
  flood  -d SECONDS -c CONNS
                       CONNS attempts in parallel for SECONDS: attempts
                       the replica served (answered with a HELLO) per
                       second, attempts refused, and the replica's CPU share

Prints one JSON object. Only for 127.0.0.1 test clusters.
"""
import argparse
import json
import os
import selectors
import socket
import struct
import time

VERSION = 2
HELLO, AUTH = 1, 2
ROLES = {"replica": 1, "client": 2}


def hello(role, ident):
    body = struct.pack("<BBBI", VERSION, HELLO, role, ident)
    body += os.urandom(32) + os.urandom(32)
    return struct.pack("<I", len(body)) + body


def auth():
    body = struct.pack("<BB", VERSION, AUTH) + os.urandom(64)
    return struct.pack("<I", len(body)) + body


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Attempt:
    """One stranger connection: HELLO out, wait for theirs, AUTH, EOF."""

    def __init__(self, addr, role, ident):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(addr)
        self.out = hello(role, ident)
        self.inbuf = b""
        self.served = False  # the replica sent its HELLO
        self.sent_auth = False

    def on_writable(self):
        try:
            n = self.sock.send(self.out)
        except OSError:
            return False
        self.out = self.out[n:]
        return True

    def on_readable(self):
        try:
            data = self.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False
        self.inbuf += data
        if not self.sent_auth and len(self.inbuf) >= 6 and \
                self.inbuf[5] == HELLO:
            self.served = True
            self.sent_auth = True
            self.out += auth()
        return True


def run(addr, role, ident, total, parallel, seconds):
    sel = selectors.DefaultSelector()
    live = {}
    started = served = refused = 0
    end = time.monotonic() + seconds if seconds else None

    def want_more():
        if end is not None:
            return time.monotonic() < end
        return started < total

    while True:
        while len(live) < parallel and want_more():
            a = Attempt(addr, role, ident)
            live[a.sock.fileno()] = a
            sel.register(a.sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                         a)
            started += 1
        if not live:
            break
        for key, ev in sel.select(timeout=1.0):
            a = key.data
            ok = True
            if ev & selectors.EVENT_READ:
                ok = a.on_readable()
            if ok and ev & selectors.EVENT_WRITE and a.out:
                ok = a.on_writable()
            if not ok:
                sel.unregister(a.sock)
                del live[a.sock.fileno()]
                a.sock.close()
                served += a.served
                refused += not a.served
            else:
                sel.modify(a.sock, selectors.EVENT_READ |
                           (selectors.EVENT_WRITE if a.out else 0), a)
    return started, served, refused


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["cost", "flood"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--role", choices=ROLES, default="replica")
    p.add_argument("--id", type=int, default=1)
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("-c", type=int, default=64)
    p.add_argument("-d", type=float, default=5.0)
    a = p.parse_args()
    addr = (a.host, a.port)
    c0, t0 = cpu_seconds(a.pid), time.monotonic()
    if a.mode == "cost":
        started, served, refused = run(addr, ROLES[a.role], a.id, a.n, 1,
                                       None)
    else:
        started, served, refused = run(addr, ROLES[a.role], a.id, 0, a.c,
                                       a.d)
    c1, t1 = cpu_seconds(a.pid), time.monotonic()
    cpu = c1 - c0
    print(json.dumps({
        "mode": a.mode, "attempts": started, "served": served,
        "refused": refused, "seconds": round(t1 - t0, 3),
        "replica_cpu_s": round(cpu, 3),
        "replica_cpu_us_per_attempt": round(cpu * 1e6 / max(started, 1), 1),
        "replica_cpu_share": round(cpu / (t1 - t0), 3),
        "served_per_s": round(served / (t1 - t0), 1),
    }))


if __name__ == "__main__":
    main()
