#!/usr/bin/env python3
"""A slow, lossy Ethernet bridge between two interfaces, in user space.

This kernel has no netem, so the slow-link test puts this program between the scheduler's and
the agent's network namespaces: it reads every frame from one interface (AF_PACKET) and writes
it out of the other after a one-way delay, through a rate limit (a serialising queue of
RATE bit/s per direction) and with a random loss. SIGUSR1 starts an outage (every frame
dropped, those on their way included), SIGUSR2 ends it. Counters go to stderr at exit.

    lossy_bridge.py IFACE_A IFACE_B --delay-ms 150 --loss 0.02 --rate-bps 2000000
"""
import argparse
import heapq
import os
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface_a")
    ap.add_argument("iface_b")
    ap.add_argument("--delay-ms", type=float, default=150.0)
    ap.add_argument("--loss", type=float, default=0.02)
    ap.add_argument("--rate-bps", type=float, default=2_000_000.0)
    ap.add_argument("--queue-bytes", type=int, default=256 * 1024,
                    help="per-direction queue; frames beyond it are dropped (a router's buffer)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    socks = []
    for name in (args.iface_a, args.iface_b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setblocking(False)
        socks.append(s)
    out_of = {socks[0].fileno(): socks[1], socks[1].fileno(): socks[0]}

    state = {"outage": False, "stop": False}
    signal.signal(signal.SIGUSR1, lambda *_: state.update(outage=True))
    signal.signal(signal.SIGUSR2, lambda *_: state.update(outage=False))
    signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))

    pending = []  # heap of (due, seq, socket index, frame)
    seq = 0
    # Per direction: when the link is free again, and the bytes queued.
    free_at = {0: 0.0, 1: 0.0}
    queued = {0: 0, 1: 0}
    counts = {"forwarded": 0, "lost": 0, "outage": 0, "overflow": 0}
    delay = args.delay_ms / 1000.0

    while not state["stop"]:
        timeout = 0.05
        if pending:
            timeout = max(0.0, min(timeout, pending[0][0] - time.monotonic()))
        try:
            readable, _, _ = select.select(socks, [], [], timeout)
        except InterruptedError:
            readable = []
        now = time.monotonic()
        for s in readable:
            while True:
                try:
                    frame, addr = s.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError:  # ENETDOWN while a link settles: nothing to forward yet
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own writes, seen again on this interface
                direction = 0 if s is socks[0] else 1
                if state["outage"]:
                    counts["outage"] += 1
                    continue
                if rng.random() < args.loss:
                    counts["lost"] += 1
                    continue
                if queued[direction] + len(frame) > args.queue_bytes:
                    counts["overflow"] += 1
                    continue
                start = max(now, free_at[direction])
                free_at[direction] = start + len(frame) * 8 / args.rate_bps
                queued[direction] += len(frame)
                seq += 1
                heapq.heappush(pending, (free_at[direction] + delay, seq, direction, frame))
        if state["outage"] and pending:  # the link is cut: what was on it is lost too
            counts["outage"] += len(pending)
            pending.clear()
            queued = {0: 0, 1: 0}
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, direction, frame = heapq.heappop(pending)
            queued[direction] -= len(frame)
            try:
                out_of[socks[direction].fileno()].send(frame)
                counts["forwarded"] += 1
            except OSError:
                counts["lost"] += 1
    print("bridge: " + " ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
