"""A run stopped at iteration k and resumed ends with the uninterrupted run's
parameters, bit for bit (issue 24, item 2).

For each tiny detector, with random flip on and its default random samplers
(CenterMask's mask-positive cap set to 1 so its ``torch.randperm`` draws):
one uninterrupted run of N = 6 iterations, checkpoints every 2 and a
validation at each; then

- k = 2 (mid-epoch: 8 images at batch 2 is 4 iterations an epoch): a copy
  of that run's work dir cut back to ``iter_2`` (the process stopped in
  iteration 3), resumed to 6;
- k = 4 (epoch boundary): a run trained to 4 that ends right after its
  checkpoint and validation (the random state saved at the checkpoint, not
  at the next iteration's start: a process stopped during validation),
  resumed to 6.

The control: the same k = 2 resume with ``RandomStateHook`` removed from
the config ends with other parameters wherever the model draws torch
random numbers (Mask R-CNN's RPN / RoI samplers, CenterMask's cap;
RetinaMask's training draws none, so it resumes exactly either way).
"""
import json
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS

import mmdet_plugins  # noqa: F401 -- registers the runner and the hook
from helpers import checkpoint_path, tiny_config
from mmdet_plugins.engine.random_state_hook import (REPORT_FILE, RNG_DIR,
                                                    read_resume_report)

N = 6
DETECTORS = {
    'mask_rcnn': 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py',
    'retinamask': 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py',
    'centermask': 'configs/centermask/centermask_r18-tiny_fpn_builtin.py',
}
# Whose training draws torch random numbers (the control must differ).
DRAWS_TORCH = {'mask_rcnn', 'centermask'}


class _LastMetrics(Hook):
    def after_val_epoch(self, runner, metrics=None):
        self.metrics = dict(metrics or {})


def _config(root, work_dir, detector, max_iters, hook=True, val=True):
    cfg = tiny_config(root, work_dir, max_iters, config=DETECTORS[detector])
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    # Validation at every checkpoint: it must not change the training.
    cfg.train_cfg.val_interval = 2 if val else 10**9
    if detector == 'centermask':
        cfg.model.train_cfg.mask.max_pos_per_img = 1
    names = [h['type'] for h in cfg.custom_hooks]
    assert 'RandomStateHook' in names   # from configs/_base_/plugins_runtime
    if not hook:
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if h['type'] != 'RandomStateHook']
    return cfg


def _train(cfg, resume=False):
    cfg.resume = resume
    runner = RUNNERS.build(cfg)
    metrics = _LastMetrics()
    runner.register_hook(metrics)
    runner.train()
    return getattr(metrics, 'metrics', None)


def _cut_back(src, dst, k):
    """``dst``: ``src``'s work dir as a process stopped in iteration k + 1
    left it (checkpoints and random states up to k, last_checkpoint -> k)."""
    shutil.copytree(src, dst)
    for name in os.listdir(dst):
        if name.startswith('iter_') and int(name[5:-4]) > k:
            os.remove(osp.join(dst, name))
    rng = osp.join(dst, RNG_DIR)
    for name in os.listdir(rng):
        if int(name.split('.')[0][5:]) > k:
            os.remove(osp.join(rng, name))
    with open(osp.join(dst, 'last_checkpoint'), 'w') as f:
        f.write(checkpoint_path(dst, k))


def _weights(work_dir):
    return torch.load(checkpoint_path(work_dir, N), map_location='cpu',
                      weights_only=False)['state_dict']


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max())
               for k in a if a[k].numel())


@pytest.fixture(scope='module', params=list(DETECTORS))
def runs(request, tiny_builtin, tmp_path_factory):
    detector = request.param
    base = tmp_path_factory.mktemp(f'exact_resume_{detector}')
    full = str(base / 'full')
    out = dict(detector=detector, full=full,
               full_metrics=_train(_config(tiny_builtin, full, detector, N)))
    # k = 2: stopped mid-epoch, in the iteration after checkpoint 2.
    k2 = str(base / 'k2')
    _cut_back(full, k2, 2)
    out['k2_metrics'] = _train(_config(tiny_builtin, k2, detector, N),
                               resume=True)
    out['k2'] = k2
    # k = 4: a run that ends at its checkpoint 4, resumed to 6.
    k4 = str(base / 'k4')
    _train(_config(tiny_builtin, k4, detector, 4))
    out['k4_metrics'] = _train(_config(tiny_builtin, k4, detector, N),
                               resume=True)
    out['k4'] = k4
    # Control: k = 2 again, RandomStateHook removed from the config.
    nohook = str(base / 'k2_without_hook')
    _cut_back(full, nohook, 2)
    _train(_config(tiny_builtin, nohook, detector, N, hook=False,
                   val=False), resume=True)
    out['k2_without_hook'] = nohook
    return out


@pytest.mark.slow
@pytest.mark.parametrize('k', [2, 4])
def test_resumed_run_ends_as_the_uninterrupted_one(runs, k):
    full, resumed = _weights(runs['full']), _weights(runs[f'k{k}'])
    diff = max_abs_diff(full, resumed)
    print(f'{runs["detector"]} k={k}: max |param diff| with the hook {diff}')
    differing = [name for name in full
                 if not torch.equal(full[name], resumed[name])]
    assert not differing, (f'{len(differing)} tensors differ (max '
                           f'{diff:g}), e.g. {differing[:3]}')
    # Same weights, same validation metrics at iteration 6.
    assert runs[f'k{k}_metrics'] == runs['full_metrics']
    report = read_resume_report(runs[f'k{k}'])
    assert report['exact'] is True, report
    last = report['resumes'][-1]
    assert (last['kind'], last['step'], last['reasons']) == ('iter', k, [])
    # k = 2 resumes from the state saved at iteration 3's start, whose
    # numpy/python part checks the data replay; k = 4's was saved at the
    # checkpoint, before the validation and the next fetch.
    assert last['data_rng_checked'] is (k == 2)


@pytest.mark.slow
def test_uninterrupted_run_records_no_resume(runs):
    assert not osp.exists(osp.join(runs['full'], REPORT_FILE))
    states = sorted(os.listdir(osp.join(runs['full'], RNG_DIR)))
    assert states == [f'iter_{i}.rank0.pth' for i in (2, 4, 6)]


@pytest.mark.slow
def test_without_the_hook_the_resumed_run_differs(runs):
    full = _weights(runs['full'])
    resumed = _weights(runs['k2_without_hook'])
    diff = max_abs_diff(full, resumed)
    print(f'{runs["detector"]} k=2: max |param diff| without the hook {diff}')
    assert not osp.exists(osp.join(runs['k2_without_hook'], REPORT_FILE))
    if runs['detector'] in DRAWS_TORCH:
        assert diff > 0
    else:
        assert diff == 0


@pytest.mark.slow
def test_missing_random_state_is_recorded_as_inexact(runs, tiny_builtin,
                                                     tmp_path):
    """A checkpoint without its random state (written before the hook):
    one warning, and resume_exactness.json says where and why."""
    if runs['detector'] != 'mask_rcnn':
        pytest.skip('one detector is enough')
    work_dir = str(tmp_path / 'old_checkpoint')
    _cut_back(runs['full'], work_dir, 4)
    shutil.rmtree(osp.join(work_dir, RNG_DIR))
    _train(_config(tiny_builtin, work_dir, 'mask_rcnn', N), resume=True)
    with open(osp.join(work_dir, REPORT_FILE)) as f:
        report = json.load(f)
    assert report['exact'] is False
    (entry,) = report['resumes']
    assert (entry['kind'], entry['step'], entry['exact']) == ('iter', 4,
                                                              False)
    assert 'no random state saved for iter 4 on rank 0' in \
        entry['reasons'][0]
    assert max_abs_diff(_weights(runs['full']), _weights(work_dir)) > 0


@pytest.mark.slow
def test_a_state_that_did_not_come_back_is_recorded_as_inexact(
        tiny_builtin, tmp_path):
    """Each rank checks the model and optimizer state it resumes from
    against the digests it saved with its random state (issue 39)."""
    full, work_dir = str(tmp_path / 'full'), str(tmp_path / 'resumed')
    _train(_config(tiny_builtin, full, 'mask_rcnn', 4, val=False))
    _cut_back(full, work_dir, 2)
    path = osp.join(work_dir, RNG_DIR, 'iter_2.rank0.pth')
    saved = torch.load(path, weights_only=True)
    assert set(saved['digests']) == {'model', 'optimizer'}
    saved['digests']['model'] = 'the state of another run'
    torch.save(saved, path)
    _train(_config(tiny_builtin, work_dir, 'mask_rcnn', 4, val=False),
           resume=True)
    (entry,) = read_resume_report(work_dir)['resumes']
    assert entry['exact'] is False
    assert entry['reasons'] == [
        'this process\'s model state after the resume is not the one it '
        'saved at iter 2']
