"""A process that trained with data workers exits, whatever became of its
training loop.

The training loader's workers ignore SIGTERM (the stop is the main
process's), so multiprocessing's exit handler -- SIGTERM to daemonic
children, then a join without timeout -- would wait on them forever. A
CenterMask V2-57 run of ``make check-coco`` hung so after writing
FINISHED.json: its loop was gone, its loader iterator (and two workers)
still alive. Here the iterator outlives the runner on purpose.
"""
import os.path as osp
import subprocess
import sys

import pytest

from experiments.store import PROJECT_ROOT

CHILD = '''
import gc, sys
from mmengine.registry import RUNNERS
import mmdet_plugins  # first: mmdet without seaborn (mmdet_import.py)
from mmdet.utils import register_all_modules
register_all_modules()
sys.path.insert(0, {tests!r})
sys.path.insert(0, {here!r})
from test_stop_checkpoint_hook import config
cfg = config({root!r}, {work_dir!r}, 1, 2)
cfg.train_dataloader.persistent_workers = True
runner = RUNNERS.build(cfg)
runner.train()
kept = runner.train_loop.dataloader_iterator._iterator   # outlives the loop
assert len([w for w in kept._workers if w.is_alive()]) == 2
del runner
gc.collect()
print('trained; exiting', flush=True)
'''


@pytest.mark.slow
def test_a_run_with_workers_exits_when_its_loop_is_gone(tiny_builtin,
                                                        tmp_path):
    code = CHILD.format(tests=osp.join(PROJECT_ROOT, 'tests'),
                        here=osp.dirname(osp.abspath(__file__)),
                        root=tiny_builtin, work_dir=str(tmp_path / 'run'))
    proc = subprocess.Popen([sys.executable, '-c', code], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        subprocess.run(['pkill', '-9', '-s', str(proc.pid)])
        out, _ = proc.communicate()
        pytest.fail('the process did not exit after training:\n'
                    + out[-2000:])
    assert 'trained; exiting' in out, out[-2000:]
    assert proc.returncode == 0, out[-2000:]
