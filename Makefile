# The few commands people type. `make run` and `make test` work on a fresh machine that
# has only Python 3.11 and access to the package registries.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test test-postgres lint format install install-dev browser migrate demo worker beat serve bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamp files: reinstall only when the requirement files change.
$(VENV)/.installed: requirements.txt $(BIN)/activate
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput

## Set up everything and run the storefront on http://127.0.0.1:8000 (embedded mode):
## the web server and a background worker that needs no server of its own.
run: migrate
	$(PY) manage.py bootstrap_demo
	$(PY) -m scripts.run_embedded $(HOST):$(PORT)

## Run the whole test suite (SQLite; PostgreSQL too with DATABASE_URL set).
test: install-dev browser
	$(BIN)/pytest $(PYTEST_ARGS)

## The database tests against PostgreSQL (server on 127.0.0.1:5432, trust auth).
test-postgres: install-dev
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/storefront} \
		$(BIN)/pytest -m "not browser and (celery_worker or not slow)" $(PYTEST_ARGS)

## Headless Chromium for the browser tests (Debian packages, installed when root with apt;
## fails when that install fails; elsewhere says what is missing and the browser tests skip).
browser: install
	$(PY) -m scripts.ensure_chromium

## Style, formatting, import contracts and missing migrations.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run

## Apply ruff's fixes and formatting.
format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Services mode: a Celery worker and the periodic scheduler (need REDIS_URL).
worker: install
	$(BIN)/celery -A config worker --loglevel=INFO --concurrency=$${CELERY_CONCURRENCY:-1}

beat: install
	$(BIN)/celery -A config beat --loglevel=INFO --schedule=$${DATA_DIR:-var}/celerybeat-schedule

## Production-style server (set DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL, REDIS_URL).
serve: install
	DJANGO_SETTINGS_MODULE=config.settings.production $(PY) manage.py collectstatic --noinput
	DJANGO_SETTINGS_MODULE=config.settings.production $(BIN)/gunicorn config.wsgi --bind $(HOST):$(PORT) --workers $${WEB_CONCURRENCY:-2}

## Every benchmark in bench/ (needs PostgreSQL, Redis and wrk for the services-mode ones),
## a table of headline figures and JSON in var/bench/. BENCH_ARGS=--quick for a short run,
## BENCH_ARGS="--only pages,index" for some of them. Results: docs/benchmarks.md.
bench: install-dev
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var media staticfiles
