#!/usr/bin/env bash
# Table exchange throughput: 1,000,000 student rows from a SQLite source through dx-scheduler
# and dx-agent over loopback into a SQLite target through ODBC, against two baselines measured
# here on the same rows and target kind (naive ODBC row-by-row upsert; native SQLite upsert);
# then PostgreSQL as the target against its naive baseline; then a table of 60 columns of
# every catalog type into PostgreSQL against COPY of the same rows through psql (the libpq
# ceiling); then peak RSS at 5,000,000 rows.
source "$(dirname "$0")/bench_lib.sh"
harness_init bench-table
ROWS=${BENCH_ROWS:-1000000}
BIG_ROWS=${BENCH_BIG_ROWS:-5000000}
PG_NAIVE_ROWS=${BENCH_PG_NAIVE_ROWS:-100000}
WIDE_ROWS=${BENCH_WIDE_ROWS:-100000}
WIDE="python3 $ROOT/tests/e2e/wide_table.py"

echo "generating $ROWS source rows"
gen_bench_source "$T/source.db" "$ROWS"

native=$("$BENCH_BIN/upsert_baseline" native --source "$T/source.db" --target "$T/native.db" --rows "$ROWS")
echo "native SQLite upsert:          $native"
naive=$("$BENCH_BIN/upsert_baseline" naive --source "$T/source.db" --target "$(sqlite_conn "$T/naive.db")" --rows "$ROWS")
echo "naive ODBC row-by-row upsert:  $naive"
rm -f "$T"/native.db* "$T"/naive.db*
native_rps=${native##*rows_per_s=}
naive_rps=${naive##*rows_per_s=}

read -r dx_rps s_rss a_rss < <(dx_load "$T/source.db" "$(sqlite_conn "$T/target.db")")
echo "DX (SQLite target):            rows_per_s=$dx_rps  scheduler peak RSS ${s_rss} MB, agent ${a_rss} MB"
[ "$(sqlite3 "$T/target.db" 'SELECT count(*) FROM student')" = "$ROWS" ] || echo "WARNING: target row count differs"
rm -f "$T"/target.db*

start_postgres "$T"
pg_naive=$("$BENCH_BIN/upsert_baseline" naive --source "$T/source.db" --target "$PG_CONN" --rows "$PG_NAIVE_ROWS")
echo "naive psqlODBC row-by-row:     $pg_naive ($PG_NAIVE_ROWS rows)"
pg_naive_rps=${pg_naive##*rows_per_s=}
psql_dx -c "DROP TABLE student"
read -r pg_rps pg_s_rss pg_a_rss < <(dx_load "$T/source.db" "$PG_CONN")
echo "DX (PostgreSQL target):        rows_per_s=$pg_rps  scheduler peak RSS ${pg_s_rss} MB, agent ${pg_a_rss} MB"

echo "generating $WIDE_ROWS rows of a 60-column table (every catalog type)"
rm -f "$T"/wide.db*
$WIDE bench-sql --rows "$WIDE_ROWS" | sqlite3 "$T/wide.db"
sqlite3 -separator $'\t' "$T/wide.db" "$($WIDE copy-select)" >"$T/wide.tsv"
$WIDE ddl pg | sed 's/CREATE TABLE wide_all/CREATE TABLE wide_copy/' | psql_dx -f - >/dev/null
copy_start=$(date +%s%N)
psql_dx -c "\\copy wide_copy FROM '$T/wide.tsv'"
copy_ns=$(( $(date +%s%N) - copy_start ))
[ "$(psql_dx -At -c 'SELECT count(*) FROM wide_copy')" = "$WIDE_ROWS" ] || echo "WARNING: COPY row count differs"
copy_rps=$(python3 -c "print(int($WIDE_ROWS / ($copy_ns / 1e9)))")
echo "COPY through psql (60 columns): rows_per_s=$copy_rps"
rm -f "$T/wide.tsv"
$WIDE manifest --connection "$(sqlite_conn "$T/wide.db")" >"$T/wide-manifest.yaml"
read -r wide_rps wide_s_rss wide_a_rss < <(dx_load_manifest "$T/wide-manifest.yaml" wide wide-agent wide-agent-secret-0001 "$PG_CONN")
echo "DX (PostgreSQL, 60 columns):   rows_per_s=$wide_rps  scheduler peak RSS ${wide_s_rss} MB, agent ${wide_a_rss} MB"
[ "$(psql_dx -At -c 'SELECT count(*) FROM wide_all')" = "$WIDE_ROWS" ] || echo "WARNING: wide target row count differs"

big_s_rss=0; big_a_rss=0
if [ "$BIG_ROWS" -gt 0 ]; then
  echo "generating $BIG_ROWS source rows for the memory check"
  gen_bench_source "$T/source.db" "$BIG_ROWS"
  read -r big_rps big_s_rss big_a_rss < <(dx_load "$T/source.db" "$(sqlite_conn "$T/target.db")")
  echo "DX at $BIG_ROWS rows:           rows_per_s=$big_rps  scheduler peak RSS ${big_s_rss} MB, agent ${big_a_rss} MB"
fi

ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }
max() { python3 -c "print(max([$(echo "$@" | tr ' ' ',')]))"; }
echo "RESULT table_sync rows_per_s=$dx_rps ratio_native=$(ratio "$dx_rps" "$native_rps") ratio_naive=$(ratio "$dx_rps" "$naive_rps") pg_rows_per_s=$pg_rps pg_ratio_naive=$(ratio "$pg_rps" "$pg_naive_rps") pg_wide_rows_per_s=$wide_rps pg_wide_ratio_copy=$(ratio "$wide_rps" "$copy_rps") scheduler_rss_mb=$(max "$s_rss" "$pg_s_rss" "$wide_s_rss" "$big_s_rss") agent_rss_mb=$(max "$a_rss" "$pg_a_rss" "$wide_a_rss" "$big_a_rss")"
