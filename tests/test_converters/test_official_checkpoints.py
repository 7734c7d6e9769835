"""Official centermask2 / retinamask checkpoints map onto our models: every
official key lands, none is left over, every shape equals ours."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_plugins  # noqa: F401
from experiments.store import project_path
from mmdet_plugins.converters import convert_centermask2, convert_retinamask

KEYS = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'official_keys')
CASES = [
    ('centermask2_centermask_R_50_FPN_ms_3x.tsv',
     'configs/centermask/centermask_r50_fpn_1x_coco.py', convert_centermask2),
    ('centermask2_centermask_V_39_eSE_FPN_ms_3x.tsv',
     'configs/centermask/centermask_v2-39_fpn_ms-3x_coco.py',
     convert_centermask2),
    ('centermask2_centermask_V_57_eSE_FPN_ms_3x.tsv',
     'configs/centermask/centermask_v2-57_fpn_ms-3x_coco.py',
     convert_centermask2),
    ('centermask2_centermask_V_99_eSE_FPN_ms_3x.tsv',
     'configs/centermask/centermask_v2-99_fpn_ms-3x_coco.py',
     convert_centermask2),
    ('centermask2_centermask_lite_V_19_eSE_FPN_ms_4x.tsv',
     'configs/centermask/centermask-lite_v-19_fpn_ms-4x_coco.py',
     convert_centermask2),
    ('centermask2_centermask_lite_V_39_eSE_FPN_ms_4x.tsv',
     'configs/centermask/centermask-lite_v-39_fpn_ms-4x_coco.py',
     convert_centermask2),
    ('centermask2_centermask_lite_V_19_slim_eSE_FPN_ms_4x.tsv',
     'configs/centermask/centermask-lite_v-19-slim_fpn_ms-4x_coco.py',
     convert_centermask2),
    ('centermask2_centermask_lite_V_19_slim_dw_eSE_FPN_ms_4x.tsv',
     'configs/centermask/centermask-lite_v-19-slim-dw_fpn_ms-4x_coco.py',
     convert_centermask2),
    ('retinamask_R-50-FPN.tsv',
     'configs/retinamask/retinamask_r50_fpn_1x_coco.py', convert_retinamask),
]


def _official_state(name: str) -> dict:
    state = {}
    for line in open(osp.join(KEYS, name)):
        key, shape = line.rstrip('\n').split('\t')
        shape = tuple(int(s) for s in shape.strip('()').split(',') if s)
        state[key] = torch.randn(shape) if shape else torch.randn(())
    return state


# The V-57 / V-99 models take seconds each to build: `make test` only.
@pytest.mark.parametrize('keys,config,convert', [
    pytest.param(*c, id=c[0].split('.')[0],
                 marks=pytest.mark.slow if ('V_57' in c[0] or 'V_99' in c[0])
                 else ()) for c in CASES])
def test_every_official_key_lands_with_its_shape(keys, config, convert):
    register_all_modules()
    model = MODELS.build(Config.fromfile(project_path(config)).model)
    # The self-adjusting smooth L1's running statistics are training state
    # the official code never saves; they start from beta_max.
    ours = {k: v for k, v in model.state_dict().items()
            if not k.endswith('num_batches_tracked')
            and not k.startswith('bbox_head.loss_bbox.')}
    official = _official_state(keys)
    converted = convert({'model': official})
    assert set(converted) == set(ours), (
        sorted(set(ours) - set(converted))[:5],
        sorted(set(converted) - set(ours))[:5])
    for key, value in converted.items():
        assert value.shape == ours[key].shape, key
    # Every official tensor is used exactly once (the mask logits'
    # background row and RetinaMask's anchor buffers aside).
    dropped = [k for k in official if k.startswith('rpn.anchor_generator')]
    assert len(converted) == len(official) - len(dropped)
    result = model.load_state_dict(converted, strict=False)
    assert not result.unexpected_keys
    assert all(k.endswith('num_batches_tracked') or
               k.startswith('bbox_head.loss_bbox.')
               for k in result.missing_keys)


def test_values_go_where_the_names_say():
    official = _official_state(CASES[1][0])
    converted = convert_centermask2(official)
    pairs = {
        'backbone.top_block.p6.weight': 'neck.fpn_convs.3.conv.weight',
        'backbone.fpn_lateral3.weight': 'neck.lateral_convs.0.conv.weight',
        'proposal_generator.fcos_head.cls_tower.3.weight':
            'bbox_head.cls_convs.1.conv.weight',
        'proposal_generator.fcos_head.bbox_tower.10.bias':
            'bbox_head.reg_convs.3.gn.bias',
        'roi_heads.maskiou_head.maskiou_fcn1.weight':
            'maskiou_head.convs.0.weight',
        'backbone.bottom_up.stage4.OSA4_2.ese.fc.weight':
            'backbone.stages.2.2.attention.fc.weight',
    }
    for theirs, mine in pairs.items():
        assert torch.equal(official[theirs], converted[mine]), theirs
    rm = _official_state('retinamask_R-50-FPN.tsv')
    converted = convert_retinamask(rm)
    assert torch.equal(converted['mask_head.conv_logits.weight'],
                       rm['mask.predictor.mask_fcn_logits.weight'][1:])
    assert torch.equal(converted['bbox_head.cls_convs.3.conv.weight'],
                       rm['rpn.head.cls_tower.6.weight'])
    assert torch.equal(converted['backbone.layer2.0.downsample.1.running_var'],
                       rm['backbone.body.layer2.0.downsample.1.running_var'])


def test_unknown_key_is_named():
    official = _official_state(CASES[1][0])
    official['roi_heads.box_head.fc1.weight'] = torch.zeros(2)
    with pytest.raises(ValueError, match='roi_heads.box_head.fc1.weight'):
        convert_centermask2(official)


@pytest.mark.parametrize('num_conv', [4, 2])   # CenterMask, CenterMask-Lite
def test_converted_mask_and_maskiou_heads_compute_what_the_official_do(
        num_conv):
    """The official heads' forward runs here: after conversion SAG-Mask and
    MaskIoU give the official mask logits and IoU predictions."""
    from reference.official_heads import MaskIoUHead, SpatialAttentionMaskHead
    register_all_modules()
    torch.manual_seed(0)
    official_mask = SpatialAttentionMaskHead(16, 16, num_conv, 3)
    official_iou = MaskIoUHead(16, 16, num_conv, 3)
    state = {f'roi_heads.mask_head.{k}': v
             for k, v in official_mask.state_dict().items()}
    state.update({f'roi_heads.maskiou_head.{k}': v
                  for k, v in official_iou.state_dict().items()})
    converted = convert_centermask2(state)
    mask_head = MODELS.build(dict(
        type='SAGMaskHead', num_convs=num_conv, in_channels=16,
        conv_out_channels=16, num_classes=3))
    iou_head = MODELS.build(dict(
        type='MaskIoUHead', num_convs=num_conv, num_fcs=2, roi_feat_size=14,
        in_channels=16, conv_out_channels=16, fc_out_channels=1024,
        num_classes=3))
    for prefix, head in (('mask_head.', mask_head), ('maskiou_head.',
                                                     iou_head)):
        head.load_state_dict({k[len(prefix):]: v for k, v in converted.items()
                              if k.startswith(prefix)}, strict=True)
    feats = torch.randn(5, 16, 14, 14)
    labels = torch.tensor([0, 2, 1, 1, 0])
    with torch.no_grad():
        logits = mask_head(feats)
        torch.testing.assert_close(logits, official_mask(feats))
        picked = logits[torch.arange(5), labels]
        # centermask2 feeds the class's sigmoid; mmdet's head takes logits.
        want = official_iou(feats, picked.sigmoid().unsqueeze(1))
        torch.testing.assert_close(iou_head(feats, picked), want)


def test_converted_fcos_head_computes_what_the_official_does():
    """Towers, GN, scales and the three outputs: equal to centermask2's
    head in training mode (regression in stride units) and, in eval mode,
    its regression times the stride (what both decode)."""
    from reference.official_heads import FCOSHead
    register_all_modules()
    torch.manual_seed(0)
    official = FCOSHead(64, 3, 2)
    with torch.no_grad():
        for scale in official.scales:
            scale.scale.uniform_(0.5, 1.5)
    converted = convert_centermask2({f'proposal_generator.fcos_head.{k}': v
                                     for k, v in
                                     official.state_dict().items()})
    ours = MODELS.build(dict(
        type='CenterMaskFCOSHead', num_classes=3, in_channels=64,
        feat_channels=64, stacked_convs=2, strides=[8, 16, 32, 64, 128],
        norm_on_bbox=True, centerness_on_reg=True, conv_bias=True,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)))
    ours.load_state_dict({k[len('bbox_head.'):]: v
                          for k, v in converted.items()}, strict=True)
    feats = [torch.randn(1, 64, s, s) for s in (16, 8, 4, 2, 2)]
    with torch.no_grad():
        want_cls, want_reg, want_ctr = official(feats)
        ours.train()
        cls, reg, ctr = ours(feats)
        ours.eval()
        _, reg_eval, _ = ours(feats)
    for level, stride in enumerate([8, 16, 32, 64, 128]):
        torch.testing.assert_close(cls[level], want_cls[level])
        torch.testing.assert_close(ctr[level], want_ctr[level])
        torch.testing.assert_close(reg[level], want_reg[level])
        torch.testing.assert_close(reg_eval[level], want_reg[level] * stride)


def test_converted_retinamask_heads_compute_what_the_official_do():
    from reference.official_heads import RetinaMaskHeads
    register_all_modules()
    torch.manual_seed(0)
    official = RetinaMaskHeads(16, 3)
    converted = convert_retinamask(official.state_dict())
    box = MODELS.build(dict(
        type='RetinaMaskHead', num_classes=3, in_channels=16, feat_channels=16,
        stacked_convs=4, anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder')))
    mask = MODELS.build(dict(type='FCNMaskHead', num_convs=4, in_channels=16,
                             conv_out_channels=16, num_classes=3))
    for prefix, head in (('bbox_head.', box), ('mask_head.', mask)):
        result = head.load_state_dict(
            {k[len(prefix):]: v for k, v in converted.items()
             if k.startswith(prefix)}, strict=False)
        assert not result.unexpected_keys
        assert all(k.startswith('loss_bbox.') for k in result.missing_keys)
    x = torch.randn(1, 16, 12, 12)
    rois = torch.randn(4, 16, 14, 14)
    with torch.no_grad():
        cls, reg = box.forward_single(x)
        want_cls, want_reg = official.box_head(x)
        torch.testing.assert_close(cls, want_cls)
        torch.testing.assert_close(reg, want_reg)
        # mmdet's classes are maskrcnn-benchmark's 1..80.
        torch.testing.assert_close(mask(rois), official.mask_head(rois)[:, 1:])
