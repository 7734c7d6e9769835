# The two commands a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
GRID ?= experiments/grids/smoke.yaml

.PHONY: setup demo test

setup:
	@VENV=$(VENV) bash tools/setup_env.sh

demo: setup
	$(PY) experiments/run_grid.py $(GRID)
	$(PY) experiments/measure_cost.py $(GRID) --images 32 --onnxruntime
	$(PY) reports/generate_report.py --grid $(GRID)

test: setup
	$(PY) -m pytest tests -q
