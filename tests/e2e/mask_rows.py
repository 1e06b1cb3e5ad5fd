#!/usr/bin/env python3
"""Masks tab-separated rows the way the scheduler must (脱敏), computed independently of DX:
reads rows on stdin, one column per SPEC, and prints them masked. SPEC is a column name (kept),
or NAME=hash (HMAC-SHA256 under KEY, hex) or NAME=partial:FIRST:LAST (characters shown at the
start and the end, the rest as '*'; at least one character is always hidden).
Usage: mask_rows.py KEY SPEC..."""
import hashlib
import hmac
import sys


def partial(v, first, last):
    n = len(v)  # characters
    if n == 0:
        return v
    f = min(first, n - 1)
    l = min(last, n - 1 - f)
    return v[:f] + "*" * (n - f - l) + v[n - l:]


key, specs = sys.argv[1].encode(), sys.argv[2:]
for line in sys.stdin:
    out = []
    for spec, v in zip(specs, line.rstrip("\n").split("\t")):
        method = spec.split("=", 1)[1] if "=" in spec else "keep"
        if method == "hash":
            v = hmac.new(key, v.encode(), hashlib.sha256).hexdigest()
        elif method.startswith("partial"):
            _, f, l = method.split(":")
            v = partial(v, int(f), int(l))
        out.append(v)
    print("\t".join(out))
