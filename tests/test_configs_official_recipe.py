"""The shipped COCO configs carry the official codebases' recipe values.

Each expected value is written here from the official file (named with its
line), independently of the configs; a config edit that drifts from the
official recipe fails one of these tests. Official code: CM1 =
youngwanLEE/CenterMask @72147e8 (maskrcnn-benchmark), CM2 =
youngwanLEE/centermask2 @6adabd6 (detectron2 v0.3), RM =
chengyangfu/retinamask @5bcf2e7 (maskrcnn-benchmark).
"""
import copy
import functools
import glob
import os.path as osp
from typing import Dict, Tuple

import numpy as np
import pytest
import torch
from mmengine.config import Config

from experiments.grid.spec import load_grid
from experiments.store import PROJECT_ROOT, project_path

CM = 'configs/centermask/'
CM1_R50 = CM + 'centermask_r50_fpn_1x_coco.py'
CM1_R50_MS2X = CM + 'centermask_r50_fpn_ms-2x_coco.py'
V2_1X = [CM + f'centermask_v2-{d}_fpn_1x_coco.py' for d in ('39', '57')] + [
    CM + 'centermask_v2-39-timm_fpn_1x_coco.py']
V2_MS3X = [CM + f'centermask_v2-{d}_fpn_ms-3x_coco.py' for d in (39, 57, 99)]
CM_COCO = sorted(osp.relpath(p, PROJECT_ROOT) for p in glob.glob(
    osp.join(PROJECT_ROOT, CM, '*_coco.py')))
# CM2's centermask_lite_*_FPN_ms_4x.yaml (V-39, V-19, V-19-slim(-dw), Mv2).
LITE = [c for c in CM_COCO if osp.basename(c).startswith('centermask-lite_')]
RM_1X = 'configs/retinamask/retinamask_r50_fpn_1x_coco.py'
RN_RM = 'configs/retinamask/retinanet_r50_fpn_1x_coco_retinamask-recipe.py'

# CM1 centermask_R_50_FPN_1x.yaml:42-43 (BASE_LR 0.01, WEIGHT_DECAY 1e-4) +
# maskrcnn_benchmark/config/defaults.py:467,469,472 (BIAS_LR_FACTOR 2,
# MOMENTUM 0.9, WEIGHT_DECAY_BIAS 0).
CM1_SOLVER = dict(lr=0.01, wd=1e-4, bias_lr_factor=2., wd_bias=0.)
# CM2 Base-CenterMask-VoVNet.yaml:31 (BASE_LR 0.01) + detectron2 v0.3
# config/defaults.py:518,522,525,556,557,560 (MOMENTUM 0.9, WEIGHT_DECAY
# 1e-4, WEIGHT_DECAY_NORM 0, BIAS_LR_FACTOR 1, WEIGHT_DECAY_BIAS =
# WEIGHT_DECAY, CLIP_GRADIENTS off); no CM2 yaml overrides them.
CM2_SOLVER = dict(lr=0.01, wd=1e-4, wd_norm=0., bias_lr_factor=1.,
                  wd_bias=1e-4)
# RM retinanet_mask_R-50-FPN_1x.yaml:48-49 (BASE_LR 0.005, WEIGHT_DECAY
# 1e-4) + maskrcnn_benchmark/config/defaults.py:322,324,327.
RM_SOLVER = dict(lr=0.005, wd=1e-4, bias_lr_factor=2., wd_bias=0.)


def maskrcnn_benchmark_rule(model: torch.nn.Module, lr: float, wd: float,
                            bias_lr_factor: float,
                            wd_bias: float) -> Dict[str, Tuple[float, float]]:
    """maskrcnn-benchmark solver/build.py make_optimizer (CM1 and RM)."""
    out = {}
    for key, value in model.named_parameters():
        if not value.requires_grad:
            continue
        p_lr, p_wd = lr, wd
        if 'bias' in key:
            p_lr, p_wd = lr * bias_lr_factor, wd_bias
        out[key] = (p_lr, p_wd)
    return out


def detectron2_v03_rule(model: torch.nn.Module, lr: float, wd: float,
                        wd_norm: float, bias_lr_factor: float,
                        wd_bias: float) -> Dict[str, Tuple[float, float]]:
    """detectron2 v0.3 solver/build.py get_default_optimizer_params (CM2)."""
    norm_module_types = (
        torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d,
        torch.nn.SyncBatchNorm, torch.nn.GroupNorm, torch.nn.InstanceNorm1d,
        torch.nn.InstanceNorm2d, torch.nn.InstanceNorm3d, torch.nn.LayerNorm,
        torch.nn.LocalResponseNorm)
    out, memo = {}, set()
    for mod_name, module in model.named_modules():
        for name, value in module.named_parameters(recurse=False):
            if not value.requires_grad or value in memo:
                continue
            memo.add(value)
            p_lr, p_wd = lr, wd
            if isinstance(module, norm_module_types):
                p_wd = wd_norm
            elif name == 'bias':
                p_lr, p_wd = lr * bias_lr_factor, wd_bias
            out[f'{mod_name}.{name}' if mod_name else name] = (p_lr, p_wd)
    return out


@functools.lru_cache(maxsize=None)
def _cfg(path: str) -> Config:
    # Parsed once per module (mmdet:: bases are slow); tests only read it.
    return Config.fromfile(project_path(path))


def _tiny_model(config: str, frozen_backbone_norm: bool) -> torch.nn.Module:
    """A CPU-size model with the real heads' module names."""
    import mmdet_plugins  # noqa: F401 -- registers the plugin modules
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    model_cfg = copy.deepcopy(_cfg(config).model)
    model_cfg.backbone.norm_cfg = dict(
        type='BN', requires_grad=not frozen_backbone_norm)
    return MODELS.build(model_cfg)


@pytest.fixture(scope='module')
def tiny_models():
    return {
        (kind, frozen): _tiny_model(
            f'configs/{kind}/{kind}_r18-tiny_fpn_builtin.py', frozen)
        for kind in ('centermask', 'retinamask') for frozen in (True, False)}


def _built_groups(model: torch.nn.Module,
                  optim_wrapper: dict) -> Dict[str, Tuple[float, float]]:
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, copy.deepcopy(optim_wrapper))
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            out[names[id(p)]] = (group['lr'], group['weight_decay'])
    return out


def _assert_same(built: dict, official: dict) -> None:
    assert set(built) == set(official)
    wrong = {n: (built[n], official[n]) for n in official
             if not np.allclose(built[n], official[n], rtol=0, atol=1e-12)}
    assert not wrong, f'(built, official) lr / weight decay: {wrong}'


CLAIMS = [(CM1_R50, 'cm1'), (CM1_R50_MS2X, 'cm1')] + [
    (c, 'cm2') for c in V2_1X + V2_MS3X + LITE] + [
    (RM_1X, 'rm'), (RN_RM, 'rm'),
    ('configs/retinamask/retinamask_r50_fpn_ms-2x_coco.py', 'rm')]


def test_claims_cover_every_centermask_coco_config():
    assert sorted(c for c, _ in CLAIMS if c.startswith(CM)) == CM_COCO


@pytest.mark.parametrize('config, official', CLAIMS,
                         ids=[osp.basename(c) for c, _ in CLAIMS])
def test_optimizer_gives_each_parameter_the_official_lr_and_decay(
        config, official, tiny_models):
    """Per-parameter LR and weight decay of the config's optim_wrapper, built
    by mmengine on a tiny model with the real heads (FCOS GN towers, mask and
    MaskIoU heads), equal the official rule; backbone BN trains or not as in
    the shipped config (and in the official model: FrozenBN)."""
    cfg = _cfg(config)
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'SGD' and opt.momentum == 0.9
    assert cfg.optim_wrapper.get('clip_grad') is None
    frozen = not cfg.model.backbone.norm_cfg.requires_grad
    assert frozen  # FrozenBN in all three official codebases
    kind = 'retinamask' if official == 'rm' else 'centermask'
    model = tiny_models[(kind, frozen)]
    solver = dict(cm1=CM1_SOLVER, cm2=CM2_SOLVER, rm=RM_SOLVER)[official]
    assert (opt.lr, opt.weight_decay) == (solver['lr'], solver['wd'])
    rule = detectron2_v03_rule if official == 'cm2' else \
        maskrcnn_benchmark_rule
    _assert_same(_built_groups(model, cfg.optim_wrapper),
                 rule(model, **solver))


def test_cm2_rule_holds_with_trainable_bn_too(tiny_models):
    """detectron2 gives BN the norm rule (weight and bias: no decay, LR x1)
    as GN; mmengine's norm_decay_mult does the same."""
    cfg = _cfg(V2_MS3X[0])
    model = tiny_models[('centermask', False)]
    assert any(isinstance(m, torch.nn.BatchNorm2d) and m.weight.requires_grad
               for m in model.modules())
    _assert_same(_built_groups(model, cfg.optim_wrapper),
                 detectron2_v03_rule(model, **CM2_SOLVER))


@pytest.mark.parametrize('config', CM_COCO)
def test_mask_positive_cap_is_the_claimed_codebases(config):
    """CM2's CenterROIHeads samples at most BATCH_SIZE_PER_IMAGE 512 x
    POSITIVE_FRACTION 0.25 = 128 positives per image (detectron2 v0.3
    config/defaults.py:265,267; centermask2 center_heads.py:166
    subsample_labels); CM1's mask branch keeps them all. The released CM2
    models (V2 ms-3x, Lite 4x) cap; the paper's tables (R-50, V2 1x of
    Table 4, R-50 ms-2x of Table 5) were trained with CM1."""
    cap = _cfg(config).model.train_cfg.mask.max_pos_per_img
    assert cap == (128 if config in V2_MS3X + LITE else None)


def test_timm_vovnet_keeps_bn_frozen():
    backbone = _cfg(CM + 'centermask_v2-39-timm_fpn_1x_coco.py').model.backbone
    assert backbone.init_cfg.checkpoint == 'timm://ese_vovnet39b'
    assert backbone.norm_cfg.requires_grad is False
    assert backbone.norm_eval is True


def _official_short_sides(arm: str) -> set:
    # CM1 centermask_R_50_FPN_ms_2x.yaml:35 MIN_SIZE_RANGE_TRAIN (640, 800)
    # -> data/transforms/build.py list(range(640, 801)), random.choice; the
    # CM1 README:56 says Mask R-CNN trained multi-scale too.
    # RM retinanet_mask_R-50-FPN_2x_adjust_std011_ms.yaml:40 MIN_SIZE_TRAIN
    # (640, 800, 1000) -> transforms.py:69 MultiScaleResize random.choice.
    return {640, 800, 1000} if arm == 'retinamask_r50_2x' else set(
        range(640, 801))


@pytest.mark.parametrize('arm', ['mask_rcnn_r50_2x', 'retinamask_r50_2x',
                                 'centermask_r50_2x'])
def test_table5_arms_train_at_the_official_scales(arm):
    """Resizing through the arm's resolved train pipeline draws exactly the
    official set of short sides (max side 1333: yaml MAX_SIZE_TRAIN)."""
    from mmdet.registry import TRANSFORMS
    from mmdet.utils import register_all_modules
    register_all_modules()
    grid = load_grid(project_path('experiments/grids/table5_coco.yaml'))
    run = next(r for r in grid.expand() if r.model == arm)
    assert not run.overrides
    pipeline = _cfg(run.config).train_dataloader.dataset.pipeline
    resize = [t for t in pipeline if 'Resize' in t['type']]
    assert len(resize) == 1 and resize[0]['keep_ratio']
    transform = TRANSFORMS.build(resize[0])
    np.random.seed(0)
    sides = set()
    for _ in range(4000):
        out = transform(dict(img=np.zeros((12, 16, 1), np.uint8),
                             img_shape=(12, 16), ori_shape=(12, 16)))
        h, w = out['img'].shape[:2]
        assert w <= 1333 and abs(w - h * 16 / 12) <= 1
        sides.add(h)
    assert sides == _official_short_sides(arm)


# Table 5 arms' schedules: (total batch, LR, iterations or epochs, steps).
TABLE5_SOLVER = {
    # CM1 centermask_R_50_FPN_ms_2x.yaml:42-46.
    'configs/centermask/centermask_r50_fpn_ms-2x_coco.py':
        (16, 0.01, 180000, None, [120000, 160000]),
    # RM retinanet_mask_R-50-FPN_2x_adjust_std011_ms.yaml:48-52.
    'configs/retinamask/retinamask_r50_fpn_ms-2x_coco.py':
        (8, 0.005, 360000, None, [240000, 320000]),
    # mmdet 3.3.0 _base_/schedules/schedule_2x.py (no official config).
    'configs/mask_rcnn/mask-rcnn_r50_fpn_ms-2x_coco.py':
        (16, 0.02, None, 24, [16, 22]),
}


@pytest.mark.parametrize('config', sorted(TABLE5_SOLVER))
def test_table5_configs_train_the_official_schedule(config):
    from experiments.grid.batch_recipe import apply_run_recipe
    cfg = copy.deepcopy(_cfg(config))
    batch, lr, iters, epochs, steps = TABLE5_SOLVER[config]
    assert (cfg.paper_recipe.total_batch, cfg.optim_wrapper.optimizer.lr) \
        == (batch, lr)
    assert (cfg.train_cfg.get('max_iters'), cfg.train_cfg.get('max_epochs'),
            cfg.param_scheduler[1].milestones) == (iters, epochs, steps)
    assert apply_run_recipe(cfg, None, 'none', None, None,
                            devices=8).changes == ()


# RM's recipe, from chengyangfu/retinamask @5bcf2e7 (file:line).
RM_OFFICIAL = {
    # defaults.py:88 R-50 body; yaml:3 catalog://ImageNetPretrained/MSRA/R-50
    # (Detectron's caffe R-50.pkl = open-mmlab://detectron/resnet50_caffe).
    'model.backbone.depth': 50,
    'model.backbone.init_cfg.checkpoint': 'open-mmlab://detectron/'
                                          'resnet50_caffe',
    'model.backbone.style': 'caffe',  # defaults.py:212 STRIDE_IN_1X1 True
    # defaults.py:215,217 *WithFixedBatchNorm; defaults.py:91
    # FREEZE_CONV_BODY_AT 2 -> resnet.py:105-113 stem and layer1 frozen.
    'model.backbone.norm_cfg.requires_grad': False,
    'model.backbone.norm_eval': True,
    'model.backbone.frozen_stages': 1,
    # defaults.py:49,51,53 PIXEL_MEAN, PIXEL_STD 1, TO_BGR255 (BGR 0-255).
    'model.data_preprocessor.mean': [102.9801, 115.9465, 122.7717],
    'model.data_preprocessor.std': [1.0, 1.0, 1.0],
    'model.data_preprocessor.bgr_to_rgb': False,
    'model.data_preprocessor.pad_size_divisor': 32,  # yaml:45
    # backbone.py:47 LastLevelP6P7 on fpn.py:88 results[-1] (P5);
    # fpn.py:112-115 ReLU before P7.
    'model.neck.start_level': 1,
    'model.neck.num_outs': 5,
    'model.neck.add_extra_convs': 'on_output',
    'model.neck.relu_before_extra_convs': True,
    # defaults.py:238-245 sizes 32-512, strides 8-128, ratios, octave 2 x 3.
    'model.bbox_head.anchor_generator.octave_base_scale': 4,
    'model.bbox_head.anchor_generator.scales_per_octave': 3,
    'model.bbox_head.anchor_generator.ratios': [0.5, 1.0, 2.0],
    'model.bbox_head.anchor_generator.strides': [8, 16, 32, 64, 128],
    # anchor_generator.py:251-252 centre (stride - 1) / 2 in "+1" pixels =
    # stride / 2 continuous.
    'model.bbox_head.anchor_generator.center_offset': 0.5,
    # retinanet.py:110 BoxCoder weights (10, 10, 5, 5).
    'model.bbox_head.bbox_coder.target_stds': [0.1, 0.1, 0.2, 0.2],
    'model.bbox_head.loss_cls.alpha': 0.25,  # defaults.py:273
    'model.bbox_head.loss_cls.gamma': 2.0,  # defaults.py:276
    'model.train_cfg.assigner.pos_iou_thr': 0.5,  # defaults.py:266
    'model.train_cfg.assigner.neg_iou_thr': 0.4,  # defaults.py:270
    'model.train_cfg.assigner.low_quality_thr': 0.0,  # defaults.py:303
    # Solver: yaml:48-52, defaults.py:322-334.
    'optim_wrapper.optimizer.lr': 0.005,
    'optim_wrapper.optimizer.momentum': 0.9,
    'optim_wrapper.optimizer.weight_decay': 0.0001,
    'optim_wrapper.paramwise_cfg.bias_lr_mult': 2.0,
    'optim_wrapper.paramwise_cfg.bias_decay_mult': 0.0,
    'paper_recipe.total_batch': 8,
    'param_scheduler.0.type': 'LinearLR',
    'param_scheduler.0.start_factor': 1 / 3,
    'param_scheduler.0.end': 500,
    'param_scheduler.1.milestones': [120000, 160000],
    'train_cfg.max_iters': 180000,
    # yaml:40-43 800 / 1333 for training and testing.
    'train_dataloader.dataset.pipeline.2.scale': (1333, 800),
    'test_dataloader.dataset.pipeline.1.scale': (1333, 800),
}
RM_MASK_OFFICIAL = {
    # yaml:27,31-33: P3-P5, RoIAlign 14 x 14 with sampling 2, 28 x 28 masks;
    # poolers.py:66 maskrcnn-benchmark's legacy (non-aligned) ROIAlign.
    'model.mask_roi_extractor.featmap_strides': [8, 16, 32],
    'model.mask_roi_extractor.roi_layer.output_size': 14,
    'model.mask_roi_extractor.roi_layer.sampling_ratio': 2,
    'model.mask_roi_extractor.roi_layer.aligned': False,
    'model.mask_head.num_convs': 4,
}


def _lookup(cfg: Config, key: str):
    node = cfg
    for part in key.split('.'):
        node = node[int(part)] if part.isdigit() else node[part]
    return node


@pytest.mark.parametrize('config', [RM_1X, RN_RM])
def test_retinamask_configs_pin_rms_recipe(config):
    cfg = _cfg(config)
    pins = dict(RM_OFFICIAL)
    if config == RM_1X:
        pins.update(RM_MASK_OFFICIAL)
    else:
        assert cfg.model.mask_head is None
    wrong = {}
    for key, value in pins.items():
        got = _lookup(cfg, key)
        got = list(got) if isinstance(got, tuple) and isinstance(
            value, list) else got
        if isinstance(value, float):
            ok = isinstance(got, (int, float)) and np.isclose(got, value)
        else:
            ok = got == value
        if not ok:
            wrong[key] = (got, value)
    assert not wrong, f'(config, official): {wrong}'
    assert cfg.optim_wrapper.get('clip_grad') is None
