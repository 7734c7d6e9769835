"""NMS and RoIAlign: eager kernels, the export's decoding, onnxruntime."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from mmcv.ops import batched_nms
from mmcv.ops import roi_align as mmcv_roi_align

from mmdet_plugins.export.graph_ops import class_nms, clip_boxes
from mmdet_plugins.export.onnx_ops import (OPSET, nms, roi_align,
                                           translation_table)


def test_class_nms_hand_case():
    # IoU(0, 1) = 81 / 119 = 0.68: box 1 goes at 0.5; box 3 is another
    # class and stays; box 4 is below every other box of class 0 but
    # overlaps none.
    boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30],
                          [0, 0, 10, 10], [40, 40, 50, 50]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = torch.tensor([0, 0, 0, 1, 0])
    valid = torch.ones(5, dtype=torch.bool)
    assert class_nms(boxes, scores, labels, valid, 0.5, 100).tolist() == \
        [0, 2, 3, 4]
    assert class_nms(boxes, scores, labels, valid, 0.7, 100).tolist() == \
        [0, 1, 2, 3, 4]
    # An invalid candidate never suppresses: without box 0, box 1 stays.
    valid[0] = False
    assert class_nms(boxes, scores, labels, valid, 0.5, 100).tolist() == \
        [1, 2, 3, 4]
    assert class_nms(boxes, scores, labels, valid, 0.5, 2).tolist() == [1, 2]


def test_class_nms_equals_mmcv_batched_nms_on_random_boxes():
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(600, 2, generator=gen) * 200
    boxes = torch.cat([xy, xy + 5 + torch.rand(600, 2, generator=gen) * 60],
                      1)
    scores = torch.rand(600, generator=gen)
    labels = torch.randint(0, 5, (600, ), generator=gen)
    valid = scores > 0.3
    keep = class_nms(boxes, scores, labels, valid, 0.5, 1000)
    _, ref = batched_nms(boxes[valid], scores[valid], labels[valid],
                         dict(type='nms', iou_threshold=0.5))
    assert keep.tolist() == valid.nonzero().flatten()[ref].tolist()
    assert len(keep) > 50


def test_clip_boxes_is_the_coders_clamp():
    boxes = torch.tensor([[-3., 5, 120, 70], [10, -1, 20, 90]])
    clipped = clip_boxes(boxes, torch.tensor([64, 100]))
    assert clipped.tolist() == [[0, 5, 100, 64], [10, 0, 20, 64]]


class _Ops(torch.nn.Module):

    def __init__(self, aligned: bool) -> None:
        super().__init__()
        self.aligned = aligned

    def forward(self, feat, rois, scores):
        keep = nms(rois[:, 1:], scores, 0.5, 0.2, 30)
        pooled = roi_align(feat, rois, [7, 7], 0.25, 0, self.aligned)
        return keep, pooled


@pytest.mark.parametrize('aligned', [True, False])
def test_ops_under_onnxruntime_equal_mmcv(tmp_path, aligned):
    gen = torch.Generator().manual_seed(1)
    feat = torch.randn(1, 8, 40, 56, generator=gen)
    xy = torch.rand(80, 2, generator=gen) * 180
    wh = torch.rand(80, 2, generator=gen) * 60 + 0.5
    # Boxes partly outside the feature map and sub-pixel ones included.
    rois = torch.cat([torch.zeros(80, 1), xy - 10, xy + wh], 1)
    scores = torch.rand(80, generator=gen)
    module = _Ops(aligned)
    rois_dim = torch.export.Dim('rois', min=2, max=1000)
    program = torch.onnx.export(
        module, (feat, rois, scores), dynamo=True, opset_version=OPSET,
        input_names=['feat', 'rois', 'scores'], output_names=['keep', 'out'],
        dynamic_shapes={'feat': {2: torch.export.Dim('h', min=2, max=512),
                                 3: torch.export.Dim('w', min=2, max=512)},
                        'rois': {0: rois_dim}, 'scores': {0: rois_dim}},
        custom_translation_table=translation_table(), report=False,
        verbose=False)
    path = str(tmp_path / 'ops.onnx')
    program.save(path)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    keep, out = session.run(None, dict(feat=feat.numpy(), rois=rois.numpy(),
                                       scores=scores.numpy()))
    # Reference: mmcv's kernels directly.
    from mmcv.ops import nms as mmcv_nms
    cand = (scores > 0.2).nonzero().flatten()
    _, ref_keep = mmcv_nms(rois[cand, 1:], scores[cand], 0.5)
    assert keep.tolist() == cand[ref_keep][:30].tolist()
    ref = mmcv_roi_align(feat, rois, (7, 7), 0.25, 0, 'avg', aligned)
    np.testing.assert_allclose(out, ref.numpy(), atol=2e-5, rtol=0)
    # Another image size and box count through the same graph.
    feat2, rois2 = feat[..., :23, :31].contiguous(), rois[:9].contiguous()
    keep2, out2 = session.run(None, dict(feat=feat2.numpy(),
                                         rois=rois2.numpy(),
                                         scores=scores[:9].numpy()))
    ref2 = mmcv_roi_align(feat2, rois2, (7, 7), 0.25, 0, 'avg', aligned)
    np.testing.assert_allclose(out2, ref2.numpy(), atol=2e-5, rtol=0)
