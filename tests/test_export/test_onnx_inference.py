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
