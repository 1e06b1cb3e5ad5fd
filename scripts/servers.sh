# Starts and stops throwaway PostgreSQL and MariaDB servers on loopback ports, for tests and
# benchmarks. Source this file; every server lives in a directory under $1 and is stopped by
# stop_servers (call it from an EXIT trap).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
_dx_servers=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs a command as `user` when we are root (database servers refuse to run as root).
_as() {
  local user=$1; shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# start_postgres DIR: exports PG_PORT and PG_CONN (ODBC, Unicode driver) for database "dx".
start_postgres() {
  local dir=$1/pg
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir" && chmod 755 "$1"
  PG_PORT=$(free_port)
  _as postgres "$PG_BIN/initdb" -D "$dir/data" -U dx --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log"; return 1; }
  _as postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null ||
    { cat "$dir/server.log"; return 1; }
  _dx_servers+=("pg:$dir")
  _as postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U dx dx
  PG_CONN="Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=$PG_PORT;Database=dx;Uid=dx;Pwd=x"
  export PG_PORT PG_CONN
}

# psql_dx ARGS...: psql on the test server's database "dx".
psql_dx() { psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U dx -d dx -v ON_ERROR_STOP=1 "$@"; }

# start_mariadb DIR: exports MARIADB_PORT and MARIADB_CONN (ODBC) for database "dx".
start_mariadb() {
  local dir=$1/mariadb
  mkdir -p "$dir/data"
  [ "$(id -u)" -eq 0 ] && chown -R mysql "$dir" && chmod 755 "$1"
  MARIADB_PORT=$(free_port)
  mariadb-install-db --no-defaults --datadir="$dir/data" --user=mysql \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
    { cat "$dir/install.log"; return 1; }
  /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --user=mysql --port="$MARIADB_PORT" \
    --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
    --skip-name-resolve --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
    --innodb-buffer-pool-size=128M --log-error="$dir/server.log" 2>>"$dir/server.log" &
  _dx_servers+=("mariadb:$dir")
  local i
  for i in $(seq 1 300); do
    mariadb --no-defaults -h 127.0.0.1 -P "$MARIADB_PORT" -u root -e "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb --no-defaults -h 127.0.0.1 -P "$MARIADB_PORT" -u root -e \
    "CREATE DATABASE dx CHARACTER SET utf8mb4; CREATE USER 'dx'@'127.0.0.1' IDENTIFIED BY 'dxpass'; GRANT ALL ON dx.* TO 'dx'@'127.0.0.1';" ||
    { cat "$dir/server.log"; return 1; }
  MARIADB_CONN="Driver=MariaDB Unicode;Server=127.0.0.1;Port=$MARIADB_PORT;Database=dx;User=dx;Password=dxpass;CHARSET=utf8mb4"
  export MARIADB_PORT MARIADB_CONN
}

mariadb_dx() { mariadb --no-defaults -h 127.0.0.1 -P "$MARIADB_PORT" -u dx -pdxpass dx "$@"; }

stop_servers() {
  local s
  for s in "${_dx_servers[@]}"; do
    case $s in
      pg:*) _as postgres "$PG_BIN/pg_ctl" -D "${s#pg:}/data" -m immediate stop >/dev/null 2>&1 ;;
      mariadb:*)
        local pid
        pid=$(cat "${s#mariadb:}/mysqld.pid" 2>/dev/null) && kill "$pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done ;;
    esac
  done
  _dx_servers=()
}

# stop_postgres / resume_postgres: take the test server down and up again (same port and data).
stop_postgres() {
  local s
  for s in "${_dx_servers[@]}"; do
    case $s in pg:*) _as postgres "$PG_BIN/pg_ctl" -D "${s#pg:}/data" -m fast -w stop >/dev/null ;; esac
  done
}
resume_postgres() {
  local s
  for s in "${_dx_servers[@]}"; do
    case $s in pg:*) _as postgres "$PG_BIN/pg_ctl" -D "${s#pg:}/data" -l "${s#pg:}/server.log" -w -t 60 \
      -o "-p $PG_PORT -k ${s#pg:} -c listen_addresses=127.0.0.1" start >/dev/null ;; esac
  done
}
