# Two commands do everything on a fresh machine:
#   make run    set up (first time) and start the web page + CLI-ready service on http://127.0.0.1:8080
#   make test   set up (first time, with training/test extras) and run ruff, mypy and the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

# torch (training extras only) must be the CPU build: PyPI's Linux wheel of torch is the CUDA
# one, which pulls in triton and 16 nvidia packages (several GB). The pin is the one in
# pyproject.toml. The CPU wheels are on TORCH_CPU_INDEX; it is used when it answers within a
# few seconds, else pip uses only what it is configured with (a local wheel, a mirror). The
# "+cpu" in the requirement matches CPU builds only, so pip can never fall back to CUDA.
TORCH_VERSION   := 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_REQ       := torch==$(TORCH_VERSION)$(if $(filter Linux,$(shell uname -s)),+cpu,)
# Exit 0 when the index answers within 8 s (DNS included), 1 otherwise; never hangs.
PROBE = import sys, threading, urllib.request; ok = [];\
 t = threading.Thread(target=lambda: ok.append(urllib.request.urlopen(sys.argv[1], timeout=6)), daemon=True);\
 t.start(); t.join(8); sys.exit(0 if ok else 1)

.PHONY: run test setup setup-dev lint typecheck pytest browser servers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# The CPU build of torch first, so that '.[dev]' below finds its torch==2.13.0 installed.
$(VENV)/.torch: Makefile | $(BIN)/python
	@if $(BIN)/python -c "$(PROBE)" "$(TORCH_CPU_INDEX)/torch/" 2>/dev/null; then \
	  echo "torch $(TORCH_VERSION), CPU build, from $(TORCH_CPU_INDEX)"; \
	  $(BIN)/pip install -q "$(TORCH_REQ)" --extra-index-url "$(TORCH_CPU_INDEX)"; \
	else \
	  echo "$(TORCH_CPU_INDEX) does not answer: torch $(TORCH_VERSION), CPU build, from pip's own configuration"; \
	  $(BIN)/pip install -q "$(TORCH_REQ)" || { \
	    echo "error: no CPU build of torch $(TORCH_VERSION) found. Make $(TORCH_CPU_INDEX) reachable, or set TORCH_CPU_INDEX=<a mirror of it>, or put the wheel where pip finds it (PIP_FIND_LINKS)." >&2; exit 1; }; \
	fi
	@$(BIN)/python -c "import sys, torch; cuda = torch.version.cuda; \
	  sys.exit(f'error: torch {torch.__version__} is a CUDA build ({cuda}); remove it (.venv/bin/pip uninstall torch) and run make again') if cuda else None"
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.torch | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@$(BIN)/python -c "import sys, torch; sys.exit('error: torch was replaced by a CUDA build') if torch.version.cuda else None"
	touch $@ $(VENV)/.runtime

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

run: setup
	$(BIN)/animebot serve $(ARGS)

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: browser tests will be skipped (apt-get install chromium)"; fi; }

# Debian's PostgreSQL 15 and Redis for the tests on real servers (tests/servers.py starts them
# in a temporary folder, as `nobody` when root). Nothing here starts a service.
PG_BIN ?= /usr/lib/postgresql/15/bin
servers:
	@missing=""; \
	  [ -x "$(PG_BIN)/initdb" ] || missing="$$missing postgresql"; \
	  command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	    else echo "not found:$$missing: the tests on real servers will be skipped (apt-get install$$missing)"; fi; \
	  fi

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup-dev
	$(BIN)/mypy

pytest: setup-dev browser servers
	$(BIN)/python -m pytest $(ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
