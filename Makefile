# The two commands a newcomer needs: `make demo` and `make test`.
# `make test-fast` (no training, no end-to-end grids) and `make lint` are for
# the edit-test loop.
VENV ?= .venv
PY := $(VENV)/bin/python
GRID ?= experiments/grids/smoke.yaml
# A lighter demo on a slow or busy machine: DEMO_ARGS goes to run_grid.py
# (e.g. "--slots 2": two runs at once, one core each; "--only
# model=retinamask"); ITERS=N trains N iterations instead of the grid's 200
# (run_grid.py --cfg-options train_cfg.max_iters=N).
DEMO_ARGS ?=
ITERS ?=
DEMO_RUN_ARGS = $(DEMO_ARGS) \
	$(if $(ITERS),--cfg-options train_cfg.max_iters=$(ITERS))

.PHONY: setup demo test test-fast lint check-coco gpu-smoke

setup:
	@VENV=$(VENV) bash tools/setup_env.sh

demo: setup
	$(PY) experiments/run_grid.py $(GRID) $(DEMO_RUN_ARGS)
	$(PY) experiments/measure_cost.py $(GRID) --images 32 --onnxruntime
	$(PY) reports/generate_report.py --grid $(GRID)

# pytest-xdist, one test file per worker at a time (a file's module-scoped
# trained fixtures are built once), each worker and what it starts on one
# thread (tests/conftest.py); then the `serial` test (a wall-clock estimate
# against the run it estimates) alone on the machine. Two workers (a third
# on two cores made the parallel part slower: 1789 s against 1352 s). The
# slowest tests of each part are listed at the end. JOBS=1 runs it in one
# process.
JOBS ?= 2
# Files in tests/conftest.py's longest-first order (SLOW_FILES), not
# xdist's (most tests first), which handed out the 400 s check-coco file
# near the end. mmengine's default registry scope is reset before every
# test (tests/conftest.py), so no file depends on what ran before it.
PYTEST_JOBS = $(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist loadfile \
	--no-loadscope-reorder)
# Only the files that mark a test `serial` are collected for the serial
# part (collecting every file imports the whole stack again: 8-10 s).
SERIAL_FILES = $(or $(shell grep -rl --include='test_*.py' \
	'pytest.mark.serial' tests),tests)

test: setup
	$(PY) -m pytest tests -q $(PYTEST_JOBS) -m "not serial" --durations=25; \
	parallel=$$?; \
	$(PY) -m pytest $(SERIAL_FILES) -q -m serial --durations=10; \
	serial=$$?; \
	exit $$(( parallel || serial ))

# Every module's tests except the slow ones (each trains a model for a few
# iterations) and the end-to-end grid runs (tests/e2e).
test-fast: setup
	$(PY) -m pytest tests -q $(PYTEST_JOBS) -m "not slow" --ignore=tests/e2e

lint: setup
	$(VENV)/bin/ruff check .

# Every COCO config (configs/*/*_coco*.py) through run_grid.py on the shared
# coco128-seg: one optimizer step at its recipe's total batch and real input
# size, the test on 8 images with its own evaluator, the ONNX export and its
# parity; one table row per config (tools/check_coco_configs.py). Not part of
# `make test`; see the README for how long it takes.
CHECK_COCO_ARGS ?=
check-coco: setup
	$(PY) tools/check_coco_configs.py $(CHECK_COCO_ARGS)

# The first hour on a GPU machine (README "Installing on a GPU machine"):
# the stack, mmcv's CUDA kernels against its CPU ones, each family trained on
# 1 and 2 GPUs against a CPU run of the same seed (tools/gpu_smoke.py). Runs
# anywhere; what the machine cannot do is a row saying skipped and why.
GPU_SMOKE_ARGS ?=
gpu-smoke: setup
	$(PY) tools/gpu_smoke.py $(GPU_SMOKE_ARGS)
