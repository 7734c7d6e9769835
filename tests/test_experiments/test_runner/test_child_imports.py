"""A training process starts without what only planning and reports use:
each run (and each rank) pays its imports once, 110 times in the suite."""
import json
import subprocess
import sys

from experiments.store import PROJECT_ROOT

PROBE = """
import json, sys
import experiments.runner.train_run, mmdet_plugins
import mmdet.evaluation, mmdet.visualization  # what its runner builds
print(json.dumps([m for m in ('pandas', 'seaborn', 'scipy.stats')
                  if m in sys.modules]))
"""


def test_the_training_process_imports_no_pandas_seaborn_or_scipy_stats():
    out = subprocess.run([sys.executable, '-c', PROBE], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []
