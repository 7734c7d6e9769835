"""A training child killed by a signal is resumed automatically, a bounded
number of times in a row; an exception or a NaN loss is not retried."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
from helpers import (
    last_checkpoint_iteration,
    run_grid_cli,
    wait_for,
    write_grid,
)

from experiments.runner.progress import attempt_signals, signal_kills_in_a_row
from experiments.store import (
    PROJECT_ROOT,
    append_attempt,
    read_attempts,
    read_results_csv,
)

LONG = {'train_cfg.max_iters': 12,
        'default_hooks.checkpoint.interval': 2}


def _records(run_dir, *ends):
    """attempts.jsonl with one launch and one end per item of ``ends``."""
    for i, end in enumerate(ends):
        launch = dict(event='launch', attempt=str(i))
        if end == 'fresh':
            launch['fresh'] = True
            end = 'SIGKILL'
        append_attempt(run_dir, launch)
        append_attempt(run_dir, dict(
            event='end', attempt=str(i),
            status='finished' if end is None else f'killed by {end}',
            **({} if end is None else dict(signal=end, counts=True))))


def test_kills_in_a_row_are_counted_from_the_records(tmp_path):
    run_dir = str(tmp_path)
    assert signal_kills_in_a_row(run_dir) == 0
    _records(run_dir, 'SIGKILL', None, 'SIGKILL', 'SIGTERM')
    assert signal_kills_in_a_row(run_dir) == 2  # the finish reset it
    # A stop by Slurm (counts: false) ends a row too.
    append_attempt(run_dir, dict(event='end', attempt='x', signal='SIGTERM',
                                 counts=False, cause='Slurm stopped the job'))
    assert signal_kills_in_a_row(run_dir) == 0
    _records(run_dir, 'SIGKILL', 'fresh')  # --retry-failed starts over
    assert signal_kills_in_a_row(run_dir) == 1
    assert attempt_signals(read_attempts(run_dir)) == (
        'SIGKILL; SIGKILL; SIGTERM; SIGTERM (Slurm stopped the job); '
        'SIGKILL; SIGKILL')


def _child_pids(run_dir):
    """Training processes of ``run_dir`` (``experiments.runner.train_run``)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            cmdline = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')
        except OSError:
            continue
        if b'experiments.runner.train_run' in cmdline and \
                run_dir.encode() in cmdline:
            pids.append(int(pid))
    return pids


def _run_dir(work_dir):
    dirs = [osp.join(work_dir, d) for d in os.listdir(work_dir)
            if d.count('__') == 4] if osp.isdir(work_dir) else []
    return dirs[0] if dirs else None


def _train_killing(tmp_path, dataset, kills, *args):
    """A one-run grid (12 iterations, a checkpoint every 2) run with
    ``args``; its training child is SIGKILLed after each new checkpoint,
    ``kills`` times. Returns (grid, work dir, exit status, output)."""
    work_dir = str(tmp_path / 'work')
    grid = write_grid(tmp_path / 'g.yaml', work_dir, dataset, {'a': {}},
                      overrides=LONG)
    runner = subprocess.Popen(
        [sys.executable, 'experiments/run_grid.py', grid, '--tick', '1',
         *args], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        last = 0
        for _ in range(kills):
            wait_for(lambda: _run_dir(work_dir) and last_checkpoint_iteration(
                _run_dir(work_dir)) > last and _child_pids(_run_dir(work_dir)),
                240, 'a new checkpoint')
            run_dir = _run_dir(work_dir)
            last = last_checkpoint_iteration(run_dir)
            for pid in _child_pids(run_dir):
                os.kill(pid, signal.SIGKILL)
        out, _ = runner.communicate(timeout=300)
    finally:
        runner.kill()
    return grid, work_dir, runner.returncode, out


@pytest.mark.slow
def test_a_killed_child_resumes_from_its_checkpoint_and_finishes(
        tiny_builtin, tmp_path):
    _, work_dir, code, out = _train_killing(tmp_path, tiny_builtin, 1)
    assert code == 0, out
    assert 'killed by SIGKILL; retrying from its last checkpoint' in out
    [row] = read_results_csv(osp.join(work_dir, 'results.csv')).itertuples()
    assert row.status == 'finished' and row.iterations == 12
    assert row.attempts == 2 and row.signals == 'SIGKILL'
    records = read_attempts(row.work_dir)
    ends = [r for r in records if r['event'] == 'end']
    starts = [r for r in records if r['event'] == 'start']
    assert ends[0]['signal'] == 'SIGKILL' and ends[0]['counts'] is True
    assert starts[1]['iter'] >= 2  # from the checkpoint, not from 0
    assert [r['retry'] for r in records if r['event'] == 'launch'] == [0, 1]


@pytest.mark.slow
def test_kills_past_the_limit_fail_the_run_until_retry_failed(
        tiny_builtin, tmp_path):
    grid, work_dir, code, out = _train_killing(
        tmp_path, tiny_builtin, 2, '--signal-retries', '1')
    assert code == 1, out
    [row] = read_results_csv(osp.join(work_dir, 'results.csv')).itertuples()
    assert row.status == 'failed'
    assert row.error == ('child process killed by SIGKILL (out of memory, or '
                         'killed by hand?), on 2 attempt(s) in a row '
                         '(--signal-retries 1)')
    assert row.attempts == 2 and row.signals == 'SIGKILL; SIGKILL'
    # --retry-failed starts the count again and resumes the checkpoint.
    done = run_grid_cli(grid, '--retry-failed', '--signal-retries', '1')
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = read_results_csv(osp.join(work_dir, 'results.csv')).itertuples()
    assert row.status == 'finished' and row.attempts == 3
    launches = [r for r in read_attempts(row.work_dir)
                if r['event'] == 'launch']
    assert launches[-1]['fresh'] is True and launches[-1]['retry'] == 0


@pytest.mark.slow
def test_a_nan_loss_is_not_retried(tiny_builtin, tmp_path):
    work_dir = str(tmp_path / 'work')
    grid = write_grid(tmp_path / 'g.yaml', work_dir, tiny_builtin, {
        'nan': {'overrides': {'model.data_preprocessor.std': [0, 0, 0]}}})
    done = run_grid_cli(grid)
    assert done.returncode == 1
    [row] = read_results_csv(osp.join(work_dir, 'results.csv')).itertuples()
    assert row.status == 'failed' and 'non-finite loss' in row.error
    assert row.attempts == 1 and row.signals == ''  # no signal
    failed = json.load(open(osp.join(row.work_dir, 'FAILED.json')))
    assert failed['signals'] == ''
