"""A 2-process attempt (``rank_launch``) cleans up after itself."""
import os
import subprocess
import sys

import pytest

from experiments.store import PROJECT_ROOT


@pytest.mark.slow
def test_a_two_process_attempt_leaves_no_torchelastic_folder(tmp_path):
    temp = tmp_path / 'tmp'
    (temp / 'torchelastic_another_process').mkdir(parents=True)
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    # Both ranks fail at once (the run dir has no config.py): the shortest
    # real attempt, torchrun and its two ranks included.
    done = subprocess.run(
        [sys.executable, '-m', 'experiments.runner.rank_launch', '--nproc',
         '2', str(run_dir)], cwd=PROJECT_ROOT, capture_output=True,
        text=True, timeout=300, env=dict(os.environ, TMPDIR=str(temp)))
    assert done.returncode == 1, done.stderr
    assert 'rank_launch: rank' in done.stderr
    # Another process's folder stays.
    assert sorted(n for n in os.listdir(temp)
                  if n.startswith('torchelastic_')) == [
        'torchelastic_another_process']
