#!/usr/bin/env bash
# Load run: bench/load/run.sh [USERS=100] [DURATION=2m]
# Starts gunicorn (production settings) and a Celery worker on a separate database, seeds demo data and
# load-test users, runs locust headless (it stops by itself), prints per-endpoint figures, stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${1:-100}
DURATION=${2:-2m}
PORT=${LOAD_PORT:-8011}
export DATABASE_URL=${LOAD_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/martech_load}
export REDIS_URL=${LOAD_REDIS_URL:-redis://127.0.0.1:6379/12}
export DJANGO_DEBUG=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false LOG_LEVEL=WARNING
export API_THROTTLE_USER=100000/min API_THROTTLE_ANON=100000/min AXES_ENABLED=false
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost STATIC_ROOT=.data/load-static
DB=${DATABASE_URL##*/}
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1 || createdb -h 127.0.0.1 -U postgres "$DB"
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py collectstatic --noinput -v 0
.venv/bin/python manage.py seed_demo --small >/dev/null
.venv/bin/python - <<'PY'
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from accounts.models import User
from accounts.services import user_create
for prefix, role, team, n in [("load_req_", "requester", "E-commerce ops", 20), ("load_agent_", "agent", "MarTech support", 5), ("load_mgr_", "manager", "MarTech support", 2)]:
    for i in range(n):
        if not User.objects.filter(username=f"{prefix}{i}").exists():
            user_create(username=f"{prefix}{i}", role=role, team_name=team, password="load-test-pw-1")
PY
.venv/bin/gunicorn config.wsgi:application --bind 127.0.0.1:$PORT --workers 4 --threads 4 --log-level warning &
WEB=$!
.venv/bin/celery -A config worker --loglevel=WARNING --concurrency=1 &
WORKER=$!
trap 'kill $WEB $WORKER 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break; sleep 0.5; done
.venv/bin/locust -f bench/load/locustfile.py --headless -u "$USERS" -r 20 -t "$DURATION" --host "http://127.0.0.1:$PORT" \
  --only-summary --stop-timeout 10 2>&1 | grep -vE '^\s*$' | tail -60
