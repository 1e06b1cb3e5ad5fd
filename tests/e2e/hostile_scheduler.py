#!/usr/bin/env python3
"""A hostile 'scheduler' (plain TCP) for the agent's guards: accepts the agent, then sends
  bomb      a batch whose zstd payload (32 KiB) expands to 1 GiB
  overflow  a batch whose rows x columns overflow 64 bits
  fileput   a FilePut claiming 2^40 bytes
  offer     a FileOffer claiming 2^40 bytes
  header    a frame header claiming 4 GiB (the agent drops the link, then dials again)
  acks      100,000 unsolicited batch acks (the agent drops the link, then dials again)
and prints "NAME<TAB>answer or 'dropped'<TAB>agent RSS in KiB" for each; then
  claim     a frame header claiming 64 MiB followed by 10 bytes, held open for 1.5 s
as "claim<TAB>the agent's RSS growth meanwhile in KiB<TAB>agent RSS in KiB"; then, on a link
whose HelloReply sets 1 s heartbeats,
  trickle   a frame header claiming 100 KiB, then a byte of it every 0.5 s
as "trickle<TAB>'dropped after S s' or 'open after S s'<TAB>agent RSS in KiB"; finally "alive"
once the agent has logged in again. Usage: hostile_scheduler.py PORT_FILE AGENT_PID [PORT]"""
import socket
import struct
import sys
import time

from dx_wire import exact, frame, read_frame, string, varint

port_file, agent_pid = sys.argv[1], int(sys.argv[2])


def rss_kib():
    for line in open("/proc/%d/status" % agent_pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return -1


def zstd_frame(content_size, blocks):
    # Magic, then a single-segment frame header with an 8-byte content size.
    return b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + struct.pack("<Q", content_size) + b"".join(blocks)


def block(kind, size, body, last):
    h = (1 if last else 0) | (kind << 1) | (size << 3)
    return struct.pack("<I", h)[:3] + body


def bomb():
    n = (1 << 30) // (1 << 17)
    return zstd_frame(1 << 30, [block(1, 1 << 17, b"\0", i == n - 1) for i in range(n)])


def raw(data):
    return zstd_frame(len(data), [block(0, len(data), data, True)])


def batch(payload, rows):
    return frame(5, string("sub-hostile") + varint(1) + varint(1) + string("") + varint(rows) +
                 string(payload))


def meta(size):
    return (string("sub-hostile") + varint(1) + string("big.bin") + varint(size) +
            string("0" * 64) + string(""))


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[3]) if len(sys.argv) > 3 else 0))
listener.listen(4)
with open(port_file + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)
listener.settimeout(30)


def accept(heartbeat_s=5):
    conn, _ = listener.accept()
    conn.settimeout(30)
    kind, _ = read_frame(conn)  # Hello
    assert kind == 1
    conn.sendall(frame(2, varint(1) + b"\x01" + string("") + varint(heartbeat_s)))  # accepted
    return conn


def answer(conn, want_kind):
    try:
        while True:
            kind, payload = read_frame(conn)
            if kind == want_kind:
                text = payload.decode("utf-8", "replace")
                return "".join(c if c.isprintable() else "." for c in text)
    except (EOFError, OSError):
        return "dropped"


conn = accept()
for name, msg, reply in [("bomb", batch(bomb(), 1), 6),
                         ("overflow", batch(raw(varint(1 << 62) + varint(4)), 1), 6),
                         ("fileput", frame(8, meta(1 << 40) + b"\x00" + string(b"x")), 15),
                         ("offer", frame(9, meta(1 << 40)), 10)]:
    conn.sendall(msg)
    print("%s\t%s\t%d" % (name, answer(conn, reply), rss_kib()), flush=True)

conn.sendall(struct.pack("<I", 0xFFFFFFFF) + b"\x05")
print("header\t%s\t%d" % (answer(conn, 255), rss_kib()), flush=True)
conn.close()

conn = accept()
ack = frame(6, string("sub-hostile") + varint(1) + b"\x00" + string("") + b"\x00")
try:
    conn.sendall(ack * 100000)
except OSError:
    pass
print("acks\t%s\t%d" % (answer(conn, 255), rss_kib()), flush=True)
conn.close()

conn = accept()
base = peak = rss_kib()
conn.sendall(struct.pack("<I", 64 << 20) + b"\x05" + b"x" * 10)
end = time.time() + 1.5
while time.time() < end:
    peak = max(peak, rss_kib())
    time.sleep(0.05)
print("claim\t%d\t%d" % (peak - base, peak), flush=True)
conn.close()

conn = accept(heartbeat_s=1)
conn.sendall(struct.pack("<I", 100 << 10) + b"\x05")
conn.settimeout(0.5)
t0 = time.time()
outcome = None
while outcome is None:
    if time.time() - t0 > 12:
        outcome = "open after %.1f s" % (time.time() - t0)
        break
    try:
        conn.sendall(b"x")
        while True:  # the agent's heartbeats; an empty read is the agent dropping the link
            if conn.recv(65536) == b"":
                outcome = "dropped after %.1f s" % (time.time() - t0)
                break
    except socket.timeout:
        continue
    except OSError:
        outcome = "dropped after %.1f s" % (time.time() - t0)
print("trickle\t%s\t%d" % (outcome, rss_kib()), flush=True)
conn.close()

conn = accept()
print("alive\t%d" % rss_kib(), flush=True)
conn.close()
