# OneNumber: `make run` starts the server with demo accounts, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

WEB    := onenumber/web/phone

.PHONY: run test lint bench clean peers runtime-peers web greeting

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: installing python3-venv"; \
	  scripts/apt-install.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed runtime-peers web greeting
	$(BIN)/onenumber serve --demo $(ARGS)

peers:
	@scripts/install-peers.sh

runtime-peers:
	@scripts/install-peers.sh --runtime

# The web phone page (/phone): JsSIP bundled by esbuild into $(WEB)/dist (git-ignored), when npm exists.
web:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(WEB)/dist/phone.js; \
	else echo "npm not installed: the web phone page is not built (scripts/install-peers.sh installs nodejs, npm)"; fi

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	@touch $@

$(WEB)/dist/phone.js: $(WEB)/node_modules/.installed $(WEB)/build.mjs $(wildcard $(WEB)/src/*)
	cd $(WEB) && npm run build

# the default voicemail greeting, spoken by espeak-ng when absent (never committed: /data/ is ignored)
greeting: data/greeting-default.wav

data/greeting-default.wav: | $(VENV)/.installed
	$(BIN)/python -m onenumber.media.greeting $@

test: $(VENV)/.installed-test peers web greeting
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'
	@touch $@ $(VENV)/.installed $(VENV)/.installed-test

bench: $(VENV)/.installed-bench
	@scripts/install-peers.sh --bench
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info $(WEB)/node_modules $(WEB)/dist
