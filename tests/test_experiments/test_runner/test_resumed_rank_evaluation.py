"""A resumed 2-process run reports the uninterrupted run's detections and AP
(issue 39, item 2).

Tiny Mask R-CNN, 2 gloo processes of 2 images each, 4 iterations with a
checkpoint every 2 and the BN statistics trained per process (no frozen
BN, random flip on: the run as the grid trains it). The uninterrupted run
is trained through ``run_grid.py``; a copy of its run dir is cut back to the
checkpoint of iteration 2 (every process stopped in iteration 3) and resumed
through ``rank_launch``. Both must report the same detections on every
validation image, hence every AP column, and the resumed row must say
``resume_exact=yes``. Before the fix the rows differed on the images rank 1
evaluates: the uninterrupted run's rank 1 tested the checkpoint before the
last (it re-read ``last_checkpoint`` while rank 0 was writing the final
one), the resumed run's rank 1 tested its own BN statistics -- and
``resume_exact`` said yes.
"""
import glob
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import TINY_MASK_RCNN, run_grid_cli, tiny_dataset_entry

from experiments.store import PROJECT_ROOT, read_json

pytestmark = pytest.mark.slow

AP_COLUMNS = [f'{t}_{m}' for t in ('box', 'mask')
              for m in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')]


def _uninterrupted(tmp_path, dataset) -> str:
    grid = tmp_path / 'grid.yaml'
    grid.write_text(yaml.safe_dump(dict(
        name='k2', work_dir=str(tmp_path / 'work'),
        models={'mask_rcnn': {'config': TINY_MASK_RCNN, 'processes': 2}},
        datasets={'tiny': tiny_dataset_entry(dataset)}, seeds=[0],
        total_batch=4, lr_scaling='manual',
        overrides={'train_cfg.max_iters': 4,
                   'default_hooks.checkpoint.interval': 2})))
    done = run_grid_cli(str(grid), '--slots', '2', timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    [run_dir] = glob.glob(str(tmp_path / 'work' / 'mask_rcnn__*'))
    return run_dir


def _stopped_after(run_dir: str, dst: str, k: int) -> str:
    """``run_dir`` as every process stopped in iteration ``k + 1`` left
    it: checkpoints and random states up to ``k``, nothing evaluated."""
    shutil.copytree(run_dir, dst)
    for name in os.listdir(dst):
        if (name.startswith('iter_') and int(name[5:-4]) > k) or name in (
                'FINISHED.json', 'detections', '.lock'):
            path = osp.join(dst, name)
            shutil.rmtree(path) if osp.isdir(path) else os.remove(path)
    for name in os.listdir(osp.join(dst, 'rng_states')):
        if int(name.split('.')[0][5:]) > k:
            os.remove(osp.join(dst, 'rng_states', name))
    with open(osp.join(dst, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(dst, f'iter_{k}.pth'))
    return dst


def _resume(run_dir: str) -> dict:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               MKL_NUM_THREADS='1')
    done = subprocess.run(
        [sys.executable, '-m', 'experiments.runner.rank_launch',
         '--nproc=2', run_dir], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return read_json(osp.join(run_dir, 'FINISHED.json'))


def _detections(run_dir: str) -> dict:
    """Image id -> its detections (box, score, label), as the row's AP."""
    out = {}
    with open(osp.join(run_dir, 'detections', 'val.bbox.json')) as f:
        for d in json.load(f):
            out.setdefault(d['image_id'], []).append(
                (d['category_id'], d['bbox'], d['score']))
    return out


@pytest.fixture(scope='module')
def runs(tiny_builtin, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('resumed_rank_evaluation')
    clean = _uninterrupted(tmp_path, tiny_builtin)
    resumed = _stopped_after(clean, str(tmp_path / 'resumed'), 2)
    return dict(clean=clean, resumed=resumed, row=_resume(resumed),
                tmp=tmp_path)


def _evaluated_in_one_process(run_dir: str, checkpoint: str,
                              out: str) -> dict:
    """The detections of ``checkpoint`` tested in this process (one rank,
    one thread, as each rank ran)."""
    from mmengine.config import Config
    from mmengine.registry import RUNNERS

    import mmdet_plugins  # noqa: F401 -- registers the runner
    os.makedirs(out)
    shutil.copy(osp.join(run_dir, checkpoint), out)   # a trusted work dir
    cfg = Config.fromfile(osp.join(run_dir, 'config.py'))
    cfg.pop('model_wrapper_cfg', None)
    cfg.update(work_dir=out, launcher='none', resume=False,
               load_from=osp.join(out, checkpoint))
    cfg.test_evaluator.outfile_prefix = osp.join(out, 'detections', 'val')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        RUNNERS.build(cfg).test()
    finally:
        torch.set_num_threads(threads)
    return _detections(out)


def test_a_resumed_2_process_run_evaluates_as_the_uninterrupted_one(runs):
    clean, resumed, row = runs['clean'], runs['resumed'], runs['row']
    reference = read_json(osp.join(clean, 'FINISHED.json'))
    assert row['resumed_from'] == 'iter 2'
    assert row['iterations'] == reference['iterations'] == 4

    expected, got = _detections(clean), _detections(resumed)
    assert sorted(got) == sorted(expected)
    differing = [i for i in sorted(expected) if got[i] != expected[i]]
    assert not differing, f'detections differ on images {differing}'
    for column in AP_COLUMNS:   # -1 (no object of that size) reads NaN
        a, b = row[column], reference[column]
        assert a == b or (math.isnan(a) and math.isnan(b)), (column, a, b)
    assert row['resume_exact'] == 'yes', row['resume_exact']


def test_every_rank_tested_the_final_checkpoint(runs):
    """The uninterrupted row's detections are its final checkpoint's, on
    rank 1's images too (before the fix rank 1 tested the checkpoint before
    whenever it re-read ``last_checkpoint`` ahead of rank 0 rewriting it:
    a race, so this test alone was not always red)."""
    expected = _evaluated_in_one_process(runs['clean'], 'iter_4.pth',
                                         str(runs['tmp'] / 'one_process'))
    got = _detections(runs['clean'])
    differing = [i for i in sorted(expected) if got.get(i) != expected[i]]
    assert not differing, f'detections differ on images {differing}'
