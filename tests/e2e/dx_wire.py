"""The DX agent protocol's framing for the test tools written in Python (fake and hostile
schedulers, Hello probes): frames are `u32 length (type + payload, little-endian) | u8 type |
payload`, integers are varints, strings are a varint length and the bytes (docs/PROTOCOL.md)."""
import struct


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


def exact(sock, n):
    """Exactly n bytes from sock (EOFError when it closes first)."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_frame(sock):
    """(type, payload) of the next frame."""
    head = exact(sock, 5)
    return head[4], exact(sock, struct.unpack("<I", head[:4])[0] - 1)


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
