"""Every model config of the repository loads and builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from experiments.store import PROJECT_ROOT
from experiments.grid.run_config import check_model_builds

CONFIGS = sorted(
    osp.relpath(p, PROJECT_ROOT)
    for p in glob.glob(osp.join(PROJECT_ROOT, 'configs', '**', '*.py'),
                       recursive=True)
    if '_base_' not in p)


# Building every COCO-sized model takes a minute: `make test-fast` builds
# the CPU (builtin) configs, `make test` all of them.
@pytest.mark.parametrize('config', [
    pytest.param(c, marks=() if c.endswith('_builtin.py') else
                 pytest.mark.slow) for c in CONFIGS])
def test_config_builds(config):
    cfg = Config.fromfile(osp.join(PROJECT_ROOT, config))
    assert cfg.custom_imports['imports'] == ['mmdet_plugins']
    assert cfg.runner_type == 'TrustedCheckpointRunner'
    assert check_model_builds(cfg, config) > 0


def test_tiny_variant_is_tiny():
    cfg = Config.fromfile(osp.join(
        PROJECT_ROOT, 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py'))
    assert check_model_builds(cfg, 'tiny') < 3_000_000
    assert max(cfg.train_pipeline[2]['scale']) <= 128
    assert cfg.train_cfg.max_iters <= 300
