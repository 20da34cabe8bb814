# ACR — one command to run, one to test. Everything else is installed on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3.11
PYTHON ?= python3.11
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
VENV := .venv
STAMP := $(VENV)/.acr-installed
CHROMIUM := /usr/bin/chromium
# checkov (the exported templates' policy scan) in an environment of its own: it pins networkx<2.7, the
# workspace needs networkx>=3.3. tests/deploy runs it from here.
IAC := .tools/iac
CHECKOV_VERSION := 3.3.30
CHECKOV := $(IAC)/.checkov-$(CHECKOV_VERSION)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install iac-tools run test test-fast lint demo bench load clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	@echo "==> installing uv into .tools/ (one time)"
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

$(STAMP): pyproject.toml uv.lock $(wildcard */pyproject.toml libs/*/pyproject.toml) | $(UV)
	@echo "==> installing the workspace into $(VENV)/ (one time, then only when the lock changes)"
	$(UV) sync --all-packages --frozen
	@touch $@

install: $(STAMP) ## install uv and the workspace (done by run and test when needed)

$(CHECKOV): | $(UV)
	@echo "==> installing checkov $(CHECKOV_VERSION) into $(IAC)/ (apart from the workspace)"
	rm -rf $(IAC)
	$(UV) venv --quiet $(IAC)
	$(UV) pip install --quiet --python $(IAC)/bin/python checkov==$(CHECKOV_VERSION)
	@touch $@

iac-tools: $(CHECKOV) ## checkov in .tools/iac for the template checks (done by test when needed)

$(CHROMIUM):
	@echo "==> installing Debian's Chromium for the browser tests (one time)"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

run: install ## run the whole stack: moto on :4566, 8 services on :8000-8007 (Ctrl-C stops all)
	@ACR_CITY=$${ACR_CITY:-full} ACR_SIM_SPEED=$${ACR_SIM_SPEED:-30} $(VENV)/bin/acr-stack run

test: install $(CHROMIUM) $(CHECKOV) ## the whole suite: unit, integration, system, browser, docker and deploy files, load
	$(VENV)/bin/python -m pytest -m "not load"
	$(VENV)/bin/python -m pytest -m load  # alone, so no other test's stack shares the two cores with it

test-fast: install $(CHECKOV) ## unit tests only
	$(VENV)/bin/python -m pytest -m "not integration and not system and not slow"

demo: install ## with the stack running (make run), book a few rides and print their timelines live
	$(VENV)/bin/python scripts/demo.py

load: install ## with a stack running: riders book LOAD_RATE rides/min (20) for LOAD_MINUTES (10) through BFF
	$(VENV)/bin/python benchmarks/load/run_load.py --bff $${BFF:-http://127.0.0.1:8000} \
		--rate $${LOAD_RATE:-20} --minutes $${LOAD_MINUTES:-10} --out $${LOAD_OUT:-.run/load/load}

bench: install ## run every benchmark (results in benchmarks/results/)
	$(VENV)/bin/python benchmarks/city/bench_city.py --spec full --out benchmarks/results/city.md
	$(VENV)/bin/python benchmarks/http/bench_address_finder_http.py --out benchmarks/results/address-finder-http.md
	$(VENV)/bin/python benchmarks/dedup/bench_dedup.py --out benchmarks/results/dedup.md
	$(VENV)/bin/python benchmarks/emulator/bench_emulator.py --out benchmarks/results/emulator.md
	$(VENV)/bin/python benchmarks/replicas/bench_replicas.py --out benchmarks/results/replicas.md

lint: install ## ruff and the import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean: ## remove the virtualenv, tools and caches (keeps the generated city)
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache
