# Reach — the two commands a fresh machine needs: `make run` and `make test`.
# With no DATABASE_URL / REDIS_URL: the embedded default (SQLite in var/, in-process broker, worker and beat).
# With them set (or in .env): PostgreSQL and Redis; `make run` still runs the worker and beat in-process.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test test-embedded test-all test-slow install install-dev lint migrate demo serve fakemeta bench clean messages

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Reach needs Python 3.11 (found %s); set PYTHON=/path/to/python3.11" % sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The console's translations: locale/*/LC_MESSAGES/django.po is committed, the .mo is built here (GNU
# gettext's msgfmt: apt-get install gettext).
messages: install
	$(BIN)/python manage.py compilemessages --ignore=.venv --ignore=var

migrate: install messages
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py bootstrapdemo

# Daphne + a Celery worker and beat in one process (always in the embedded default; --with-worker makes the
# external mode do the same). Production runs them as separate processes: docker/compose.yaml.
run: demo
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT) --with-worker

serve: install
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The suite against what the environment (or .env) says: PostgreSQL and Redis, else the embedded default.
test: lint messages
	$(BIN)/pytest $(PYTEST_ARGS)

# The suite on the embedded default (SQLite + fakeredis) whatever the environment says: empty URLs win
# over .env.
test-embedded: lint messages
	DATABASE_URL= REDIS_URL= $(BIN)/pytest $(PYTEST_ARGS)

# Both sides of every database-vendor fork: PostgreSQL + Redis (needs DATABASE_URL and REDIS_URL), then
# the embedded default. What CI runs (.ci/run).
test-all: lint messages
	@$(BIN)/python -c 'import os; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reach.settings"); \
		from django.conf import settings as s; \
		s.IS_POSTGRES and not s.EMBEDDED or exit("test-all needs DATABASE_URL (PostgreSQL) and REDIS_URL set")'
	$(BIN)/pytest $(PYTEST_ARGS)
	@# The slow tests (their own PostgreSQL, Redis and processes, mostly waiting on them) run beside the
	@# embedded suite (one core's worth of work); their output follows the embedded suite's.
	@log=$$(mktemp); $(BIN)/pytest -m slow $(PYTEST_ARGS) >"$$log" 2>&1 & slow=$$!; \
	DATABASE_URL= REDIS_URL= $(BIN)/pytest $(PYTEST_ARGS); embedded=$$?; \
	wait $$slow; slowrc=$$?; echo "--- pytest -m slow (PostgreSQL + Redis) ---"; cat "$$log"; rm -f "$$log"; \
	test $$embedded -eq 0 && test $$slowrc -eq 0

# The slow tests alone (fault suite, SIGTERM of real processes): PostgreSQL + Redis.
test-slow: lint
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

fakemeta: install
	$(BIN)/python manage.py fakemeta --port 9100 --webhook-url http://$(HOST):$(PORT)/webhooks/meta

bench: install-dev
	@ls bench/*.py | sed 's/^/  /'; echo "run one with: $(BIN)/python bench/<name>.py --help"

clean:
	rm -rf $(VENV) var
