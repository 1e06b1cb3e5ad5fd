"""The DX agent protocol's framing for the test tools written in Python (fake and hostile
schedulers, Hello probes): frames are `u32 length (type + payload, little-endian) | u8 type |
payload`, integers are varints, strings are a varint length and the bytes (docs/PROTOCOL.md)."""
import socket
import ssl
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


def login(port, name, secret, version):
    """A TLS connection to the agent port on 127.0.0.1:PORT (the certificate is not checked),
    logged in as NAME with a Hello naming itself VERSION; SystemExit when the login is refused."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    payload = varint(1) + string(name) + string(secret) + string(version) + string("sqlite") + varint(0)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
    s.sendall(frame(1, payload))
    _, body = read_frame(s)
    _, pos = read_varint(body, 0)
    if body[pos] != 1:
        raise SystemExit("login as %s refused: %r" % (name, body))
    return s
