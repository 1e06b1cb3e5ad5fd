#!/usr/bin/env bash
# Measures the largest multi-row upsert each target driver accepts (bound parameters per
# statement), for SQLite (sqliteodbc), PostgreSQL (psqlODBC) and MariaDB (MariaDB ODBC), with
# the agent's own statement shape and connection options. Run by hand:
#   bash tests/bench/param_limits.sh
# The figures size SqlDialect::RowsPerStatement (docs/PERFORMANCE.md, "Statement sizes").
source "$(dirname "$0")/bench_lib.sh"
harness_init param-limits
start_postgres "$T"
start_mariadb "$T"
for target in "sqlite:$(sqlite_conn "$T/probe.db")" "postgresql:$PG_CONN" "mariadb:$MARIADB_CONN"; do
  echo "== ${target%%:*}"
  "$BENCH_BIN/param_limits" --connection "${target#*:}" "$@"
done
