#!/usr/bin/env python3
"""A hostile 'scheduler' for testing the agent: accepts one agent, then sends FilePut messages
whose paths try to leave the shared root, and prints each FileResult as 'path<TAB>code<TAB>error'.
Usage: fake_scheduler.py PORT_FILE PATH..."""
import hashlib
import socket
import sys

from dx_wire import frame, read_frame, read_string, string, varint


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
