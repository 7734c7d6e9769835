"""The checking tools' grids: one optimizer step of each COCO config."""
import dataclasses
import json

import pytest
import torch
import yaml

from experiments.grid.check_grids import (one_step_overrides,
                                          write_check_grid, write_val_subset)
from experiments.plan import weights_check

MASK_RCNN = 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
CENTERMASK = 'configs/centermask/centermask_r50_fpn_1x_coco.py'
V2_39 = 'configs/centermask/centermask_v2-39_fpn_1x_coco.py'
TINY = 'configs/centermask/centermask_r18-tiny_fpn_builtin.py'


def _weights_cached(monkeypatch, cached: bool) -> None:
    """Every initial weight in (or missing from) this machine's cache,
    whatever this machine has."""
    real = weights_check.weight_sources

    def sources(cfg, config):
        return [dataclasses.replace(s, available=cached)
                for s in real(cfg, config)]
    monkeypatch.setattr(weights_check, 'weight_sources', sources)


@pytest.fixture
def all_weights_cached(monkeypatch):
    _weights_cached(monkeypatch, True)


def test_an_iteration_based_recipe_trains_one_step(all_weights_cached):
    assert one_step_overrides(CENTERMASK) == {
        'train_cfg.max_iters': 1, 'model.test_cfg.score_thr': 0.0}


def test_an_epoch_based_recipe_trains_one_epoch_of_one_total_batch(
        all_weights_cached):
    # mmdet's Mask R-CNN: 16 images per step, score_thr in test_cfg.rcnn.
    assert one_step_overrides(MASK_RCNN) == {
        'train_cfg.max_epochs': 1, 'train_dataloader.dataset.indices': 16,
        'model.test_cfg.rcnn.score_thr': 0.0}
    assert one_step_overrides(MASK_RCNN, images_per_step=2)[
        'train_dataloader.dataset.indices'] == 2


def test_a_random_backbone_with_frozen_bn_trains_with_batch_statistics(
        monkeypatch):
    # Random frozen BN (mean 0, variance 1) normalises nothing: a random
    # VoVNet-39 so frozen predicted no detection after one step.
    # Momentum None: the test normalises with the statistics trained on.
    _weights_cached(monkeypatch, False)
    for config in (V2_39, CENTERMASK):
        found = one_step_overrides(config)
        assert found['model.backbone.norm_eval'] is False
        assert found['model.backbone.norm_cfg.momentum'] is None
    from mmdet.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(V2_39)
    cfg.merge_from_dict({k: v for k, v in one_step_overrides(V2_39).items()
                         if k.startswith('model.backbone.')})
    cfg.model.backbone.init_cfg = None
    backbone = MODELS.build(cfg.model.backbone)
    bns = [m for m in backbone.modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.momentum is None for m in bns)
    backbone.train()
    assert all(m.training for m in bns)
    # A backbone already training its BN is left as it is.
    assert 'model.backbone.norm_eval' not in one_step_overrides(TINY)
    _weights_cached(monkeypatch, True)
    assert 'model.backbone.norm_eval' not in one_step_overrides(V2_39)


def test_the_grid_names_each_config_and_tests_the_first_images(
        coco128, tmp_path):
    path = write_check_grid('check', str(tmp_path), [MASK_RCNN], coco128, 3,
                            {'a.b': 1}, {MASK_RCNN: {'c': 2}},
                            total_batch=2, max_images_per_process=1)
    grid = yaml.safe_load(open(path))
    assert grid['models'] == {'mask-rcnn_r50_fpn_1x_coco': {
        'config': MASK_RCNN, 'overrides': {'c': 2}}}
    assert grid['lr_scaling'] == 'manual' and grid['total_batch'] == 2
    assert grid['max_images_per_process'] == 1
    val = json.load(open(grid['datasets']['coco128']['val_ann']))
    assert len(val['images']) == 3
    assert {a['image_id'] for a in val['annotations']} == \
        {i['id'] for i in val['images']}
    subset = write_val_subset(coco128, 3, str(tmp_path / 'again.json'))
    assert json.load(open(subset)) == val
