"""The mask-score tolerance follows the score's size above 1."""
import numpy as np

from mmdet_plugins.export.parity import compare_detections


def _dets(mask_score: float) -> dict:
    return dict(boxes=np.array([[0., 0., 10., 10.]]), scores=np.array([.5]),
                labels=np.array([1]), masks=np.ones((1, 4, 4), bool),
                mask_scores=np.array([mask_score]))


def test_a_trained_mask_score_is_compared_absolutely():
    out = compare_detections(_dets(0.5), _dets(0.5 + 3e-4))
    assert np.isclose(out['mask_score_abs'], 3e-4)


def test_an_untrained_maskiou_score_is_compared_relative_to_its_size():
    # An untrained MaskIoU head regresses IoUs of hundreds: 1e-3 apart at
    # 470 is float32 rounding (seen in make check-coco), 2e-6 relative.
    out = compare_detections(_dets(-470.0), _dets(-470.001))
    assert np.isclose(out['mask_score_abs'], 0.001 / 470, rtol=1e-3)
