#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer, and the project's database exists.
# Uses DATABASE_URL / REDIS_URL when set, else servers on localhost. Where the binaries exist but no
# server runs, starts the machine's cluster, or a project-local one under .data/. Otherwise says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/martech}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

# postgres://user[:pw]@host[:port]/name
PG_USER=$(echo "$DATABASE_URL" | sed -E 's#^[a-z]+://([^:@/]+).*#\1#')
PG_HOST=$(echo "$DATABASE_URL" | sed -E 's#^[a-z]+://[^@]*@([^:/]+).*#\1#')
PG_PORT=$(echo "$DATABASE_URL" | sed -nE 's#^[a-z]+://[^@]*@[^:/]+:([0-9]+)/.*#\1#p'); PG_PORT=${PG_PORT:-5432}
PG_DB=$(echo "$DATABASE_URL" | sed -E 's#^.*/([^/?]+)(\?.*)?$#\1#')
REDIS_HOST=$(echo "$REDIS_URL" | sed -E 's#^redis://([^@]*@)?([^:/]+).*#\2#')
REDIS_PORT=$(echo "$REDIS_URL" | sed -nE 's#^redis://([^@]*@)?[^:/]+:([0-9]+).*#\2#p'); REDIS_PORT=${REDIS_PORT:-6379}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
wait_for() { for _ in $(seq 1 60); do "$1" && return 0; sleep 0.5; done; return 1; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "PostgreSQL is not answering; starting the machine's cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
if ! pg_up; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ]; then
    echo "Starting a project-local PostgreSQL under .data/postgres on port $PG_PORT"
    mkdir -p "$ROOT/.data/postgres"
    RUN=(); if [ "$(id -u)" = 0 ]; then chown -R postgres "$ROOT/.data/postgres"; RUN=(runuser -u postgres --); fi
    [ -f "$ROOT/.data/postgres/PG_VERSION" ] || "${RUN[@]}" "$PG_BIN/initdb" -D "$ROOT/.data/postgres" -U postgres --auth=trust >/dev/null
    "${RUN[@]}" "$PG_BIN/pg_ctl" -D "$ROOT/.data/postgres" -o "-p $PG_PORT -k /tmp" -l "$ROOT/.data/postgres/server.log" start >/dev/null
  fi
fi
wait_for pg_up || { echo "PostgreSQL is not reachable at $PG_HOST:$PG_PORT and no server binaries were found: install postgresql or set DATABASE_URL" >&2; exit 1; }

if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "Starting a project-local Redis on port $REDIS_PORT"
    mkdir -p "$ROOT/.data/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir "$ROOT/.data/redis" --logfile "$ROOT/.data/redis/redis.log"
  fi
fi
wait_for redis_up || { echo "Redis is not reachable at $REDIS_HOST:$REDIS_PORT and redis-server is not installed: install redis-server or set REDIS_URL" >&2; exit 1; }

if ! psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -q 1; then
  createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
  echo "Created database $PG_DB"
fi
echo "PostgreSQL ($PG_HOST:$PG_PORT/$PG_DB) and Redis ($REDIS_HOST:$REDIS_PORT) are up"
