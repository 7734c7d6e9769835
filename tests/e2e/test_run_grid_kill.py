"""SIGKILL the runner at random moments, restart it: no run lost or doubled."""
import glob
import os.path as osp
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml
from helpers import (
    TINY_BATCH,
    TINY_MASK_RCNN,
    last_checkpoint_iteration,
    tiny_dataset_entry,
    wait_for,
)

from experiments.store import PROJECT_ROOT, read_attempts, read_results_csv

KILLS = 10
# The kills reach about iteration 13 of seeds 0 and 1 (the slots' first
# two runs); the last runner trains what is left.
ITERS = 16


def _start_runner(grid, log):
    return subprocess.Popen(
        [sys.executable, 'experiments/run_grid.py', grid, '--slots', '2',
         '--tick', '1'], cwd=PROJECT_ROOT, stdout=log,
        stderr=subprocess.STDOUT)


def _checkpoints(work_dir) -> int:
    """Iterations checkpointed so far, summed over the runs."""
    return sum(last_checkpoint_iteration(osp.dirname(path)) for path in
               glob.glob(osp.join(str(work_dir), '*', 'last_checkpoint')))


@pytest.mark.slow
def test_sigkill_and_restart_never_loses_or_duplicates(tiny_builtin,
                                                        tmp_path):
    work_dir = tmp_path / 'work'
    grid = tmp_path / 'grid.yaml'
    grid.write_text(yaml.safe_dump(dict(
        **TINY_BATCH,
        name='kill', work_dir=str(work_dir),
        models={'mask_rcnn': TINY_MASK_RCNN}, seeds=[0, 1, 2, 3],
        datasets={'tiny': tiny_dataset_entry(tiny_builtin)},
        # A checkpoint every iteration: each kill has one to resume from.
        overrides={'train_cfg.max_iters': ITERS,
                   'default_hooks.checkpoint.interval': 1})))
    # Kills keyed to progress, not to a clock (how long planning and a
    # child's start take depends on the machine's load): every other kill
    # lands at a random moment while the runner plans or a child starts,
    # the others a random moment after a new checkpoint was written.
    rng = random.Random(0)
    log = open(tmp_path / 'runner.log', 'w')
    for kill in range(KILLS):
        saved = _checkpoints(work_dir)
        runner = _start_runner(str(grid), log)
        if kill % 2 == 0:
            time.sleep(rng.uniform(0.5, 6.0))
        else:
            wait_for(lambda: _checkpoints(work_dir) > saved or
                     runner.poll() is not None, 120, 'runner progress')
            time.sleep(rng.uniform(0.0, 2.0))
        if runner.poll() is None:
            runner.send_signal(signal.SIGKILL)
        runner.wait()
    runner = _start_runner(str(grid), log)
    assert runner.wait(timeout=600) == 0, open(tmp_path / 'runner.log').read()

    df = read_results_csv(osp.join(work_dir, 'results.csv'))
    assert len(df) == 4 and df.run_id.is_unique
    assert sorted(df.seed) == [0, 1, 2, 3]
    assert (df.status == 'finished').all() and (df.iterations == ITERS).all()
    resumed_from = []
    for run_dir in df.work_dir:
        records = read_attempts(run_dir)
        ends = [r for r in records if r['event'] == 'end']
        # Finished exactly once; every attempt the kills cut short is closed
        # as killed by the next one.
        assert [e['status'] for e in ends].count('finished') == 1
        assert ends[-1]['status'] == 'finished'
        assert all(e['status'] == 'killed' for e in ends[:-1])
        starts = [r['iter'] for r in records if r['event'] == 'start']
        assert starts == sorted(starts)
        log = open(osp.join(run_dir, 'run.log')).read()
        for it in starts[1:]:
            if it > 0:
                # It loaded a checkpoint that an earlier attempt saved, and
                # went on from there.
                resumed = log.index(f'resumed epoch: 0, iter: {it}\n')
                assert f'Saving checkpoint at {it} iterations' in \
                    log[:resumed]
                resumed_from.append(it)
    assert resumed_from, 'no run was resumed from a checkpoint'
    print(f'resumed attempts started at iterations {sorted(resumed_from)}')
