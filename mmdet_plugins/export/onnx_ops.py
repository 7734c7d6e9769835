"""NMS and RoIAlign as torch custom ops that export to standard ONNX ops.

mmcv's ``nms`` and ``roi_align`` are extension calls that ``torch.export``
cannot trace, and mmcv 2.x ships no onnxruntime kernels for them. These two
ops run mmcv's kernels in eager mode (so a wrapped model computes what the
model computes), have shape functions for ``torch.export`` (NMS keeps a
data-dependent number of boxes), and translate to ONNX's own
``NonMaxSuppression`` and ``RoiAlign`` (opset 16+), which onnxruntime and
TensorRT implement:

- ``nms(boxes, scores, iou_threshold, score_threshold, max_num)``: indices
  of the kept boxes, highest score first, at most ``max_num``; boxes with
  ``score <= score_threshold`` never compete. IoU without the +1 offset and
  suppression at ``IoU > iou_threshold``, as mmcv's ``nms`` and ONNX.
- ``roi_align(feat, rois, output_size, spatial_scale, sampling_ratio,
  aligned)``: mmcv's average RoIAlign; ``aligned=True`` is ONNX's
  ``half_pixel`` mode, ``False`` its ``output_half_pixel`` mode.
"""
from typing import List

import torch
from torch import Tensor

OPSET = 18


@torch.library.custom_op('mmdet_plugins::nms', mutates_args=())
def nms(boxes: Tensor, scores: Tensor, iou_threshold: float,
        score_threshold: float, max_num: int) -> Tensor:
    from mmcv.ops import nms as mmcv_nms
    candidates = (scores > score_threshold).nonzero().flatten()
    if candidates.numel() == 0:
        return candidates
    _, keep = mmcv_nms(boxes[candidates], scores[candidates], iou_threshold)
    return candidates[keep][:max_num]


@nms.register_fake
def _nms_shape(boxes: Tensor, scores: Tensor, iou_threshold: float,
               score_threshold: float, max_num: int) -> Tensor:
    kept = torch.library.get_ctx().new_dynamic_size(max=max_num)
    return boxes.new_empty((kept, ), dtype=torch.int64)


@torch.library.custom_op('mmdet_plugins::roi_align', mutates_args=())
def roi_align(feat: Tensor, rois: Tensor, output_size: List[int],
              spatial_scale: float, sampling_ratio: int,
              aligned: bool) -> Tensor:
    from mmcv.ops import roi_align as mmcv_roi_align
    if rois.shape[0] == 0:
        return feat.new_zeros((0, feat.shape[1], *output_size))
    return mmcv_roi_align(feat, rois, tuple(output_size), spatial_scale,
                          sampling_ratio, 'avg', aligned)


@roi_align.register_fake
def _roi_align_shape(feat: Tensor, rois: Tensor, output_size: List[int],
                     spatial_scale: float, sampling_ratio: int,
                     aligned: bool) -> Tensor:
    return feat.new_empty((rois.shape[0], feat.shape[1], *output_size))


def _onnx_nms(boxes, scores, iou_threshold: float, score_threshold: float,
              max_num: int):
    from onnxscript import opset18 as op
    selected = op.NonMaxSuppression(
        op.Unsqueeze(boxes, op.Constant(value_ints=[0])),
        op.Unsqueeze(scores, op.Constant(value_ints=[0, 1])),
        op.Constant(value_ints=[max_num]),
        op.Constant(value_floats=[iou_threshold]),
        op.Constant(value_floats=[score_threshold]),
        center_point_box=0)
    # Rows are (batch, class, box); one batch and one class here.
    return op.Reshape(
        op.Slice(selected, op.Constant(value_ints=[2]),
                 op.Constant(value_ints=[3]), op.Constant(value_ints=[1])),
        op.Constant(value_ints=[-1]))


def _onnx_roi_align(feat, rois, output_size: List[int],
                    spatial_scale: float, sampling_ratio: int,
                    aligned: bool):
    from onnxscript import opset18 as op
    one = op.Constant(value_ints=[1])
    batch = op.Cast(op.Reshape(
        op.Slice(rois, op.Constant(value_ints=[0]), one, one),
        op.Constant(value_ints=[-1])), to=7)  # INT64
    boxes = op.Slice(rois, one, op.Constant(value_ints=[5]), one)
    return op.RoiAlign(
        feat, boxes, batch, mode='avg', output_height=output_size[0],
        output_width=output_size[1], sampling_ratio=sampling_ratio,
        spatial_scale=spatial_scale,
        coordinate_transformation_mode='half_pixel' if aligned
        else 'output_half_pixel')


def translation_table() -> dict:
    """``custom_translation_table`` for ``torch.onnx.export``."""
    return {torch.ops.mmdet_plugins.nms.default: _onnx_nms,
            torch.ops.mmdet_plugins.roi_align.default: _onnx_roi_align}
