"""A resumed run loads only the batches it trains, and ends as the
uninterrupted run (issue 35, item 3).

mmengine's ``IterBasedTrainLoop`` resumes at iteration k by loading the k
batches already trained on; ``ResumableIterBasedTrainLoop`` positions the
samplers on indices and restores the random state saved before batch
k + 1 was fetched. Tiny Mask R-CNN (its RPN / RoI samplers draw torch
random numbers) with random flip, 4 iterations at batch 2, checkpoints every
2; resumed at k = 2. With data workers the pipeline runs in other processes,
each batch's draws seeded from its number.
"""
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS

import mmdet_plugins  # noqa: F401 -- registers the loop and the hooks
from helpers import checkpoint_path, tiny_config
from mmdet_plugins.engine.random_state_hook import read_resume_report

N, K, BATCH = 4, 2, 2


class _CountLoads(Hook):
    """Counts the training samples this process loads once training
    starts (the resume's advance included)."""

    priority = 'VERY_HIGH'

    def __init__(self):
        self.loads = 0

    def before_train(self, runner):
        dataset = runner.train_dataloader.dataset
        load = dataset.prepare_data

        def counted(idx):
            self.loads += 1
            return load(idx)
        dataset.prepare_data = counted


def _train(root, work_dir, max_iters, workers, resume=False, loop=None):
    cfg = tiny_config(root, work_dir, max_iters)
    assert cfg.train_cfg.type == 'ResumableIterBasedTrainLoop'
    if loop is not None:
        cfg.train_cfg.type = loop
    cfg.train_dataloader.num_workers = workers
    cfg.train_dataloader.persistent_workers = workers > 0
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.resume = resume
    runner = RUNNERS.build(cfg)
    counter = _CountLoads()
    runner.register_hook(counter)
    runner.train()
    return counter.loads


def _resume_from(full, dst, k):
    """``full``'s work dir as a process stopped in iteration k + 1 left it:
    checkpoints and random states after k removed."""
    shutil.copytree(full, dst)
    for i in range(k + 1, N + 1):
        for path in (checkpoint_path(dst, i),
                     osp.join(dst, 'rng_states', f'iter_{i}.rank0.pth')):
            if osp.exists(path):
                os.remove(path)
    with open(osp.join(dst, 'last_checkpoint'), 'w') as f:
        f.write(checkpoint_path(dst, k))


def _weights(work_dir):
    return torch.load(checkpoint_path(work_dir, N), map_location='cpu',
                      weights_only=False)['state_dict']


@pytest.mark.slow
@pytest.mark.parametrize('workers', [0, 2])
def test_a_resumed_run_loads_only_what_it_trains_and_ends_the_same(
        tiny_builtin, tmp_path, workers):
    full = str(tmp_path / 'full')
    assert _train(tiny_builtin, full, N, workers) == \
        (N * BATCH if workers == 0 else 0)
    resumed = str(tmp_path / 'resumed')
    _resume_from(full, resumed, K)
    loads = _train(tiny_builtin, resumed, N, workers, resume=True)
    if workers == 0:
        # Only the batches of iterations K+1..N; mmengine's loop loads the
        # K batches before them too.
        assert loads == (N - K) * BATCH
    a, b = _weights(full), _weights(resumed)
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, differing[:3]
    report = read_resume_report(resumed)
    assert report['exact'] is True, report
    (entry,) = report['resumes']
    assert (entry['step'], entry['reasons'], entry['data_rng_checked']) == (
        K, [], True)


@pytest.mark.slow
def test_without_a_saved_random_state_it_replays_like_mmengine(
        tiny_builtin, tmp_path):
    """No state to restore the pipeline's draws from: the loop loads the K
    batches again (as mmengine's loop does), the only way to get them."""
    full = str(tmp_path / 'full')
    _train(tiny_builtin, full, K, 0)
    shutil.rmtree(osp.join(full, 'rng_states'))
    loads = _train(tiny_builtin, full, N, 0, resume=True)
    assert loads == N * BATCH
    assert read_resume_report(full)['exact'] is False
