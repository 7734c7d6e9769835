"""``make demo``'s lighter forms reach run_grid.py (issue 39, item 6)."""
import shutil
import subprocess

import pytest

from experiments.store import PROJECT_ROOT


def _run_grid_line(*make_args: str) -> str:
    out = subprocess.run(['make', '-n', 'demo', *make_args],
                         cwd=PROJECT_ROOT, capture_output=True, text=True,
                         check=True).stdout
    lines = [line for line in out.splitlines()
             if 'experiments/run_grid.py' in line]
    assert len(lines) == 1, out
    return lines[0].split()


@pytest.mark.skipif(shutil.which('make') is None, reason='no make')
def test_demo_args_and_iters_reach_run_grid():
    line = _run_grid_line('DEMO_ARGS=--slots 2 --only model=retinamask',
                          'ITERS=50')
    assert line[-6:] == ['--slots', '2', '--only', 'model=retinamask',
                         '--cfg-options', 'train_cfg.max_iters=50']
    # Without them, the grid as it is.
    assert _run_grid_line()[-1] == 'experiments/grids/smoke.yaml'
