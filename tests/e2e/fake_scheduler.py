#!/usr/bin/env python3
"""A hostile 'scheduler' for testing the agent: accepts one agent, then sends FilePut messages
whose paths try to leave the shared root, and prints each FileResult as 'path<TAB>code<TAB>error'.
Usage: fake_scheduler.py PORT_FILE PATH..."""
import hashlib
import socket
import struct
import sys


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(b):
    if isinstance(b, str):
        b = b.encode()
    return varint(len(b)) + b


def frame(kind, payload):
    return struct.pack("<I", len(payload) + 1) + bytes([kind]) + payload


def read_frame(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    head = exact(5)
    return head[4], exact(struct.unpack("<I", head[:4])[0] - 1)


def read_varint(buf, pos):
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def read_string(buf, pos):
    n, pos = read_varint(buf, pos)
    return buf[pos:pos + n].decode(), pos + n


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(1)
with open(sys.argv[1], "w") as f:
    f.write(str(listener.getsockname()[1]))
listener.settimeout(30)
conn, _ = listener.accept()
conn.settimeout(30)
kind, _ = read_frame(conn)                       # Hello
assert kind == 1
conn.sendall(frame(2, varint(1) + b"\x01" + string("") + varint(5)))  # HelloReply accepted
data = b"escaped!\n"
for path in sys.argv[2:]:
    meta = (string("hostile") + varint(1) + string(path) + varint(len(data)) +
            string(hashlib.sha256(data).hexdigest()) + string(""))
    conn.sendall(frame(8, meta + b"\x00" + string(data)))
    while True:
        kind, payload = read_frame(conn)
        if kind == 15:
            break
    _, pos = read_string(payload, 0)
    rpath, pos = read_string(payload, pos)
    code = payload[pos]
    error, pos = read_string(payload, pos + 1)
    print("%s\t%d\t%s" % (rpath, code, error), flush=True)
conn.close()
