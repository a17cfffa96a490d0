#!/usr/bin/env bash
# A private PostgreSQL for the tests, on loopback, in a folder of its own (Debian's
# postgresql package; the system's own cluster, if any, is left alone).
#   scripts/postgres.sh start DIR PORT [WATCH_PID]   initdb + start; with WATCH_PID, the
#       server is stopped and DIR removed once that process ends (a test binary's cluster).
#   scripts/postgres.sh stop DIR
# With PG_DURABLE=1 (benchmarks) the cluster keeps PostgreSQL's durable defaults (fsync,
# synchronous commit, full page writes); tests throw their data away and turn them off.
# PG_OPTS adds server options (scripts/bench-scale --profile loads pg_stat_statements).
# The cluster: user "postgres" (trust, on DIR's socket only) and user "helpdesk" with the
# password in DIR/password (scram-sha-256 over TCP on 127.0.0.1).
set -euo pipefail

bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$dir" ] || { echo "postgres.sh: PostgreSQL is not installed: run scripts/test (it installs postgresql)" >&2; exit 1; }
  echo "$dir"
}

# Runs a server tool as the cluster's owner (initdb and postgres refuse to run as root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:?usage: postgres.sh start DIR PORT [WATCH_PID] | stop DIR}
dir=${2:?DIR}
data="$dir/data"
case "$cmd" in
  start)
    port=${3:?PORT}
    watch=${4:-}
    PG=$(bin)
    mkdir -p "$data"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$data"
    head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password"
    chmod 644 "$dir/password"
    as_owner "$PG/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # Loopback TCP and DIR's socket only; tests' data is thrown away: no fsync.
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${PG_DURABLE:-}" = 1 ] && durability=""
    as_owner "$PG/pg_ctl" -D "$data" -l "$data/log" -w -t 60 start \
      -o "-p $port -k $data -c listen_addresses=127.0.0.1 $durability -c max_connections=200 -c shared_buffers=64MB ${PG_OPTS:-}" \
      >/dev/null || { cat "$data/log" >&2; exit 1; }
    as_owner "$PG/psql" -q -h "$data" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE USER helpdesk CREATEDB PASSWORD '$(cat "$dir/password")'" >/dev/null
    if [ -n "$watch" ]; then
      # Stops the cluster once the test process is gone, whatever way it ended.
      setsid nohup bash -c "while kill -0 $watch 2>/dev/null; do sleep 0.3; done; \
        $(printf %q "$0") stop $(printf %q "$dir")" >/dev/null 2>&1 </dev/null &
    fi
    ;;
  stop)
    PG=$(bin)
    if [ -f "$data/postmaster.pid" ]; then
      as_owner "$PG/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: postgres.sh start DIR PORT [WATCH_PID] | stop DIR" >&2; exit 2 ;;
esac
