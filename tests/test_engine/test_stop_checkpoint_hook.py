"""SIGTERM during training saves a checkpoint at the iteration it
interrupts; the resumed run trains each iteration once and ends as the
uninterrupted one (issue 35, item 4).

Tiny Mask R-CNN, 8 iterations at batch 2, interval checkpoints every 6:
the process is stopped once iteration 2 is logged, i.e. long before the
next interval checkpoint. Without the hook it dies mid-iteration with no
checkpoint and trains iterations 1-2 (or more) twice. Under gradient
accumulation (2 micro-batches) the stop waits for the iteration that steps
the optimizer. With a data worker the signal goes to the whole process
group, as Slurm and the runner send it: the worker leaves the stop to the
main process.
"""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import mmdet_plugins  # noqa: F401 -- registers the hooks
from helpers import checkpoint_path, tiny_config
from mmdet_plugins.engine.random_state_hook import read_resume_report

from experiments.store import PROJECT_ROOT

N = 8
ITER_LINE = re.compile(r'Iter\(train\) \[\s*(\d+)/\d+\]')
CHILD = '''
import sys
from mmengine.registry import RUNNERS
import mmdet_plugins  # first: mmdet without seaborn (mmdet_import.py)
from mmdet.utils import register_all_modules
register_all_modules()
sys.path.insert(0, {tests!r})
sys.path.insert(0, {here!r})
from test_stop_checkpoint_hook import config
cfg = config({root!r}, {work_dir!r}, {accumulation}, {workers})
cfg.resume = {resume}
RUNNERS.build(cfg).train()
'''


def config(root, work_dir, accumulation, workers=0):
    cfg = tiny_config(root, work_dir, N)
    cfg.train_dataloader.num_workers = workers
    cfg.default_hooks.checkpoint.interval = 6
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.optim_wrapper.accumulative_counts = accumulation
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    assert 'StopCheckpointHook' in [h['type'] for h in cfg.custom_hooks]
    return cfg


def _child(root, work_dir, accumulation, workers, resume, out):
    code = CHILD.format(tests=osp.join(PROJECT_ROOT, 'tests'),
                        here=osp.dirname(osp.abspath(__file__)), root=root,
                        work_dir=work_dir, accumulation=accumulation,
                        workers=workers, resume=resume)
    return subprocess.Popen([sys.executable, '-c', code], cwd=PROJECT_ROOT,
                            stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _iterations(text):
    return [int(m) for m in ITER_LINE.findall(text)]


def _weights(work_dir):
    return torch.load(checkpoint_path(work_dir, N), map_location='cpu',
                      weights_only=False)['state_dict']


@pytest.mark.slow
@pytest.mark.parametrize('accumulation, workers', [(1, 0), (2, 1)])
def test_sigterm_checkpoints_the_current_iteration_and_resumes_exactly(
        tiny_builtin, tmp_path, accumulation, workers):
    # The uninterrupted run in a fresh process too, as the stopped one: a
    # run in this worker would inherit what earlier tests left in it.
    full = str(tmp_path / 'full')
    with open(tmp_path / 'full.log', 'w') as out:
        assert _child(tiny_builtin, full, accumulation, workers, False,
                      out).wait(300) == 0, (tmp_path / 'full.log').read_text()

    stopped = str(tmp_path / 'stopped')
    first_log = tmp_path / 'first.log'
    with open(first_log, 'w') as out:
        proc = _child(tiny_builtin, stopped, accumulation, workers, False,
                      out)
        deadline = time.time() + 300
        while 2 not in _iterations(first_log.read_text()):
            assert proc.poll() is None, first_log.read_text()[-3000:]
            assert time.time() < deadline, 'iteration 2 never logged'
            time.sleep(0.2)
        if workers:
            os.killpg(proc.pid, signal.SIGTERM)   # the workers get it too
        else:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == -signal.SIGTERM
    first = _iterations(first_log.read_text())
    last = first[-1]
    assert 2 <= last < 6 and last % accumulation == 0, first
    # The checkpoint of the last iteration trained, with its random state.
    with open(osp.join(stopped, 'last_checkpoint')) as f:
        assert f.read().strip() == checkpoint_path(stopped, last)
    assert osp.isfile(osp.join(stopped, 'rng_states',
                               f'iter_{last}.rank0.pth'))
    assert 'SIGTERM: stopped after iteration' in first_log.read_text()

    second_log = tmp_path / 'second.log'
    with open(second_log, 'w') as out:
        assert _child(tiny_builtin, stopped, accumulation, workers, True,
                      out).wait(300) == 0, second_log.read_text()[-3000:]
    # Each iteration trained once, over both attempts.
    assert first + _iterations(second_log.read_text()) == \
        list(range(1, N + 1))
    a, b = _weights(full), _weights(stopped)
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, differing[:3]
    report = read_resume_report(stopped)
    assert report['exact'] is True, report
    assert [e['step'] for e in report['resumes']] == [last]
