# Set-up and checks. Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTorch for the local embedding server: a CPU build (see README).
TORCH ?= torch==2.13.0

# Infinity (infinity-emb) for the tests against a third-party server: its own environment,
# since it pins sentence-transformers<4 and an older huggingface_hub (tests/infinity.py).
INFINITY_VENV ?= .venv-infinity
INFINITY ?= infinity-emb[server,torch]==0.0.78

.PHONY: demo test bench install infinity js clean options

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	touch $@

# Everything: what the tests, the type checks, the docs and the benchmarks' peers need.
$(VENV)/.installed: pyproject.toml $(VENV)/.created
	$(PY) -m pip install -q -e ".[all]"
	touch $@

# Only what the demo needs (the demo extra); `make test` adds the rest to the same .venv.
$(VENV)/.demo-installed: pyproject.toml $(VENV)/.created
	$(PY) -m pip install -q -e ".[demo]"
	touch $@

install: $(VENV)/.installed

# @elastic/elasticsearch for the JavaScript example of tests/test_inference_api.py.
tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	touch $@

js: tests/js/node_modules/.installed

$(INFINITY_VENV)/.installed:
	$(PYTHON) -m venv $(INFINITY_VENV)
	$(INFINITY_VENV)/bin/python -m pip install -q $(TORCH)
	$(INFINITY_VENV)/bin/python -m pip install -q "$(INFINITY)"
	touch $@

infinity: $(INFINITY_VENV)/.installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/hf-endpoint demo

test: install js infinity
	$(VENV)/bin/ruff check hf_endpoint langchain_hf_endpoint llama_index_hf_endpoint tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest

# After adding or changing an option in hf_endpoint/client/_options.py: write the clients'
# keywords and the adapters' fields from the declaration again.
options: install
	$(PY) -m hf_endpoint.client._keywords
	$(VENV)/bin/ruff format hf_endpoint

bench: install
	$(PY) -m pip install -q -e ".[all,bench]"
	$(PY) benchmarks/bench_chunking.py
	$(PY) benchmarks/bench_server.py

clean:
	rm -rf $(VENV) $(INFINITY_VENV) build *.egg-info tests/js/node_modules
