#!/usr/bin/env python3
"""An agent that logs in (TLS, Hello accepted), starts a frame claiming 100 KiB and then sends
one byte of it every EVERY_S seconds, meeting any deadline that only asks for some progress.
Stops when the scheduler closes the link or after MAX_S seconds, and prints
"closed_after_s=S sent=N" or "open_after_s=S sent=N".
Usage: trickle_client.py PORT NAME SECRET EVERY_S MAX_S"""
import socket
import ssl
import struct
import sys
import time

from dx_wire import login

port, name, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
every_s, max_s = float(sys.argv[4]), float(sys.argv[5])
s = login(port, name, secret, "trickle")
s.sendall(struct.pack("<I", 100 << 10) + bytes([7]))  # a heartbeat frame claiming 100 KiB
t0 = time.time()
sent = 0
s.settimeout(every_s)
while time.time() - t0 < max_s:
    try:
        s.sendall(b"x")
        sent += 1
        if s.recv(65536) == b"":  # heartbeats come and go; an empty read is the close
            break
    except socket.timeout:
        continue
    except (OSError, ssl.SSLError):
        break
else:
    print("open_after_s=%.1f sent=%d" % (time.time() - t0, sent))
    sys.exit(0)
print("closed_after_s=%.1f sent=%d" % (time.time() - t0, sent))
