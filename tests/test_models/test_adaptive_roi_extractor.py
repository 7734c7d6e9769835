import pytest
import torch

from mmdet_plugins.models.roi_extractors import AdaptiveRoIExtractor

ROI_LAYER = dict(type='RoIAlign', output_size=14, sampling_ratio=0)


def _extractor(mapping, strides=(8, 16, 32)):
    return AdaptiveRoIExtractor(mapping=mapping, roi_layer=ROI_LAYER,
                                out_channels=4, featmap_strides=list(strides))


# [batch index, x1, y1, x2, y2]
ROIS = torch.tensor([
    [0, 0, 0, 800, 800],   # 640000 px
    [0, 0, 0, 400, 400],   # 160000
    [0, 0, 0, 100, 100],   # 10000
    [1, 0, 0, 300, 200],   # 60000, second image
    [0, 0, 0, 10, 10],     # 100
], dtype=torch.float)
IMG_SHAPES = [(800, 1000), (600, 800)]   # areas 800000 and 480000


def test_eq2_hand_computed():
    # k = ceil(5 - log2(A_img / A_roi)), clamped to [3, 5], minus 3:
    # 800000/640000 = 1.25 -> ceil(4.68) = 5 -> 2
    # 800000/160000 = 5    -> ceil(2.68) = 3 -> 0
    # 800000/10000  = 80   -> ceil(-1.3) = -1 -> clamp 3 -> 0
    # 480000/60000  = 8    -> ceil(2.0)  = 2 -> clamp 3 -> 0
    levels = _extractor('eq2').map_roi_levels(ROIS, 3, IMG_SHAPES)
    assert levels.tolist() == [2, 0, 0, 0, 0]
    # The same RoIs in an image 4x smaller in area move up a level or more.
    small = _extractor('eq2').map_roi_levels(
        ROIS[:3], 3, [(400, 500), (300, 400)])
    # 200000/640000 -> ceil(6.68) = 7 -> 5; 200000/160000 -> ceil(4.68) = 5;
    # 200000/10000 = 20 -> ceil(0.68) = 1 -> 3
    assert small.tolist() == [2, 2, 0]


def test_eq1_hand_computed():
    # k = floor(4 + log2(sqrt(wh) / 224)), clamped to [3, 5], minus 3:
    # 800 -> floor(5.84) = 5 -> 2;  400 -> floor(4.84) = 4 -> 1
    # 100 -> floor(2.84) = 2 -> 3 -> 0; sqrt(60000) = 244.9 -> 4 -> 1
    levels = _extractor('eq1').map_roi_levels(ROIS, 3)
    assert levels.tolist() == [2, 1, 0, 1, 0]


def test_k_max_follows_the_strides():
    # P3-P7: k_max = 7. eq2 for the 640000 px RoI: ceil(7 - 0.32) = 7 -> 4.
    wide = _extractor('eq2', (8, 16, 32, 64, 128))
    assert (wide.k_min, wide.k_max) == (3, 7)
    assert wide.map_roi_levels(ROIS[:2], 5, IMG_SHAPES).tolist() == [4, 2]
    narrow = _extractor('eq2', (8, 16))
    assert narrow.map_roi_levels(ROIS[:2], 2, IMG_SHAPES).tolist() == [1, 0]


def test_features_come_from_the_assigned_level():
    ext = _extractor('eq2')
    feats = [torch.full((2, 4, 128 // s, 128 // s), float(i))
             for i, s in enumerate((8, 16, 32))]
    rois = torch.tensor([[0, 8, 8, 104, 104], [1, 10, 10, 30, 30.]])
    out = ext(feats, rois, img_shapes=[(128, 128), (128, 128)])
    levels = ext.map_roi_levels(rois, 3, [(128, 128), (128, 128)])
    assert levels.tolist() == [2, 0]
    assert torch.allclose(out[0], torch.full_like(out[0], 2.), atol=1e-5)
    assert torch.allclose(out[1], torch.zeros_like(out[1]), atol=1e-5)


def test_bad_configuration():
    with pytest.raises(ValueError, match='mapping'):
        _extractor('eq3')
    with pytest.raises(ValueError, match='powers of two'):
        _extractor('eq2', (8, 32))
    with pytest.raises(ValueError, match='img_shapes'):
        _extractor('eq2').map_roi_levels(ROIS, 3)
