# The two commands a newcomer needs: `make demo` and `make test`.
# `make test-fast` (no training, no end-to-end grids) and `make lint` are for
# the edit-test loop.
VENV ?= .venv
PY := $(VENV)/bin/python
GRID ?= experiments/grids/smoke.yaml

.PHONY: setup demo test test-fast lint

setup:
	@VENV=$(VENV) bash tools/setup_env.sh

demo: setup
	$(PY) experiments/run_grid.py $(GRID)
	$(PY) experiments/measure_cost.py $(GRID) --images 32 --onnxruntime
	$(PY) reports/generate_report.py --grid $(GRID)

test: setup
	$(PY) -m pytest tests -q

# Every module's tests except the slow ones (each trains a model for a few
# iterations) and the end-to-end grid runs (tests/e2e).
test-fast: setup
	$(PY) -m pytest tests -q -m "not slow" --ignore=tests/e2e

lint: setup
	$(VENV)/bin/ruff check .
