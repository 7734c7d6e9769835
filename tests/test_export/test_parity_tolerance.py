"""The mask-score tolerance follows the score's size above 1; the mask
pixel difference is pooled over an image's detections."""
import numpy as np

from mmdet_plugins.export.parity import TOLERANCES, compare_detections


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


def _two_masks(small: np.ndarray, large: np.ndarray) -> dict:
    masks = np.zeros((2, 40, 40), bool)
    masks[0, :3, :1] = small
    masks[1, 10:40, 10:40] = large
    return dict(boxes=np.array([[0., 0., 1., 3.], [10., 10., 40., 40.]]),
                scores=np.array([.5, .4]), labels=np.array([1, 1]),
                masks=masks, mask_scores=np.array([.5, .4]))


def test_one_rounding_flip_in_a_three_pixel_mask_is_within_tolerance():
    ref = _two_masks(np.ones((3, 1), bool), np.ones((30, 30), bool))
    flipped = np.array([[True], [True], [False]])
    out = compare_detections(ref, _two_masks(flipped,
                                             np.ones((30, 30), bool)))
    # 1 pixel of 903 (per mask it would be 1 of 3).
    assert out['mask_pixel_diff'] == 1 / 903
    assert out['mask_pixel_diff'] <= TOLERANCES['max_mask_pixel_diff']


def test_masks_pasted_one_row_off_are_outside_the_tolerance():
    ref = _dets(0.5)
    ref['masks'] = np.zeros((1, 40, 40), bool)
    ref['masks'][0, 5:35, 5:35] = True
    got = dict(ref, masks=np.roll(ref['masks'], 1, axis=1))
    out = compare_detections(ref, got)
    assert out['mask_pixel_diff'] == 60 / 930
    assert out['mask_pixel_diff'] > TOLERANCES['max_mask_pixel_diff']
