# chunkline: `make demo` shows a conversion (`make demo FULL=1`: every event), `make test` runs every check CI runs.
# Everything runs from .venv, which is created on first use; no activation needed.

VENV := .venv
BIN := $(VENV)/bin
# The peers' own venvs (make bench-peers, make bench-server PEERS=1): ccproxy-api 0.1.2 and LiteLLM;
# ccproxy-api 0.2.10 (which has no 0.1.x adapter) with LiteLLM for the chat -> Anthropic route; and
# ccproxy-api 0.2.10 alone for the Responses route. .venv never sees the peers' dependencies.
PEERS_VENV := .venv-peers
PEERS_CHAT_VENV := .venv-peers-chat
PEERS_RESPONSES_VENV := .venv-peers-responses

# The first Python 3.11+ found on PATH; override with `make PYTHON=/path/to/python3.12 ...`.
PYTHON ?= $(shell for p in python3 python3.11 python3.12 python3.13 python; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; \
	done)

PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check

# The example plugins in plugins/ are installed into the dev environment (editable), so the tests
# exercise real entry-point discovery exactly as a user's installed plugins are found.
PLUGINS := plugins/chunkline-redact plugins/chunkline-markdown

.PHONY: demo test lint typecheck docs docs-serve fmt bench bench-server bench-first-byte bench-ab bench-peers bench-upstream-clients dist clean distclean

demo: $(VENV)/.installed-demo
	$(BIN)/python -m chunkline.demo $(if $(FULL),--full)

test: lint typecheck docs
	$(BIN)/python -m pytest -n auto

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict src $(PLUGINS:%=%/src)

# The documentation site (MkDocs); --strict turns every warning (a broken link, a missing page) into a failure.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

docs-serve: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# Throughput against the floor of the work, option costs, build/open cost and memory (one run).
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench.py

# The server's cost per stream beside its floor (a bare asyncio relay) in front of a fake upstream on
# loopback: CPU per stream, added time to first byte, memory per held stream; interleaved rounds,
# medians. `make bench-server PEERS=1` runs the LiteLLM proxy (from .venv-peers) beside it;
# ROUTE=responses measures Codex's route, ROUTE=messages Claude Code's (/v1/messages before an
# OpenAI-compatible upstream).
bench-server: $(VENV)/.installed-dev $(if $(PEERS),$(PEERS_VENV)/.installed)
	$(BIN)/python benchmarks/bench_server.py $(if $(PEERS),--peers $(PEERS_VENV)/bin/litellm) $(if $(ROUTE),--route $(ROUTE))

# Where chunkline's added first byte goes: one timeline per request, client and server on one clock.
bench-first-byte: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/first_byte.py

# Two versions of the server side by side in one run: `make bench-ab BEFORE=<git revision>`
# (AFTER=<revision>; by default the working tree; BEFORE_LOOP/AFTER_LOOP=asyncio|uvloop: on that loop).
bench-ab: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/ab_server.py --before $(BEFORE) $(if $(AFTER),--after $(AFTER)) $(if $(ROUTE),--route $(ROUTE)) \
		$(if $(BEFORE_LOOP),--before-loop $(BEFORE_LOOP)) $(if $(AFTER_LOOP),--after-loop $(AFTER_LOOP))

# Optional: the upstream client beside httpx, httpcore and aiohttp (one run, in .venv-peers).
bench-upstream-clients: $(VENV)/.installed-dev $(PEERS_VENV)/.installed
	$(PEERS_VENV)/bin/python benchmarks/upstream_clients.py

# Optional: each route's stream through its peers (ccproxy-api, LiteLLM), one run per route.
bench-peers: $(PEERS_VENV)/.installed $(PEERS_CHAT_VENV)/.installed $(PEERS_RESPONSES_VENV)/.installed
	$(PEERS_VENV)/bin/python benchmarks/peers.py
	$(PEERS_CHAT_VENV)/bin/python benchmarks/peers_chat.py
	$(PEERS_RESPONSES_VENV)/bin/python benchmarks/peers_responses.py

$(PEERS_RESPONSES_VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11 or newer on PATH; set PYTHON=..." >&2; exit 1; }
	test -x $(PEERS_RESPONSES_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_RESPONSES_VENV)
	$(PEERS_RESPONSES_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		'ccproxy-api==0.2.10' orjson -e .
	@touch $@

$(PEERS_VENV)/.installed: pyproject.toml benchmarks/litellm-proxy.txt
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11 or newer on PATH; set PYTHON=..." >&2; exit 1; }
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		'ccproxy-api==0.1.2' -r benchmarks/litellm-proxy.txt orjson -e .
	@touch $@

$(PEERS_CHAT_VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11 or newer on PATH; set PYTHON=..." >&2; exit 1; }
	test -x $(PEERS_CHAT_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_CHAT_VENV)
	$(PEERS_CHAT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		'ccproxy-api==0.2.10' 'litellm==1.110.2' orjson -e .
	@touch $@

# The sdist and the wheel in dist/ (chunkline is not on the package index yet): install the wheel
# with `pip install 'dist/chunkline-0.1.0-py3-none-any.whl[server]'`.
dist: $(VENV)/.installed-dev
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11 or newer on PATH; set PYTHON=..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# One stamp per extra (dev, demo), so a second run installs nothing unless a pyproject.toml changed.
# Editable, so the demo finds examples/ beside src/ and the tests run the working tree.
$(VENV)/.installed-dev: pyproject.toml $(PLUGINS:%=%/pyproject.toml) | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]' $(PLUGINS:%=-e '%[test]')
	@touch $@

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[$*]'
	@touch $@

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . \( -path ./$(VENV) -o -path ./$(PEERS_VENV) -o -path ./$(PEERS_RESPONSES_VENV) \) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(PEERS_VENV) $(PEERS_CHAT_VENV) $(PEERS_RESPONSES_VENV)

# Fuzz the whole pipeline, on every built-in route, for FUZZ_SECONDS with atheris (installed into
# .venv on first use; where it cannot be, the harness falls back to pure-Python mutation). Seeds: the
# Anthropic and chat recordings, written into build/fuzz/corpus. Exits non-zero on a finding, whose
# input is saved as build/fuzz/crash-*.
# Then the server's request side (hypothesis), a quarter of FUZZ_SECONDS each: the Chat Completions
# translator and route (fuzz/fuzz_server.py), and the Responses and Anthropic Messages translators
# and routes (fuzz/fuzz_translators.py). The pipeline gets the other half: the total stays FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_SERVER_SECONDS = $(shell expr $(FUZZ_SECONDS) / 4)
FUZZ_PIPELINE_SECONDS = $(shell expr $(FUZZ_SECONDS) - 2 \* $(FUZZ_SERVER_SECONDS))

.PHONY: fuzz
fuzz: $(VENV)/.installed-dev
	@$(BIN)/python -c 'import atheris' 2>/dev/null || $(PIP_INSTALL) atheris || \
		echo "make fuzz: atheris could not be installed; using the pure-Python fallback" >&2
	$(BIN)/python fuzz/fuzz_pipeline.py -max_total_time=$(FUZZ_PIPELINE_SECONDS) -max_len=65536 -timeout=30 \
		-dict=fuzz/pipeline.dict -artifact_prefix=build/fuzz/ -print_final_stats=1 build/fuzz/corpus
	$(BIN)/python fuzz/fuzz_server.py --seconds $(FUZZ_SERVER_SECONDS)
	$(BIN)/python fuzz/fuzz_translators.py --seconds $(FUZZ_SERVER_SECONDS)
