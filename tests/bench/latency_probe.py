#!/usr/bin/env python3
"""Commits rows one at a time at the source (SQLite) and measures how long each takes to become
visible in the agent's local table. Prints one latency in milliseconds per line."""
import random
import sqlite3
import sys
import time

source, target, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
src = sqlite3.connect(source, isolation_level=None)
rng = random.Random(7)
for i in range(samples):
    time.sleep(rng.uniform(0.1, 1.1))  # spread commits over the poll cycle
    row_id = 10_000_000 + i
    ut = time.strftime("%Y-%m-%d %H:%M:%S")
    src.execute("INSERT INTO student VALUES (?, '测试', '310104200001011234', '3101040001', "
                "'2000-01-01', 1, ?)", (row_id, ut))
    t0 = time.time()
    deadline = t0 + 30
    while time.time() < deadline:
        try:
            dst = sqlite3.connect("file:%s?mode=ro" % target, uri=True)
            found = dst.execute("SELECT 1 FROM student WHERE id = ?", (row_id,)).fetchone()
            dst.close()
        except sqlite3.Error:
            found = None
        if found:
            break
        time.sleep(0.005)
    print(int((time.time() - t0) * 1000), flush=True)
