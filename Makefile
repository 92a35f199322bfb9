# The two commands of the README: `make demo` runs the main job, `make test` runs the suite.
# Both create .venv with the interpreter in $(PYTHON) (3.11+) and install the project into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

# `make quality` has its own venv: fightchurn pins ~40 packages of its book (pytest, packaging<24,
# xgboost, ...) that must not change the test environment.
QVENV ?= .venv-quality

.PHONY: demo test screenshots bench quality quality-seeds clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# setup.py compiles the scoring core (mypyc, ~35 s of CPU) into models/*.so; a change in models/
# rebuilds it (until then models/_native.py runs the pure Python, never stale compiled code).
NATIVE_SOURCES := $(wildcard models/*.py)

$(VENV)/.installed: pyproject.toml setup.py $(NATIVE_SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	@# pip -q hides setup.py's own line: say which core runs (a mypyc type error fell back unseen)
	@$(BIN)/python -c "import models._native as n; w = n.why_pure(); print('churnwatch: scoring core ' + ('compiled' if w is None else 'pure Python (' + w + ')'))"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/churnwatch demo $(ARGS)

# The suite waits on brokers, workers and Redis far more than it computes (one process: ~20% of a
# core, 694 s on a quiet 2-core box): its files run in TEST_WORKERS processes (pytest-xdist), a
# file's tests together in one (their module fixtures: one broker topic set, one worker run).
# TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(VENV)/.installed browser
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(ARGS)

# The README's console screenshots (docs/img/console_*.png), from the browser test.
screenshots: $(VENV)/.installed browser
	CHURNWATCH_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/python -m pytest -q tests/test_console_browser.py

# The console's browser test drives Debian's chromium (Playwright's own download fails offline):
# install it when missing and we may (CI runs as root on Debian); otherwise that test says why it skips.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser test ..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "note: installing chromium failed: the browser test will be skipped"; \
	  else echo "note: no chromium and no root/apt-get to install it: the browser test will be skipped"; fi; }

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks.run $(ARGS)

$(QVENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(QVENV)
	$(QVENV)/bin/python -m pip install -q --upgrade pip
	$(QVENV)/bin/python -m pip install -q -e '.[quality]'
	touch $@

quality: $(QVENV)/.installed
	$(QVENV)/bin/python -m benchmarks.run --only quality $(ARGS)

# The same checks on other seeds of the generated populations (benchmarks/seed_spread.py): after
# `make quality` (it reads quality.json), ~15 minutes on 2 cores; ARGS="--seeds NAME=S1,S2".
quality-seeds: $(QVENV)/.installed
	$(QVENV)/bin/python -m benchmarks.seed_spread $(ARGS)

clean:
	rm -rf $(VENV) $(QVENV) .churnwatch .pytest_cache .hypothesis
