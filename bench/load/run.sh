#!/usr/bin/env bash
# Load run: bench/load/run.sh [USERS=100] [DURATION=2m]
# Starts gunicorn (production settings) and a Celery worker on a separate database (made afresh), seeds demo data and
# signs in the load-test users beforehand (bench/load/prepare.py), runs locust headless (it stops by
# itself), prints per-endpoint figures, stops everything. LOAD_WAIT="MIN,MAX" sets the think time (s),
# LOAD_SPAWN_RATE the users started per second (5: all 100 at work after 20 s), LOAD_REQUEST_LOG=FILE
# writes every request (time, name, ms, failed) for finding when slow ones happen.
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${1:-100}
DURATION=${2:-2m}
PORT=${LOAD_PORT:-8011}
export DATABASE_URL=${LOAD_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/martech_load}
export REDIS_URL=${LOAD_REDIS_URL:-redis://127.0.0.1:6379/14}
export DJANGO_DEBUG=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false LOG_LEVEL=WARNING
export API_THROTTLE_USER=100000/min API_THROTTLE_ANON=100000/min AXES_ENABLED=false
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost STATIC_ROOT=.data/load-static
DB=${DATABASE_URL##*/}
# A fresh database each run (what earlier runs filed and imported would slow the next one down);
# LOAD_KEEP_DB=1 keeps it.
if [ "${LOAD_KEEP_DB:-0}" != 1 ]; then dropdb -h 127.0.0.1 -U postgres --if-exists --force "$DB"; fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1 || createdb -h 127.0.0.1 -U postgres "$DB"
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py collectstatic --noinput -v 0
.venv/bin/python manage.py seed_demo --small >/dev/null
mkdir -p .data
.venv/bin/python bench/load/prepare.py .data/load-users.json
WEB_BIND=127.0.0.1:$PORT WEB_WORKERS=${LOAD_WEB_WORKERS:-4} WEB_THREADS=${LOAD_WEB_THREADS:-2} WEB_ACCESS_LOG= .venv/bin/gunicorn -c config/gunicorn.conf.py \
  --log-level warning config.wsgi:application &
WEB=$!
# The worker runs at a lower CPU priority: on a shared box interactive requests go first (in production
# workers have machines of their own, docs/scaling.md).
nice -n 10 .venv/bin/celery -A config worker --loglevel=WARNING --concurrency=1 &
WORKER=$!
trap 'kill $WEB $WORKER 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break; sleep 0.5; done
LOAD_USERS_FILE=.data/load-users.json .venv/bin/locust -f bench/load/locustfile.py --headless -u "$USERS" -r "${LOAD_SPAWN_RATE:-5}" -t "$DURATION" --host "http://127.0.0.1:$PORT" \
  --only-summary --stop-timeout 10 2>&1 | grep -vE '^\s*$' | tail -60
