"""The numpy pre/post-processing shipped with exports, against mmdet's."""
import numpy as np
import pytest
import torch
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask

from mmdet_plugins.export.onnx_inference import (normalize_and_pad,
                                                 paste_mask, postprocess,
                                                 resize)

META = dict(resize=dict(scale=[1333, 800], keep_ratio=True),
            preprocess=dict(bgr_to_rgb=True, mean=[123.675, 116.28, 103.53],
                            std=[58.395, 57.12, 57.375], pad_size_divisor=32,
                            pad_value=0.0))


@pytest.mark.parametrize('box', [
    [10.3, 7.8, 60.2, 40.1],      # inside
    [-5.0, 30.5, 20.7, 90.0],     # crosses the left and bottom edges
    [70.2, 3.3, 70.9, 4.0],       # under a pixel
    [0.0, 0.0, 100.0, 80.0],      # the whole image
])
def test_paste_mask_equals_mmdet_do_paste_mask(box):
    gen = torch.Generator().manual_seed(0)
    prob = torch.rand(1, 1, 28, 28, generator=gen)
    boxes = torch.tensor([box])
    ref, (rows, cols) = _do_paste_mask(prob, boxes, 80, 100,
                                       skip_empty=True)
    got, region = paste_mask(prob[0, 0].numpy(), np.float32(box), 80, 100)
    assert region == (rows, cols)
    np.testing.assert_allclose(got, ref[0].numpy(), atol=2e-6, rtol=0)
    assert got.max() > 0


def test_postprocess_rescales_boxes_and_binarises_like_mmdet():
    gen = torch.Generator().manual_seed(2)
    probs = torch.rand(3, 28, 28, generator=gen)
    boxes = torch.tensor([[4., 6, 50, 44], [30, 2, 90, 60], [0, 0, 9, 9]])
    scale = np.array([0.8, 0.75], dtype=np.float32)
    out = postprocess(dict(boxes=boxes.numpy(), scores=np.ones(3),
                           labels=np.zeros(3, dtype=np.int64),
                           mask_probs=probs.numpy(),
                           mask_scores=np.ones(3)), scale, (90, 120))
    ref_boxes = boxes / torch.tensor([0.8, 0.75, 0.8, 0.75])
    np.testing.assert_allclose(out['boxes'], ref_boxes.numpy(), rtol=1e-6)
    for i in range(3):
        ref = torch.zeros(90, 120, dtype=torch.bool)
        pasted, region = _do_paste_mask(probs[i][None, None],
                                        ref_boxes[i:i + 1], 90, 120)
        ref[region] = pasted[0] >= 0.5
        assert (out['masks'][i] == ref.numpy()).all()
        assert out['masks'][i].sum() > 0


@pytest.mark.parametrize('keep_ratio,shape', [(True, (427, 640)),
                                              (True, (900, 333)),
                                              (False, (427, 640))])
def test_resize_and_normalise_equal_the_test_pipeline(keep_ratio, shape):
    from mmdet.datasets.transforms import Resize
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    meta = dict(META, resize=dict(scale=[1333, 800], keep_ratio=keep_ratio))
    ref = Resize(scale=(1333, 800), keep_ratio=keep_ratio)(dict(
        img=image.copy(), img_shape=shape, ori_shape=shape))
    got, scale_factor = resize(image, meta)
    assert got.shape[:2] == ref['img_shape']
    assert (got == ref['img']).all()
    np.testing.assert_allclose(scale_factor, ref['scale_factor'], rtol=1e-6)

    pre = DetDataPreprocessor(mean=META['preprocess']['mean'],
                              std=META['preprocess']['std'],
                              bgr_to_rgb=True, pad_size_divisor=32)
    inputs = pre(dict(inputs=[torch.from_numpy(got).permute(2, 0, 1)]),
                 False)['inputs']
    net_in, img_shape = normalize_and_pad(got, META)
    assert net_in.shape == tuple(inputs.shape)
    assert img_shape.tolist() == list(got.shape[:2])
    np.testing.assert_allclose(net_in, inputs.numpy(), atol=1e-5, rtol=0)


def _dets(boxes, scores, labels):
    n = len(scores)
    masks = np.zeros((n, 8, 8), dtype=bool)
    masks[:, 2:6, 2:6] = True
    return dict(boxes=np.asarray(boxes, np.float32),
                scores=np.asarray(scores, np.float32),
                labels=np.asarray(labels), masks=masks,
                mask_scores=np.asarray(scores, np.float32))


def test_compare_detections_pairs_swaps_and_cut_ties_but_not_others():
    from mmdet_plugins.export.parity import compare_detections
    box = [[0, 0, 4, 4], [1, 1, 5, 5], [2, 2, 6, 6]]
    ref = _dets(box, [0.9, 0.5, 0.5], [0, 1, 2])
    # The two 0.5 detections swapped, the first off by 1e-6: all paired.
    got = _dets([box[0], box[2], box[1]], [0.900001, 0.5, 0.5], [0, 2, 1])
    out = compare_detections(ref, got)
    assert out['same_detections'] and out['reordered'] == 2
    assert out['unmatched'] == out['cut_ties'] == 0
    assert out['score_abs'] == pytest.approx(1e-6, abs=1e-7)
    # The last place went to another box with the same score: a cut tie.
    got = _dets([box[0], box[1], [7, 7, 9, 9]], [0.9, 0.5, 0.5], [0, 1, 0])
    out = compare_detections(ref, got)
    assert out['same_detections'] and out['cut_ties'] == 2
    # Another class above the cut is a real difference.
    got = _dets(box, [0.9, 0.5, 0.5], [1, 1, 2])
    out = compare_detections(ref, got)
    assert not out['same_detections'] and out['unmatched'] == 2
    # A box 0.5 px off is paired, and its difference reported.
    got = _dets([[0.5, 0, 4, 4]] + box[1:], [0.9, 0.5, 0.5], [0, 1, 2])
    out = compare_detections(ref, got)
    assert out['same_detections'] and out['box_abs'] == pytest.approx(0.5)
