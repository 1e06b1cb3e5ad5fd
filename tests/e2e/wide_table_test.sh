#!/usr/bin/env bash
# A table of 60 columns of every catalog type, with awkward values (NULL and empty strings,
# non-BMP characters, emoji, quotes, backslashes, tabs, newlines, char(n) with trailing spaces,
# text over 4,000 characters, binary with zero bytes, decimals at their limits, fractional
# seconds), from one DBMS to another: full load, changes, a later run, a resync. After each,
# the source and the target are dumped by their own command-line clients (sqlite3, psql,
# mariadb — not DX's code) and compared cell by cell (tests/e2e/wide_table.py).
#   wide_table_test.sh sqlite_pg | pg_mariadb | mariadb_sqlite
# sqlite_pg uses upper-case catalog names: the PostgreSQL target must hold them folded to
# lower case (target.name_case default), queried here without quotes.
source "$(dirname "$0")/harness.sh"
PAIR=${1:?usage: wide_table_test.sh sqlite_pg|pg_mariadb|mariadb_sqlite}
harness_init "wide_$PAIR"
GEN="python3 $E2E_DIR/wide_table.py"
ROWS=${WIDE_ROWS:-2000}
UPPER=""
case $PAIR in
  sqlite_pg) SRC=sqlite DST=pg UPPER=--upper; start_postgres "$T" ;;
  pg_mariadb) SRC=pg DST=mariadb; start_postgres "$T"; start_mariadb "$T" ;;
  mariadb_sqlite) SRC=mariadb DST=sqlite; start_mariadb "$T" ;;
  *) fail "unknown pair $PAIR" ;;
esac

# run_sql DBMS DATABASE-ROLE: runs SQL from stdin with the DBMS's own client.
run_sql() {
  case $1 in
    sqlite) sqlite3 -bail "$2" >/dev/null ;;
    pg) psql_dx -f - >/dev/null ;;
    mariadb) mariadb_dx ;;
  esac
}
# dump DBMS ROLE NAMES TABLE: the canonical rows, one line per row.
dump() {
  local sql
  sql=$($GEN select "$1" --names "$3" --table "$4")
  case $1 in
    sqlite) sqlite3 "$2" "$sql" ;;
    pg) psql_dx -At -c "$sql" ;;
    mariadb) mariadb_dx -N -B -r -e "$sql" ;;
  esac
}
conn_of() {
  case $1 in
    sqlite) sqlite_conn "$2" ;;
    pg) echo "$PG_CONN" ;;
    mariadb) echo "$MARIADB_CONN" ;;
  esac
}

SRC_DB=$T/source.db
DST_DB=$T/target.db
$GEN ddl $SRC $UPPER | run_sql $SRC "$SRC_DB"
$GEN load $SRC --rows "$ROWS" $UPPER | run_sql $SRC "$SRC_DB"

write_scheduler_config "safety_lag_s: 0, batch_rows: 500, window: 4, retry_max_s: 2"
start_scheduler
$GEN manifest --connection "$(conn_of $SRC "$SRC_DB")" $UPPER >"$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent w wide-agent wide-agent-secret-0001 "$(conn_of $DST "$DST_DB")"
wait_for 20 "agent online" agent_online wide-agent

src_names=catalog; [ -n "$UPPER" ] && src_names=upper
dst_names=catalog; [ "$DST" = pg ] && dst_names=lower   # folded by the agent: no quotes needed
check() {
  dump $SRC "$SRC_DB" $src_names wide_all >"$T/source.dump"
  dump $DST "$DST_DB" $dst_names wide_all >"$T/target.dump"
  local out
  out=$($GEN compare "$T/source.dump" "$T/target.dump") || { echo "$out"; dxctl runs -n 3; fail "$1: target differs from source"; }
  pass "$1: $out ($SRC → $DST)"
}

dxctl run wide --wait >/dev/null || fail "full load: $(last_run_field wide error)"
check "full load"
if [ "$DST" = pg ]; then
  [ "$(psql_dx -At -c "SELECT count(*) FROM information_schema.columns WHERE table_name = 'wide_all' AND column_name = lower(column_name)")" = 60 ] ||
    fail "PostgreSQL target names are not lower case"
  pass "PostgreSQL target: table and 60 columns in lower case, queried without quotes"
fi

$GEN update $SRC --rows "$ROWS" $UPPER | run_sql $SRC "$SRC_DB"
next_second
dxctl run wide --wait >/dev/null || fail "incremental run: $(last_run_field wide error)"
[ "$(last_run_field wide rows)" -ge 300 ] || fail "incremental run moved $(last_run_field wide rows) rows"
check "after updates and inserts"

dxctl run wide --wait >/dev/null || fail "a later run: $(last_run_field wide error)"
check "a later run over the existing table"

# Reconciliation reads both sides back through different drivers: every type's canonical form
# must agree, so a dry run over the identical copy finds nothing, and one damaged row is found.
reconcile_counts() {
  dxctl --json reconcile wide --dry-run --wait |
    python3 -c "import json,sys; c=json.load(sys.stdin)['reconcile']; print(c['compared'], c['missing'], c['extra'], c['changed'])"
}
counts=$(reconcile_counts) || fail "dry-run reconciliation: $(last_run_field wide error)"
read -r compared missing extra changed <<<"$counts"
[ "$compared" -gt 0 ] && [ "$missing $extra $changed" = "0 0 0" ] ||
  fail "reconciliation of identical copies ($SRC → $DST) reports compared/missing/extra/changed $counts"
pass "reconciliation of the identical copy: $compared rows compared, no difference ($SRC → $DST)"

dxctl resync wide --wait >/dev/null || fail "resync: $(last_run_field wide error)"
check "after resync"
