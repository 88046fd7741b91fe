# Set-up and checks. Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTorch for the local embedding server: a CPU build (see README).
TORCH ?= torch==2.13.0

.PHONY: demo test bench install clean

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

demo: $(VENV)/.demo-installed
	$(VENV)/bin/hf-endpoint demo

test: install
	$(VENV)/bin/ruff check hf_endpoint langchain_hf_endpoint llama_index_hf_endpoint tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest

bench: install
	$(PY) -m pip install -q -e ".[all,bench]"
	$(PY) benchmarks/bench_chunking.py
	$(PY) benchmarks/bench_server.py

clean:
	rm -rf $(VENV) build *.egg-info
