"""Faults of a 2-process run on CPU: a rank killed, a rank on bad data."""
import glob
import json
import math
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from helpers import TINY_MASK_RCNN, run_grid_cli, tiny_dataset_entry, wait_for

from experiments.store import PROJECT_ROOT, read_attempts, read_results_csv

pytestmark = pytest.mark.slow

# Deterministic training (no flip, frozen BN, every anchor and proposal
# sampled): a resumed run can be compared with an uninterrupted one.
DETERMINISTIC = {
    'train_cfg.max_iters': 8,
    'default_hooks.checkpoint.interval': 2,
    'train_dataloader.dataset.pipeline.3.prob': 0.0,
    'model.backbone.norm_eval': True,
    'allow_untrained_frozen_backbone': True,
    'model.train_cfg.rpn.sampler.num': 10**6,
    'model.train_cfg.rcnn.sampler.num': 10**6,
    'custom_hooks': [{'type': 'FiniteLossHook'},
                     {'type': 'RandomStateHook'},
                     {'type': 'RankLossLogHook'}],
}
AP_COLUMNS = [f'{t}_{m}' for t in ('box', 'mask')
              for m in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')]


def _grid(path, work_dir, dataset) -> str:
    path.write_text(yaml.safe_dump(dict(
        name='k2', work_dir=str(work_dir),
        models={'mask_rcnn': {'config': TINY_MASK_RCNN, 'processes': 2}},
        datasets={'tiny': tiny_dataset_entry(dataset)}, seeds=[0],
        total_batch=2, lr_scaling='manual', overrides=DETERMINISTIC)))
    return str(path)


def _rank_pid(run_dir: str, rank: int):
    """The pid of the training process of ``rank`` in ``run_dir``."""
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().split(b'\0')
            if b'experiments.runner.train_run' not in cmd or \
                    run_dir.encode() not in cmd:
                continue
            with open(f'/proc/{pid}/environ', 'rb') as f:
                env = dict(item.split(b'=', 1) for item in
                           f.read().split(b'\0') if b'=' in item)
        except OSError:
            continue
        if env.get(b'RANK') == str(rank).encode():
            return int(pid)
    return None


def _iterations_logged(run_dir: str, rank: int) -> int:
    path = osp.join(run_dir, 'rank_losses', f'rank{rank}.jsonl')
    if not osp.isfile(path):
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


def _params(run_dir: str) -> dict:
    return torch.load(osp.join(run_dir, 'iter_8.pth'), map_location='cpu',
                      weights_only=False)['state_dict']


def test_a_killed_rank_is_resumed_and_the_run_equals_an_uninterrupted_one(
        tiny_builtin, tmp_path):
    clean = _grid(tmp_path / 'clean.yaml', tmp_path / 'clean', tiny_builtin)
    done = run_grid_cli(clean, '--slots', '2')
    assert done.returncode == 0, done.stdout + done.stderr

    work = tmp_path / 'killed'
    grid = _grid(tmp_path / 'killed.yaml', work, tiny_builtin)
    log = open(tmp_path / 'runner.log', 'w')
    runner = subprocess.Popen(
        [sys.executable, 'experiments/run_grid.py', grid, '--slots', '2',
         '--tick', '1'], cwd=PROJECT_ROOT, stdout=log,
        stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: glob.glob(osp.join(str(work), 'mask_rcnn__*')),
                 120, 'the run dir')
        run_dir = glob.glob(osp.join(str(work), 'mask_rcnn__*'))[0]
        # Mid-training, after the checkpoint of iteration 2.
        wait_for(lambda: _iterations_logged(run_dir, 1) >= 3,
                 300, 'rank 1 at iteration 3')
        pid = _rank_pid(run_dir, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # The other rank must not wait in its collective: the attempt ends
        # and the next one starts (a new launch record) within seconds.
        wait_for(lambda: sum(r['event'] == 'launch'
                             for r in read_attempts(run_dir)) >= 2,
                 60, 'the resumed attempt')
        stopped_in = time.monotonic() - killed_at
        assert runner.wait(timeout=600) == 0, open(tmp_path /
                                                   'runner.log').read()
    finally:
        if runner.poll() is None:
            runner.kill()
        log.close()
    assert stopped_in < 60
    with open(osp.join(run_dir, 'ranks.jsonl')) as f:
        [ranks] = [json.loads(line) for line in f]
    assert ranks['cause_rank'] == 1
    assert ranks['ends']['1'] == 'killed by SIGKILL'
    ends = [r for r in read_attempts(run_dir) if r['event'] == 'end']
    assert [e.get('signal', '') for e in ends] == ['SIGKILL', '']
    starts = [r for r in read_attempts(run_dir) if r['event'] == 'start']
    assert starts[-1]['iter'] in (2, 4)   # resumed from a checkpoint

    table = read_results_csv(osp.join(str(work), 'results.csv'))
    assert len(table) == 1
    row = table.iloc[0]
    assert row.status == 'finished' and row.attempts == 2
    assert row.signals == 'SIGKILL' and row.world_size == 2
    assert row.resumed_from in ('iter 2', 'iter 4')
    assert row.resume_exact == 'yes'
    reference = read_results_csv(osp.join(str(tmp_path / 'clean'),
                                          'results.csv')).iloc[0]
    for column in AP_COLUMNS:   # -1 (no object of that size) reads as NaN
        assert row[column] == reference[column] or (
            math.isnan(row[column]) and math.isnan(reference[column])), column
    clean_dir = reference.work_dir
    for name, value in _params(clean_dir).items():
        torch.testing.assert_close(_params(run_dir)[name], value, rtol=0,
                                   atol=0, msg=name)


def test_a_rank_failing_on_bad_data_fails_the_run_with_its_error(
        tiny_builtin, tmp_path):
    dataset = str(tmp_path / 'data')
    shutil.copytree(tiny_builtin, dataset)
    [victim] = sorted(glob.glob(osp.join(dataset, 'train', '*')))[:1]
    with open(victim, 'wb') as f:
        f.write(b'not an image')
    work = tmp_path / 'work'
    grid = _grid(tmp_path / 'g.yaml', work, dataset)
    start = time.monotonic()
    done = run_grid_cli(grid, '--slots', '2', timeout=600)
    took = time.monotonic() - start
    assert done.returncode == 1, done.stdout + done.stderr
    row = read_results_csv(osp.join(str(work), 'results.csv')).iloc[0]
    assert row.status == 'failed'
    # That rank's own error, naming the rank and the file -- not a
    # collective's timeout on the other rank (gloo's is 30 minutes).
    assert row.error.startswith('rank '), row.error
    assert 'failed to load image' in row.error
    assert osp.basename(victim) in row.error
    assert row.signals == '' and row.attempts == 1
    assert took < 300
