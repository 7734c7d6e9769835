"""SAG-Mask, SAM and MaskIoU heads start from centermask2's initialisation.

centermask2 @6adabd6: ``centermask/modeling/centermask/mask_head.py``
(``SpatialAttentionMaskHead``: ``c2_msra_fill`` on the convs and the deconv,
predictor ``normal_(std=0.001)``, bias 0), ``sam.py`` (``c2_msra_fill`` on
the SAM conv) and ``maskiou_head.py`` (``kaiming_normal_`` fan_out on the
convs and FCs, the last FC ``normal_(std=0.01)``). ``c2_msra_fill`` is
``kaiming_normal_(mode='fan_out', nonlinearity='relu')``, bias 0: std
``sqrt(2 / fan_out)`` with fan_out = ``weight.size(0) * kernel area``.
"""
import copy
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_plugins  # noqa: F401
from experiments.store import project_path
from mmdet_plugins.models.layers import SpatialAttention

BASE = 'configs/_base_/models/centermask_r50_fpn.py'
TINY = 'configs/centermask/centermask_r18-tiny_fpn_builtin.py'


def _msra_std(weight):
    # torch's fan_out: size(0) x kernel area (for ConvTranspose2d that is
    # its in_channels, as in detectron2's c2_msra_fill).
    return math.sqrt(2 / (weight.size(0) * weight[0, 0].numel()))


def _base_head(key):
    register_all_modules()
    cfg = copy.deepcopy(Config.fromfile(project_path(BASE)).model[key])
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_sag_mask_head_initialises_as_centermask2():
    head = _base_head('mask_head')
    # 80 x 256 predictor weights: the sample std is within ~0.5% of 0.001.
    w = head.conv_logits.weight
    assert w.numel() == 80 * 256
    assert w.std().item() == pytest.approx(0.001, rel=0.03)
    assert w.mean().abs().item() < 0.0001
    assert torch.all(head.conv_logits.bias == 0)
    for layer in [c.conv for c in head.convs] + [head.upsample]:
        # 256 x 256 x 3 x 3 (fan_out 2304, std 0.0295) and the deconv
        # 256 x 256 x 2 x 2 (fan_out 1024, std 0.0442).
        assert layer.weight.std().item() == pytest.approx(
            _msra_std(layer.weight), rel=0.02)
        assert torch.all(layer.bias == 0)
    assert head.sam.conv.bias is None


def test_sam_conv_is_msra_filled():
    # One SAM conv has 18 weights: pool 200 draws (3600 weights). MSRA with
    # fan_out 1 x 3 x 3: std sqrt(2 / 9) = 0.471; PyTorch's default would be
    # uniform(+-1/sqrt(18)): std 0.136.
    weights = []
    for seed in range(200):
        torch.manual_seed(seed)
        sam = SpatialAttention()
        sam.init_weights()
        weights.append(sam.conv.weight.flatten())
    weights = torch.cat(weights)
    assert weights.std().item() == pytest.approx(math.sqrt(2 / 9), rel=0.05)


def test_maskiou_head_initialises_as_centermask2():
    head = _base_head('maskiou_head')
    for layer in list(head.convs) + list(head.fcs):
        # fc1: 1024 x 12544 -> std sqrt(2 / 1024) = 0.0442 (mmdet's Caffe2
        # Xavier: 1 / sqrt(12544) = 0.0089).
        assert layer.weight.std().item() == pytest.approx(
            _msra_std(layer.weight), rel=0.02)
        assert torch.all(layer.bias == 0)
    assert head.fc_mask_iou.weight.std().item() == pytest.approx(
        0.01, rel=0.05)
    assert torch.all(head.fc_mask_iou.bias == 0)


def test_detector_init_reaches_the_mask_predictor():
    register_all_modules()
    cfg = Config.fromfile(project_path(TINY))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # 3 x 64 weights of N(0, 0.001); mmdet's Kaiming would give std 0.82.
    assert model.mask_head.conv_logits.weight.abs().max().item() < 0.005
    assert torch.all(model.mask_head.conv_logits.bias == 0)


def test_pretrained_init_cfg_overrides_the_default(tmp_path):
    register_all_modules()
    cfg = copy.deepcopy(Config.fromfile(project_path(TINY)).model.mask_head)
    torch.manual_seed(0)
    source = MODELS.build(cfg)
    state = {k: torch.full_like(v, 0.25) for k, v in
             source.state_dict().items()}
    path = str(tmp_path / 'mask_head.pth')
    torch.save(dict(state_dict=state), path)
    cfg.init_cfg = dict(type='Pretrained', checkpoint=path)
    head = MODELS.build(cfg)
    head.init_weights()
    for name, value in head.state_dict().items():
        assert torch.equal(value, state[name]), name


@pytest.mark.parametrize('config, predictor_std, fc_std', [
    # CM1 (Tables 1/2): predictor Kaiming fan_out like the convs
    # (roi_mask_predictors.py); MaskIoU FCs Caffe2 Xavier (uniform, a=1:
    # std sqrt(1 / fan_in) = sqrt(1 / 12544)).
    ('configs/centermask/centermask_r50_fpn_1x_coco.py',
     math.sqrt(2 / 80), math.sqrt(1 / (256 * 7 * 7))),
    # CM2 (the VoVNet configs): N(0, 0.001); Kaiming normal fan_out FCs.
    ('configs/centermask/centermask_v2-39_fpn_1x_coco.py',
     0.001, math.sqrt(2 / 1024)),
])
def test_each_config_initialises_as_the_version_it_claims(config,
                                                          predictor_std,
                                                          fc_std):
    register_all_modules()
    model = Config.fromfile(project_path(config)).model
    torch.manual_seed(0)
    mask_head = MODELS.build(copy.deepcopy(model.mask_head))
    mask_head.init_weights()
    assert mask_head.conv_logits.weight.std().item() == pytest.approx(
        predictor_std, rel=0.05)
    maskiou = MODELS.build(copy.deepcopy(model.maskiou_head))
    maskiou.init_weights()
    assert maskiou.fcs[0].weight.std().item() == pytest.approx(fc_std,
                                                               rel=0.05)
