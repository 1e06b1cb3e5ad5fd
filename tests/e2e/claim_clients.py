#!/usr/bin/env python3
"""Agents that log in (TLS, Hello accepted) and then start a frame whose header claims CLAIM
bytes but send only 10 bytes of it, holding the connection open. Samples the scheduler's RSS
(VmRSS of PID) before the claims and for SAMPLE_S seconds after, and prints
"logged_in=N base_kib=B peak_kib=P growth_kib=G".
Usage: claim_clients.py PORT PID CLAIM SAMPLE_S NAME:SECRET..."""
import struct
import sys
import time

from dx_wire import login

port, pid, claim, sample_s = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])


def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return -1


links = [login(port, *cred.split(":", 1), "claim") for cred in sys.argv[5:]]
base = rss_kib()
for s in links:
    # A heartbeat frame (type 7) that claims CLAIM bytes; 10 of them arrive.
    s.sendall(struct.pack("<I", claim) + bytes([7]) + b"x" * 10)
peak = base
end = time.time() + sample_s
while time.time() < end:
    peak = max(peak, rss_kib())
    time.sleep(0.05)
print("logged_in=%d base_kib=%d peak_kib=%d growth_kib=%d" % (len(links), base, peak, peak - base))
for s in links:
    s.close()
