#!/usr/bin/env python3
"""A consumer program writing its own table in the database DX delivers into, as schools'
programs do, while DX applies batches; and the analysis of what it saw.

  consumer_writer.py sqlite DB SUBSCRIPTION LOG STOPFILE
      Until STOPFILE exists: one short write transaction on its own table `consumer_log`
      (BEGIN IMMEDIATE, insert, commit), then reads DX's ledger position. Logs one line per
      iteration: "unix_ms batch_seq write_ms ok|error".
  consumer_writer.py analyze LOG START_MS END_MS
      Prints the longest time DX's ledger did not move between START_MS and END_MS (DX's
      longest stall), the consumer's longest single write, writes made and failed.
"""
import sqlite3
import sys
import time


def now_ms():
    return int(time.time() * 1000)


def sqlite_loop(db, subscription, log_path, stop_path):
    import os
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS consumer_log (n INTEGER PRIMARY KEY, note TEXT)")
    n = 0
    with open(log_path, "w") as log:
        while not os.path.exists(stop_path):
            n += 1
            start = now_ms()
            ok = "ok"
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO consumer_log VALUES (?, ?)", (n, "本地写入 %d" % n))
                time.sleep(0.005)  # a consumer transaction that does a little work
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                ok = "error:" + str(e).replace(" ", "_")
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            took = now_ms() - start
            row = conn.execute("SELECT batch_seq FROM dx_ledger WHERE subscription = ?",
                               (subscription,)).fetchone()
            log.write("%d %d %d %s\n" % (now_ms(), row[0] if row else 0, took, ok))
            log.flush()
            time.sleep(0.01)


def analyze(log_path, start_ms, end_ms):
    samples = []
    with open(log_path) as f:
        for line in f:
            t, seq, took, ok = line.split()
            samples.append((int(t), int(seq), int(took), ok))
    writes = sum(1 for s in samples if s[3] == "ok")
    failed = [s for s in samples if s[3] != "ok"]
    longest_write = max((s[2] for s in samples), default=0)
    # DX's stall: the longest interval within the run in which its ledger did not move.
    changes = [start_ms]
    last_seq = None
    for t, seq, _, _ in samples:
        if start_ms <= t <= end_ms and last_seq is not None and seq != last_seq:
            changes.append(t)
        last_seq = seq
    changes.append(end_ms)
    stall = max(b - a for a, b in zip(changes, changes[1:]))
    print("dx_longest_stall_ms=%d consumer_longest_write_ms=%d consumer_writes=%d "
          "consumer_failures=%d ledger_moves=%d" % (stall, longest_write, writes, len(failed),
                                                    len(changes) - 2))
    for s in failed[:3]:
        print("failure: %s" % (s,))


def main():
    if sys.argv[1] == "sqlite":
        sqlite_loop(*sys.argv[2:6])
    elif sys.argv[1] == "analyze":
        analyze(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: consumer_writer.py sqlite|analyze ...")


if __name__ == "__main__":
    main()
