"""A backbone without pretrained weights must not be frozen or keep BN in
eval mode: its statistics would stay 0/1 and frozen layers random."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import mmdet_plugins  # noqa: F401
from experiments.store import PROJECT_ROOT
from mmdet_plugins.engine import (BackboneInitCheckHook,
                                  untrained_frozen_backbone)

VOVNET = 'configs/centermask/centermask_v2-39_fpn_1x_coco.py'


def _cfg(path=VOVNET):
    return Config.fromfile(osp.join(PROJECT_ROOT, path))


@pytest.mark.parametrize('config', sorted(
    osp.relpath(p, PROJECT_ROOT) for p in glob.glob(
        osp.join(PROJECT_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p))
def test_no_shipped_config_freezes_an_untrained_backbone(config):
    assert untrained_frozen_backbone(_cfg(config)) is None


def test_vovnet_without_weights_is_refused_naming_the_keys():
    cfg = _cfg()
    cfg.model.backbone.init_cfg = None
    problem = untrained_frozen_backbone(cfg)
    assert 'model.backbone.norm_eval=True' in problem
    assert 'model.backbone.norm_cfg.requires_grad=False' in problem
    assert 'allow_untrained_frozen_backbone' in problem
    cfg.model.backbone.update(norm_eval=False, frozen_stages=0,
                              norm_cfg=dict(type='BN', requires_grad=True))
    assert 'model.backbone.frozen_stages=0' in untrained_frozen_backbone(cfg)
    cfg.model.backbone.frozen_stages = -1
    assert untrained_frozen_backbone(cfg) is None


def test_resnet_default_norm_eval_counts_and_weights_or_the_flag_allow():
    cfg = _cfg('configs/retinamask/retinamask_r50_fpn_1x_coco.py')
    cfg.model.backbone.pop('norm_eval')     # mmdet's ResNet default: True
    cfg.model.backbone.init_cfg = None
    assert 'norm_eval=True' in untrained_frozen_backbone(cfg)
    cfg.load_from = 'released.pth'
    assert untrained_frozen_backbone(cfg) is None
    cfg.load_from = None
    cfg.allow_untrained_frozen_backbone = True
    assert untrained_frozen_backbone(cfg) is None


def test_hook_stops_before_training():
    class FakeRunner:
        cfg = _cfg()
    FakeRunner.cfg.model.backbone.init_cfg = None
    with pytest.raises(ValueError, match='without pretrained weights'):
        BackboneInitCheckHook().before_train(FakeRunner())
