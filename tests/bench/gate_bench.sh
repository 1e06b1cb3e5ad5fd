#!/usr/bin/env bash
# What the sharing workflow's delivery gate costs the table exchange: the time of the check made
# before every batch (is the subscription still active?) and before every run (is it within its
# approved application?), on a store of 1000 subscriptions, against the time of one batch of
# 5000 rows measured in the same run (DX, SQLite source to SQLite target over loopback).
source "$(dirname "$0")/bench_lib.sh"
harness_init bench-gate
ROWS=${BENCH_ROWS:-200000}

gen_bench_source "$T/source.db" "$ROWS"
read -r dx_rps _ _ < <(dx_load "$T/source.db" "$(sqlite_conn "$T/target.db")")
batch_ms=$(python3 -c "print(round(5000 / $dx_rps * 1000, 2))")
echo "DX (SQLite target, $ROWS rows): rows_per_s=$dx_rps, one batch of 5000 rows = ${batch_ms} ms"
costs=$("$BENCH_BIN/gate_cost" --store "$T/gate.db" --calls 20000 --subscriptions 1000)
echo "gate checks, 1000 subscriptions in the store: $costs"
active_us=$(echo "$costs" | sed -n 's/.*still_active_us=\([0-9.]*\).*/\1/p')
allowed_us=$(echo "$costs" | sed -n 's/.*delivery_allowed_us=\([0-9.]*\).*/\1/p')
pct=$(python3 -c "print(round($active_us / ($batch_ms * 1000) * 100, 3))")
echo "the per-batch check costs ${pct}% of a batch"
echo "RESULT gate still_active_us=$active_us delivery_allowed_us=$allowed_us batch_ms=$batch_ms batch_overhead_pct=$pct"
