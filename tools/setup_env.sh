#!/usr/bin/env bash
# Creates or updates the project's virtual environment. Idempotent: when the
# requirement files have not changed and the stack imports, it does nothing.
#
#   VENV=.venv          where the environment lives
#   PYTHON=python3      interpreter used to create it (3.10-3.12)
#   TORCH_SPEC=...      torch requirement when torch is missing
#                       (default torch==2.13.0, the CPU wheel on our machines).
#                       GPU users install their CUDA torch into the venv first
#                       (or set TORCH_SPEC/PIP_INDEX_URL); an installed torch
#                       is never replaced.
#
# mmcv 2.1.0 only ships as source: it is compiled against the installed torch,
# with CUDA ops when torch sees a GPU (or FORCE_CUDA=1), CPU ops otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
STAMP="$VENV/.setup-stamp"

log() { printf '[setup] %s\n' "$*"; }

stack_imports() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import mmcv, mmengine, mmdet, pycocotools, pandas, matplotlib, cv2
from mmcv.ops import RoIAlign, nms  # compiled ops, not the lite build
import mmdet_plugins
assert mmcv.__version__ == "2.1.0" and mmengine.__version__ == "0.10.7"
assert mmdet.__version__ == "3.3.0" and int(cv2.__version__.split(".")[0]) < 5
PY
}

want_stamp=$(cat requirements/*.txt setup.cfg pyproject.toml tools/setup_env.sh | sha256sum | cut -c1-16)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want_stamp" ] && stack_imports; then
    log "environment $VENV is up to date"
    exit 0
fi

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# pip byte-compiles each package on one core (torch's files alone took 21 of
# its 35 s here); the installs skip it and compileall does it once at the
# end on every core. Not skipped altogether: where PYTHONDONTWRITEBYTECODE
# is set, nothing would ever write the bytecode and every process would
# compile torch from source (an import of the plugins: 4 s -> 12.6 s).
INSTALL=("${PIP[@]}" install --no-compile)

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    log "installing $TORCH_SPEC"
    "${INSTALL[@]}" "$TORCH_SPEC"
fi

log "installing build tools and dependencies"
"${INSTALL[@]}" -q "setuptools>=77,<82" wheel ninja
"${INSTALL[@]}" -q -r requirements/runtime.txt -r requirements/tests.txt
# --no-deps: mmengine declares opencv-python (pip would take OpenCV 5);
# requirements/runtime.txt lists what these packages really need.
"${INSTALL[@]}" -q --no-deps -r requirements/openmmlab.txt

mmcv_ok() {
    # mmcv 2.1.0 with compiled ops, and with CUDA ops whenever torch has CUDA.
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import mmcv, torch
from mmcv.ops import RoIAlign, get_compiling_cuda_version
assert mmcv.__version__ == "2.1.0"
assert not torch.cuda.is_available() or get_compiling_cuda_version() != "not available"
PY
}
if ! mmcv_ok; then
    log "building mmcv 2.1.0 with compiled ops (10-20 min on 2 cores the first time; pip caches the wheel)"
    mmcv_start=$(date +%s)
    MMCV_WITH_OPS=1 "${INSTALL[@]}" --no-build-isolation --no-deps mmcv==2.1.0
    log "mmcv ready after $(( $(date +%s) - mmcv_start )) s"
fi

log "installing the project (editable)"
"${INSTALL[@]}" -q --no-deps --no-build-isolation -e .
log "byte-compiling the environment"
# Failures are files pip would skip too (templates, other Pythons' syntax).
"$VENV/bin/python" -m compileall -qq -j 0 "$("$VENV/bin/python" -c \
    'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || true

stack_imports || { log "the stack does not import; see the messages above"; "$VENV/bin/python" -c "import mmcv.ops, mmdet, mmdet_plugins"; exit 1; }
echo "$want_stamp" > "$STAMP"
log "environment $VENV ready in $(( $(date +%s) - start )) s"
