# MarTech Hub. `make run`: set up and start the whole portal with demo data. `make test`: lint and every test.
SHELL := /bin/bash
UV ?= $(shell command -v uv || echo .venv-tools/bin/uv)
PY := .venv/bin/python
# A local run is plain HTTP on 127.0.0.1: production settings otherwise, cookies allowed without TLS.
RUN_ENV := DJANGO_DEBUG=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false

.PHONY: run test install services migrate messages static seed lint format bench clean

$(UV):
	python3 -m venv .venv-tools && .venv-tools/bin/pip install -q uv

install: $(UV)
	$(UV) sync --frozen
	@command -v msgfmt >/dev/null || { echo "gettext (msgfmt) is missing: apt-get install gettext" >&2; exit 1; }

services:
	bash .ci/ensure_services.sh

messages: install
	$(PY) manage.py compilemessages --ignore=.venv --ignore=.data -v 0

migrate: install services
	$(PY) manage.py migrate --noinput -v 0

static: install
	$(PY) manage.py collectstatic --noinput -v 0

seed: migrate
	$(PY) manage.py seed_demo

run: install services messages static migrate seed
	@mkdir -p .data
	@echo "MarTech Hub on $$(DJANGO_SETTINGS_MODULE=config.settings $(PY) -c 'from django.conf import settings; print(settings.SITE_URL)' 2>/dev/null || echo http://127.0.0.1:8000) (demo logins above)"
	$(RUN_ENV) .venv/bin/honcho start -f Procfile

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	python3 .ci/po.py check

# Two test processes (pytest-xdist, handing out tests in collection order, so each process runs its
# transactional tests after the others, as pytest-django orders them): each has its own test database, Redis
# database and media folder (config/settings.py, TEST_WORKER). `make test PYTEST_ARGS=-n0` runs in one.
PYTEST_ARGS ?= -n 2 --dist load
test: install services messages lint
	.venv/bin/pytest -q $(PYTEST_ARGS)

format: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

clean:
	rm -rf .data/staticfiles .data/test-media
