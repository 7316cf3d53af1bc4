# `make demo` and `make test` work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch (lies on the CI machines' disk); a plain `torch` pulls a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[train,ort,dicom,dev]'
	# Type stubs only: their `tensorrt` dependency cannot be installed without NVIDIA's index.
	$(PIP) install -q --no-deps tensorrt-stubs==10.13.0.35.1
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hypermm-edge demo --workdir demo-run

# tensorrt-stubs as installed is invisible to mypy (no py.typed) and partly invalid: repair a copy.
typecheck: $(STAMP)
	$(PY) tools/prepare_trt_stubs.py .cache/trt-stubs
	MYPYPATH=.cache/trt-stubs $(VENV)/bin/mypy hypermm_edge

lint: $(STAMP)
	$(VENV)/bin/ruff check hypermm_edge tests benchmarks tools

test: $(STAMP) typecheck lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/sweep.py --out benchmarks/results

clean:
	rm -rf $(VENV) demo-run
