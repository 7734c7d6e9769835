"""Official centermask2 / retinamask checkpoints map onto our models: every
official key lands, none is left over, every shape equals ours."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_plugins  # noqa: F401
from experiments.grid_spec import project_path
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


@pytest.mark.parametrize('keys,config,convert', CASES,
                         ids=[c[0].split('.')[0] for c in CASES])
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
