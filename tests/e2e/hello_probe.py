#!/usr/bin/env python3
"""Logs in to the scheduler's agent port (TLS, Hello) as NAME with SECRET, from a given loopback
address, and prints one line per attempt: "<accepted 0|1> <seconds from Hello to reply> <reason>".
Modes:
  hello_probe.py PORT ADDRESS NAME SECRET [COUNT]     COUNT attempts, one connection each
  hello_probe.py PORT ADDRESS --names FILE SECRET     one attempt per name in FILE (one a line;
                                                      ADDRESS is a prefix: 127.0.3. gets .1, .2..)
  hello_probe.py PORT ADDRESS --storm SECONDS NAME SECRET
                                                      attempts as fast as answered for SECONDS;
                                                      prints "attempts=A checked=C backoff=B"
A NAME of "@SIZE" is a name of SIZE bytes; "\\n" in NAME is a newline."""
import socket
import ssl
import struct
import sys
import time

from dx_wire import exact, read_varint, string, varint

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def attempt(port, address, name, secret):
    if name.startswith("@"):
        name = "x" * int(name[1:])
    name = name.replace("\\n", "\n")
    payload = varint(1) + string(name) + string(secret) + string("probe") + string("sqlite") + varint(0)
    s = socket.socket()
    s.bind((address, 0))
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(s)
    try:
        t0 = time.perf_counter()
        s.sendall(struct.pack("<I", len(payload) + 1) + bytes([1]) + payload)
        head = exact(s, 5)
        body = exact(s, struct.unpack("<I", head[:4])[0] - 1)
        dt = time.perf_counter() - t0
        _, pos = read_varint(body, 0)
        accepted = body[pos]
        n, pos = read_varint(body, pos + 1)
        return accepted, dt, body[pos:pos + n].decode(errors="replace")
    except (EOFError, OSError) as e:
        return 0, time.perf_counter() - t0, "closed: %s" % e
    finally:
        s.close()


port, address = int(sys.argv[1]), sys.argv[2]
if sys.argv[3] == "--names":
    for i, name in enumerate(open(sys.argv[4], encoding="utf-8").read().split("\n")):
        if name:
            a, dt, why = attempt(port, "%s%d" % (address, i + 1), name, sys.argv[5])
            print(a, "%.6f" % dt, why)
elif sys.argv[3] == "--storm":
    end = time.time() + float(sys.argv[4])
    attempts = checked = backoff = 0
    while time.time() < end:
        a, dt, why = attempt(port, address, sys.argv[5], sys.argv[6])
        attempts += 1
        if "wrong secret" in why:
            checked += 1
        elif "retry later" in why:
            backoff += 1
    print("attempts=%d checked=%d backoff=%d" % (attempts, checked, backoff))
else:
    for _ in range(int(sys.argv[5]) if len(sys.argv) > 5 else 1):
        a, dt, why = attempt(port, address, sys.argv[3], sys.argv[4])
        print(a, "%.6f" % dt, why)
