"""Test-time decoding steps written for ``torch.export``.

Each function computes what an mmdet test-time step computes, with the same
model modules and coders, but without Python branches on data (a filter is a
mask fed to NMS, a per-level RoI assignment is a gather), so that one traced
graph serves every image size and detection count:

- :func:`dense_candidates`: mmdet's ``filter_scores_and_topk`` per level.
  mmdet keeps the ``nms_pre`` best (prior, class) pairs among those above
  ``score_thr``; the top ``nms_pre`` of all pairs, then the threshold, is
  the same set.
- :func:`class_nms`: mmcv's ``batched_nms`` (boxes offset by class times
  the largest coordinate of the candidates, one NMS), then the first
  ``max_num``.
- :func:`roi_features`: ``SingleRoIExtractor`` / ``AdaptiveRoIExtractor``:
  every RoI is pooled on every level and its own level is gathered, which
  equals pooling each RoI on its level only.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..models.roi_extractors import AdaptiveRoIExtractor
from .onnx_ops import nms, roi_align

# Candidates that must not survive NMS get this score; kept scores are
# probabilities (>= 0), so a threshold between the two drops exactly them.
_DROPPED = -1.0
_DROP_THRESHOLD = -0.5


class UnsupportedModelError(ValueError):
    """The model (or a part of its config) has no export path."""


def dense_candidates(priors: Sequence[Tensor], cls_scores: Sequence[Tensor],
                     bbox_preds: Sequence[Tensor], num_classes: int,
                     reg_dim: int, nms_pre: int,
                     score_factors: Optional[Sequence[Tensor]] = None
                     ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor,
                                Optional[Tensor]]:
    """The top ``nms_pre`` (prior, class) pairs of each level, one image.

    Args:
        priors: Per level (n_l, d) priors of the level (points or anchors).
        cls_scores: Per level (1, A*C, H, W) class logits (sigmoid).
        bbox_preds: Per level (1, A*e, H, W) box regression.
        num_classes: C (the head's ``cls_out_channels``).
        reg_dim: e (the coder's ``encode_size``).
        nms_pre: Pairs kept per level (> 0).
        score_factors: Per level (1, A, H, W) centerness logits, or None.

    Returns:
        ``(priors, bbox_preds, scores, labels, level_ids, factors)`` of the
        candidates, concatenated over levels; ``scores`` and ``factors``
        after the sigmoid.
    """
    out = [[] for _ in range(6)]
    for level, (prior, cls, reg) in enumerate(
            zip(priors, cls_scores, bbox_preds)):
        scores = cls[0].permute(1, 2, 0).reshape(-1, num_classes).sigmoid()
        reg = reg[0].permute(1, 2, 0).reshape(-1, reg_dim)
        flat = scores.reshape(-1)
        top, index = flat.topk(torch.sym_min(nms_pre, flat.shape[0]))
        prior_index = torch.div(index, num_classes, rounding_mode='floor')
        out[0].append(prior[prior_index])
        out[1].append(reg[prior_index])
        out[2].append(top)
        out[3].append(index % num_classes)
        out[4].append(torch.full_like(index, level))
        if score_factors is not None:
            factor = score_factors[level][0].permute(1, 2, 0).reshape(-1)
            out[5].append(factor.sigmoid()[prior_index])
    cat = [torch.cat(x) if x else None for x in out]
    return tuple(cat)


def clip_boxes(boxes: Tensor, img_shape: Tensor) -> Tensor:
    """Clamp (n, 4k) boxes to ``[0, w] x [0, h]``, as mmdet's coders do
    with ``max_shape``.

    Args:
        boxes: Decoded boxes.
        img_shape: (2,) ``[h, w]`` of the resized, unpadded image.
    """
    limit = img_shape.flip(0).to(boxes.dtype).repeat(boxes.shape[-1] // 2)
    return torch.minimum(boxes.clamp(min=0), limit)


def check_nms_cfg(nms_cfg, where: str) -> float:
    """The IoU threshold of an mmcv ``nms`` config; other NMS types have no
    export path."""
    if nms_cfg is None or nms_cfg.get('type', 'nms') != 'nms' or \
            nms_cfg.get('class_agnostic', False):
        raise UnsupportedModelError(
            f'{where}: only class-wise dict(type="nms", iou_threshold=...) '
            f'exports to ONNX, got {nms_cfg}')
    return float(nms_cfg['iou_threshold'])


def class_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, valid: Tensor,
              iou_threshold: float, max_num: int) -> Tensor:
    """Indices kept by mmcv's ``batched_nms`` among ``valid`` candidates.

    Highest score first, at most ``max_num`` (mmdet's ``max_per_img``).
    """
    # mmcv offsets by the largest coordinate of the boxes it is given (the
    # valid ones); coordinates are clamped to >= 0, so zeros stand in for
    # the others without changing that maximum.
    coords = torch.where(valid[:, None], boxes, torch.zeros_like(boxes))
    offsets = idxs.to(boxes.dtype) * (coords.max() + 1)
    ranked = torch.where(valid, scores, torch.full_like(scores, _DROPPED))
    return nms(boxes + offsets[:, None], ranked, iou_threshold,
               _DROP_THRESHOLD, max_num)


def box_size_valid(boxes: Tensor, min_bbox_size: float) -> Tensor:
    """mmdet's ``min_bbox_size`` filter (off when it is negative)."""
    if min_bbox_size < 0:
        return torch.ones_like(boxes[:, 0], dtype=torch.bool)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return (w > min_bbox_size) & (h > min_bbox_size)


def roi_features(extractor, feats: List[Tensor], boxes: Tensor,
                 img_shape: Tensor) -> Tensor:
    """RoI features of one image's ``boxes`` on their assigned levels."""
    feats = feats[:extractor.num_inputs]
    rois = torch.cat([boxes.new_zeros((boxes.shape[0], 1)), boxes], dim=1)
    if isinstance(extractor, AdaptiveRoIExtractor):
        area = img_shape.to(boxes.dtype).prod()
        levels = extractor.map_roi_levels_by_area(rois, area)
    else:
        levels = extractor.map_roi_levels(rois, len(feats))
    pooled = []
    for feat, layer in zip(feats, extractor.roi_layers):
        if getattr(layer, 'pool_mode', 'avg') != 'avg' or \
                getattr(layer, 'use_torchvision', False):
            raise UnsupportedModelError(
                f'{type(extractor).__name__}: only mmcv RoIAlign with '
                f'pool_mode="avg" exports, got {layer}')
        pooled.append(roi_align(feat, rois, list(layer.output_size),
                                float(layer.spatial_scale),
                                int(layer.sampling_ratio),
                                bool(layer.aligned)))
    index = torch.arange(rois.shape[0], device=rois.device)
    return torch.stack(pooled)[levels, index]
