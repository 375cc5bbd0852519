# edgemoe: `make demo` runs the whole flow on the default model; `make test` runs the tests.
# Both set up what they need first (.venv with pinned versions), so a fresh machine needs nothing else.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.edgemoe-setup
# the PYNQ host runtime's own venv: pynq pins numpy<2 and protobuf<6 (clash with onnx in .venv)
PYNQ_VENV  := .venv-pynq
PYNQ_STAMP := $(PYNQ_VENV)/.edgemoe-setup
HLS4ML := hls4ml==1.3.0

.PHONY: setup test demo bench lint clean

setup: $(STAMP) $(PYNQ_STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v g++ >/dev/null || { echo "g++ missing: installing it (C simulation needs it)"; \
	  (apt-get update -qq && apt-get install -y -qq g++) || { echo "error: g++ not found; install it (apt-get install g++)"; exit 1; }; }
	@missing=""; for t in iverilog yosys perl make; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	  test -z "$$missing" || { echo "installing$$missing (RTL simulation and resource estimates need them)"; \
	  (apt-get update -qq && apt-get install -y -qq $$missing) || { echo "error: install$$missing (apt-get install$$missing)"; exit 1; }; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps $(HLS4ML)
	$(PIP) install -q --no-deps -e .
	@touch $@

$(PYNQ_STAMP): requirements-pynq.txt pyproject.toml
	@test -x $(PYNQ_VENV)/bin/python || $(PYTHON) -m venv $(PYNQ_VENV)
	$(PYNQ_VENV)/bin/python -m pip install -q --upgrade pip
	$(PYNQ_VENV)/bin/python -m pip install -q -r requirements-pynq.txt
	$(PYNQ_VENV)/bin/python -m pip install -q --no-deps -e .
	@touch $@

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/edgemoe demo --out demo_out

bench: setup
	$(PY) -m edgemoe.bench

lint: setup
	$(VENV)/bin/ruff check edgemoe golden codegen host sim boards tests

clean:
	rm -rf demo_out .pytest_cache build *.egg-info
