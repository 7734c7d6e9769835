import os.path as osp
import pickle
import shutil

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS
from mmengine.runner.checkpoint import _load_checkpoint

import mmdet_plugins  # noqa: F401 -- registers the runner
from helpers import checkpoint_path, tiny_config
from mmdet_plugins.engine.trusted_checkpoint import (TrustedCheckpointRunner,
                                                     trust_checkpoints_under)


class _RecordStart(Hook):
    """Remember the iteration and weights training (re)starts from."""

    def before_train(self, runner):
        self.iter = runner.iter
        self.state = {k: v.clone() for k, v in
                      runner.model.state_dict().items()}
        self.momentum = [
            s.get('momentum_buffer') for s in
            runner.optim_wrapper.optimizer.state.values()]


@pytest.fixture(scope='module')
def resumed(tiny_builtin, tmp_path_factory):
    """Train 2 iterations, stop; resume the same work dir up to 4."""
    work_dir = str(tmp_path_factory.mktemp('resume'))
    first = RUNNERS.build(tiny_config(tiny_builtin, work_dir, max_iters=2))
    assert isinstance(first, TrustedCheckpointRunner)
    first.train()
    cfg = tiny_config(tiny_builtin, work_dir, max_iters=4)
    cfg.resume = True
    second = RUNNERS.build(cfg)
    hook = _RecordStart()
    second.register_hook(hook)
    second.train()
    return work_dir, second, hook


@pytest.mark.slow
def test_resume_continues_iterations_and_weights(resumed):
    work_dir, runner, hook = resumed
    saved = torch.load(checkpoint_path(work_dir, 2), weights_only=False)
    assert saved['meta']['iter'] == 2
    assert hook.iter == 2
    for name, value in saved['state_dict'].items():
        assert torch.equal(hook.state[name], value), name
    # The optimizer state came back too: SGD momentum exists at restart.
    assert hook.momentum and all(m is not None for m in hook.momentum)
    assert runner.iter == 4
    final = torch.load(checkpoint_path(work_dir, 4), weights_only=False)
    assert final['meta']['iter'] == 4
    assert any(not torch.equal(final['state_dict'][k], v)
               for k, v in saved['state_dict'].items())


TORCH_WEIGHTS_ONLY_DEFAULT = tuple(
    int(x) for x in torch.__version__.split('.')[:2]) >= (2, 6)


@pytest.mark.slow
@pytest.mark.skipif(not TORCH_WEIGHTS_ONLY_DEFAULT,
                    reason='torch < 2.6 loads everything unrestricted')
def test_only_the_work_dir_is_trusted(resumed, tmp_path):
    work_dir, runner, _ = resumed
    own = checkpoint_path(work_dir, 4)
    # What the runner works around: torch's default refuses the file.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(own)
    outside = str(tmp_path / 'copied.pth')
    shutil.copy(own, outside)
    with trust_checkpoints_under(work_dir):
        assert _load_checkpoint(own, map_location='cpu')['meta']['iter'] == 4
        with pytest.raises(pickle.UnpicklingError):
            _load_checkpoint(outside, map_location='cpu')
    # Outside the context nothing is trusted any more.
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(own, map_location='cpu')
    # The runner's load_from of a foreign checkpoint keeps the safe default.
    with pytest.raises(pickle.UnpicklingError):
        runner.load_checkpoint(outside)
    assert osp.isfile(own)
