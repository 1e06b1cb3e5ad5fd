#!/usr/bin/env python3
"""Unauthenticated clients against the scheduler's agent port, for the link's load test.

Opens N connections from loopback addresses 127.0.1.1 .. (at most PER_ADDRESS each, so that the
per-address cap does not refuse them): a third stay idle after TCP connect, a third send half a
TLS ClientHello, a third finish TLS and send a frame header claiming a 64 MiB frame. Writes
"ready OPENED" to STATUS once all are open, then watches them: when STOP_FILE appears (or after
MAX_S seconds) it writes "closed_by_server=C open=O" to STATUS and exits.
Usage: hostile_clients.py PORT N PER_ADDRESS STATUS STOP_FILE MAX_S"""
import os
import selectors
import socket
import ssl
import struct
import sys
import time

port, n, per_address = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
status_path, stop_path, max_s = sys.argv[4], sys.argv[5], float(sys.argv[6])

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
# Half a ClientHello: a TLS record header promising 512 bytes, and 11 of them.
HALF_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + b"\0" * 5
HUGE_HEADER = struct.pack("<I", 64 << 20) + bytes([1])

sel = selectors.DefaultSelector()
opened = 0
failed = 0
for i in range(n):
    addr = "127.0.%d.%d" % (1 + (i // per_address) // 250, 1 + (i // per_address) % 250)
    kind = i % 3
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((addr, 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        if kind == 1:
            s.sendall(HALF_HELLO)
        elif kind == 2:
            s = ctx.wrap_socket(s)
            s.sendall(HUGE_HEADER)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        opened += 1
    except OSError:
        failed += 1
with open(status_path + ".tmp", "w") as f:
    f.write("ready %d failed %d\n" % (opened, failed))
os.rename(status_path + ".tmp", status_path)

closed = 0
deadline = time.time() + max_s
drain_until = None  # once STOP_FILE appears, closes already made are still collected
while time.time() < deadline:
    if drain_until is None and os.path.exists(stop_path):
        drain_until = time.time() + 5
    if drain_until is not None and (time.time() > drain_until or closed == opened):
        break
    for key, _ in sel.select(timeout=0.2):
        s = key.fileobj
        try:
            data = s.recv(65536)
        except ssl.SSLWantReadError:
            continue
        except OSError:
            data = b""
        if not data:
            sel.unregister(s)
            s.close()
            closed += 1
with open(status_path + ".tmp", "w") as f:
    f.write("closed_by_server=%d open=%d\n" % (closed, opened - closed))
os.rename(status_path + ".tmp", status_path)
