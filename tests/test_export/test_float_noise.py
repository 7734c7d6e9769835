"""A model's own float32 rounding, which a failed parity is judged against
where the weights are random (``make check-coco``)."""
import json

import pytest
import torch
from mmengine.config import Config

from mmdet_plugins.export.float_noise import float32_score_noise
from tests.helpers import load_script, project_path

CONFIGS = {
    'centermask': 'configs/centermask/centermask_r18-tiny_fpn_builtin.py',
    'mask_rcnn': 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py',
}


def _model(name: str) -> torch.nn.Module:
    from mmdet.registry import MODELS
    cfg = Config.fromfile(project_path(CONFIGS[name]))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_a_well_conditioned_model_rounds_far_under_the_tolerance(name):
    model = _model(name)
    inputs = torch.randn(1, 3, 64, 64, generator=torch.Generator()
                         .manual_seed(0))
    noise = float32_score_noise(model, inputs)
    assert 0 < noise < 1e-5
    # Left as it was: in training mode, float32.
    assert model.training
    assert next(model.parameters()).dtype == torch.float32


class _Cancelling(torch.nn.Module):
    """A detector whose features subtract two numbers of 1e5 that differ
    by O(1) -- the cancellation a random deep network's BN does with
    features of 1e4 and their running mean."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = torch.nn.Parameter(torch.tensor(1e5))
        self.bbox_head = lambda feats: ([f.mean(1, keepdim=True)
                                         for f in feats],)

    def extract_feat(self, x):
        return [(x * 3 + self.offset) - self.offset]


def test_an_ill_conditioned_model_rounds_visibly():
    inputs = torch.randn(1, 3, 8, 8, generator=torch.Generator()
                         .manual_seed(0))
    # float32 keeps ~7 digits of 1e5 + x: x to about 1e-2.
    assert float32_score_noise(_Cancelling(), inputs) > 1e-4


def test_a_failed_parity_is_rounding_within_twice_the_noise(tmp_path):
    check = load_script('tools/check_coco_configs.py', 'check_coco_configs')
    parity = tmp_path / 'model.parity.json'
    problems = ['1 of 1 images have detections the other runtime does not '
                'have (class, box or score)', 'max_box_abs = 0.358 > 0.01',
                'max_score_abs = 0.0055 > 0.0001']
    parity.write_text(json.dumps({'summary': {'max_score_abs': 5.5e-3},
                                  'problems': problems}))
    # Each float32 runtime is about `noise` from float64, in its own
    # direction: 2 x noise apart at most.
    assert check.judge_failed_parity(str(parity), 2.9e-3)
    assert not check.judge_failed_parity(str(parity), 2.7e-3)
    # The masks are not excused by the scores' noise.
    parity.write_text(json.dumps({'summary': {'max_score_abs': 5e-7},
                                  'problems': ['max_mask_pixel_diff = '
                                               '0.0348 > 0.01']}))
    assert not check.judge_failed_parity(str(parity), 3e-7)
