# OneNumber: `make run` starts the server with demo accounts, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

WEB    := onenumber/web/phone

.PHONY: run test test-compiled lint bench bench-pure compiled clean-compiled clean peers runtime-peers web greeting

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

# The suite runs the pure-Python SIP core (in-place compiled modules are removed first; the
# guard in tests/sip/test_compiled.py checks it), then test-compiled runs the sans-IO SIP tests
# against a mypyc build of it in a separate tree (docs/compiled.md).
test: $(VENV)/.installed-test peers web greeting clean-compiled
	$(BIN)/ruff check .
	$(BIN)/mypy
	ONENUMBER_EXPECT_CORE=pure $(BIN)/python -m pytest $(ARGS)
	$(MAKE) --no-print-directory test-compiled

# onenumber/sip compiled into build/compiled-test (a copy of the package's sources with the
# extension modules beside them), first on PYTHONPATH; `pytest`, not `python -m pytest`, which
# would put the checkout (pure) first. tests/services too: the sans-IO services drive the compiled
# core (they found a None in a typed slot tests/sip did not). About 40 s of CPU to build, 50 s to test.
COMPILED_TEST := build/compiled-test
test-compiled: $(VENV)/.installed-test
	rm -rf $(COMPILED_TEST) && mkdir -p build
	$(BIN)/python scripts/build_compiled.py --out $(COMPILED_TEST) > build/compiled-test.log 2>&1 \
	  || { tail -30 build/compiled-test.log; exit 1; }
	ONENUMBER_EXPECT_CORE=compiled PYTHONPATH=$(CURDIR)/$(COMPILED_TEST):$(CURDIR) $(BIN)/pytest -q -p no:cacheprovider \
	  tests/sip tests/services

# the SIP core compiled with mypyc in place (onenumber/sip/*.so): Python imports these instead
# of the .py files, which stay the source and the fallback. Rebuilt when a source changes.
COMPILED_STAMP := build/mypyc/.built
compiled: $(COMPILED_STAMP)

$(COMPILED_STAMP): $(wildcard onenumber/sip/*.py) scripts/build_compiled.py | $(VENV)/.installed-test
	@mkdir -p build
	$(BIN)/python scripts/build_compiled.py > build/compiled.log 2>&1 || { tail -30 build/compiled.log; exit 1; }
	@tail -1 build/compiled.log
	@touch $@

clean-compiled:
	@if [ -x $(BIN)/python ]; then $(BIN)/python scripts/build_compiled.py --clean; \
	else rm -rf onenumber/*__mypyc*.so onenumber/sip/*.so build/mypyc; fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'
	@touch $@ $(VENV)/.installed $(VENV)/.installed-test

# benchmarks the compiled SIP core (make compiled); `make clean-compiled bench-pure` for the pure one
bench: $(VENV)/.installed-bench compiled
	@scripts/install-peers.sh --bench
	$(BIN)/python bench/run.py $(ARGS)

bench-pure: $(VENV)/.installed-bench
	@scripts/install-peers.sh --bench
	$(BIN)/python bench/run.py $(ARGS)

clean: clean-compiled
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info $(WEB)/node_modules $(WEB)/dist
