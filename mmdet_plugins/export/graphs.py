"""Whole test-time networks of the exported models, as tensor-only modules.

``build_export_graph(model)`` wraps a built, eval-mode detector in a module
whose ``forward(image, img_shape)`` runs backbone, neck, box head, decoding,
NMS and the mask stage on one image and returns

- ``boxes`` (n, 4) x1 y1 x2 y2 in network-input pixels (resized image),
- ``scores`` (n,) box scores (what box AP ranks by),
- ``labels`` (n,) int64 class indices,
- ``mask_probs`` (n, M, M) mask probabilities of each box's class (the
  mask head's 28 x 28, before pasting),
- ``mask_scores`` (n,) the segm score (box score x predicted mask IoU with
  a MaskIoU head, else the box score),

highest score first, exactly the detections the model's ``predict`` keeps
(``test_cfg.max_per_img``, and for CenterMask / RetinaMask only the top
``test_cfg.mask.max_per_img``, which get masks). ``image`` is the
normalised, padded (1, 3, H, W) network input and ``img_shape`` the (2,)
int64 ``[h, w]`` of the resized image before padding. Rescaling to the
original image and pasting the masks is
:func:`mmdet_plugins.export.onnx_inference.postprocess`.
"""
from typing import Tuple

import torch
from mmdet.models.dense_heads import FCOSHead, RetinaHead
from mmdet.models.detectors import MaskRCNN
from torch import Tensor, nn

from ..models.dense_heads import CenterMaskFCOSHead
from ..models.detectors.mask_on_detections import MaskOnDetectionsDetector
from .graph_ops import (UnsupportedModelError, box_size_valid,
                        check_nms_cfg, class_nms, clip_boxes,
                        dense_candidates, roi_features)

OUTPUT_NAMES = ('boxes', 'scores', 'labels', 'mask_probs', 'mask_scores')


def _check_nms_pre(cfg, where: str) -> int:
    nms_pre = int(cfg.get('nms_pre', -1))
    if nms_pre <= 0:
        raise UnsupportedModelError(f'{where}.nms_pre must be > 0 to '
                                    f'export, got {nms_pre}')
    return nms_pre


def _decode(coder, priors: Tensor, deltas: Tensor,
            img_shape: Tensor) -> Tensor:
    boxes = coder.decode(priors, deltas)
    return clip_boxes(boxes, img_shape) if coder.clip_border else boxes


def _fcos_candidates(priors, cls_scores, bbox_preds, centernesses,
                     num_classes: int, nms_pre: int, score_thr: float
                     ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``CenterMaskFCOSHead``'s candidates (CM1 / CM2): per level the top
    ``nms_pre`` (point, class) pairs by cls x centerness among those whose
    class score exceeds ``score_thr``. Returns ``(priors, deltas,
    products, labels)``; a product of -1 marks a pair under the threshold.
    """
    out = [[] for _ in range(4)]
    for prior, cls, reg, ctr in zip(priors, cls_scores, bbox_preds,
                                    centernesses):
        cls = cls[0].permute(1, 2, 0).reshape(-1, num_classes).sigmoid()
        reg = reg[0].permute(1, 2, 0).reshape(-1, 4)
        ctr = ctr[0].permute(1, 2, 0).reshape(-1).sigmoid()
        prod = torch.where(cls > score_thr, cls * ctr[:, None],
                           torch.full_like(cls, -1.)).reshape(-1)
        top, index = prod.topk(torch.sym_min(nms_pre, prod.shape[0]))
        point = torch.div(index, num_classes, rounding_mode='floor')
        out[0].append(prior[point])
        out[1].append(reg[point])
        out[2].append(top)
        out[3].append(index % num_classes)
    return tuple(torch.cat(x) for x in out)


def _class_masks(mask_head, feats: Tensor, labels: Tensor) -> Tensor:
    """Each RoI's mask logits for its class, (n, M, M)."""
    logits = mask_head(feats)
    if mask_head.class_agnostic:
        return logits[:, 0]
    index = torch.arange(labels.shape[0], device=labels.device)
    return logits[index, labels]


class MaskOnDetectionsGraph(nn.Module):
    """CenterMask / CenterMask-Lite / RetinaMask at test time, one image."""

    def __init__(self, model: MaskOnDetectionsDetector) -> None:
        super().__init__()
        head = model.bbox_head
        name = type(model).__name__
        if not model.with_mask:
            raise UnsupportedModelError(
                f'{name} without a mask_head is a box-only detector; '
                f'tools/export_onnx.py exports instance segmentation models')
        if not isinstance(head, (FCOSHead, RetinaHead)) or \
                not head.use_sigmoid_cls:
            raise UnsupportedModelError(
                f'{name}: box head {type(head).__name__} has no export path '
                f'(FCOS- and RetinaNet-style sigmoid heads do)')
        cfg = model.test_cfg
        self.model = model
        self.nms_pre = _check_nms_pre(cfg, 'model.test_cfg')
        self.iou = check_nms_cfg(cfg.get('nms'), 'model.test_cfg.nms')
        self.score_thr = float(cfg.get('score_thr', 0))
        self.min_bbox_size = float(cfg.get('min_bbox_size', -1))
        # predict_masks keeps the top mask.max_per_img of the NMS output.
        self.max_num = min(int(cfg.max_per_img),
                           int(model.mask_test_cfg.max_per_img))
        self.centerness = isinstance(head, FCOSHead)
        self.sqrt_score = (isinstance(head, CenterMaskFCOSHead)
                           and head.score_mode == 'sqrt')
        self.official_fcos = isinstance(head, CenterMaskFCOSHead)
        self.clip_final = (self.official_fcos
                           and head.clip_boxes == 'final')
        self.nms_max = int(cfg.max_per_img)

    def forward(self, image: Tensor, img_shape: Tensor
                ) -> Tuple[Tensor, ...]:
        model, head = self.model, self.model.bbox_head
        x = model.extract_feat(image)
        outs = head(x)
        cls_scores, bbox_preds = outs[0], outs[1]
        priors = head.prior_generator.grid_priors(
            [c.shape[-2:] for c in cls_scores], dtype=image.dtype,
            device=image.device)
        if self.official_fcos:
            priors, deltas, prod, labels = _fcos_candidates(
                priors, cls_scores, bbox_preds, outs[2],
                head.cls_out_channels, self.nms_pre, self.score_thr)
            boxes = head.bbox_coder.decode(priors, deltas)
            if not self.clip_final:
                boxes = clip_boxes(boxes, img_shape)
            valid = (prod >= 0) & box_size_valid(boxes, self.min_bbox_size)
            prod = prod.clamp(min=0)
            scores = prod.sqrt() if self.sqrt_score else prod
            return self._nms_and_masks(x, boxes, scores, labels, valid,
                                       img_shape)
        priors, deltas, cls, labels, _, ctr = dense_candidates(
            priors, cls_scores, bbox_preds, head.cls_out_channels,
            head.bbox_coder.encode_size, self.nms_pre,
            outs[2] if self.centerness else None)
        boxes = _decode(head.bbox_coder, priors, deltas, img_shape)
        # The threshold is on the class score; NMS ranks by the final one.
        valid = (cls > self.score_thr) & box_size_valid(boxes,
                                                        self.min_bbox_size)
        if ctr is None:
            scores = cls
        elif self.sqrt_score:
            scores = torch.sqrt(cls * ctr)
        else:
            scores = cls * ctr
        return self._nms_and_masks(x, boxes, scores, labels, valid,
                                   img_shape)

    def _nms_and_masks(self, x, boxes: Tensor, scores: Tensor,
                       labels: Tensor, valid: Tensor, img_shape: Tensor
                       ) -> Tuple[Tensor, ...]:
        model = self.model
        # CM2 (clip_boxes='final'): the RoIs unclipped, the output boxes
        # clipped, those the clipping leaves empty dropped after the head's
        # top max_per_img, then the top mask.max_per_img.
        keep = class_nms(boxes, scores, labels, valid, self.iou,
                         self.nms_max if self.clip_final else self.max_num)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        rois = boxes
        if self.clip_final:
            boxes = clip_boxes(boxes, img_shape)
            nonempty = ((boxes[:, 2] > boxes[:, 0]) &
                        (boxes[:, 3] > boxes[:, 1])).nonzero()[:, 0]
            nonempty = nonempty[:self.max_num]
            rois, boxes = rois[nonempty], boxes[nonempty]
            scores, labels = scores[nonempty], labels[nonempty]
        feats = roi_features(model.mask_roi_extractor, x, rois, img_shape)
        class_logits = _class_masks(model.mask_head, feats, labels)
        mask_scores = scores
        if model.with_maskiou:
            index = torch.arange(labels.shape[0], device=labels.device)
            ious = model.maskiou_head(feats, class_logits)[index, labels]
            mask_scores = scores * ious
        return boxes, scores, labels, class_logits.sigmoid(), mask_scores


class MaskRCNNGraph(nn.Module):
    """mmdet's Mask R-CNN at test time (RPN, box and mask RoI heads)."""

    def __init__(self, model: MaskRCNN) -> None:
        super().__init__()
        roi_head = model.roi_head
        if type(roi_head).__name__ != 'StandardRoIHead' or \
                getattr(roi_head.bbox_head, 'custom_activation', False):
            raise UnsupportedModelError(
                f'Mask R-CNN with {type(roi_head).__name__} has no export '
                f'path (StandardRoIHead does)')
        rpn_cfg, rcnn_cfg = model.test_cfg.rpn, model.test_cfg.rcnn
        self.model = model
        self.rpn_nms_pre = _check_nms_pre(rpn_cfg, 'model.test_cfg.rpn')
        self.rpn_iou = check_nms_cfg(rpn_cfg.get('nms'),
                                     'model.test_cfg.rpn.nms')
        self.rpn_min_size = float(rpn_cfg.get('min_bbox_size', -1))
        self.rpn_max = int(rpn_cfg.max_per_img)
        self.iou = check_nms_cfg(rcnn_cfg.get('nms'),
                                 'model.test_cfg.rcnn.nms')
        self.score_thr = float(rcnn_cfg.score_thr)
        self.max_num = int(rcnn_cfg.max_per_img)

    def proposals(self, x, img_shape: Tensor) -> Tensor:
        """RPNHead's proposals (``test_cfg.rpn``), (n, 4)."""
        head = self.model.rpn_head
        cls_scores, bbox_preds = head(x)
        priors = head.prior_generator.grid_priors(
            [c.shape[-2:] for c in cls_scores], dtype=x[0].dtype,
            device=x[0].device)
        priors, deltas, scores, _, level_ids, _ = dense_candidates(
            priors, cls_scores, bbox_preds, 1,
            head.bbox_coder.encode_size, self.rpn_nms_pre)
        boxes = _decode(head.bbox_coder, priors, deltas, img_shape)
        # RPN NMS is per level (level ids as classes), with no threshold.
        valid = box_size_valid(boxes, self.rpn_min_size)
        keep = class_nms(boxes, scores, level_ids, valid, self.rpn_iou,
                         self.rpn_max)
        return boxes[keep]

    def forward(self, image: Tensor, img_shape: Tensor
                ) -> Tuple[Tensor, ...]:
        model = self.model
        roi_head = model.roi_head
        bbox_head = roi_head.bbox_head
        x = model.extract_feat(image)
        proposals = self.proposals(x, img_shape)
        feats = roi_features(roi_head.bbox_roi_extractor, x, proposals,
                             img_shape)
        if roi_head.with_shared_head:
            feats = roi_head.shared_head(feats)
        cls_score, bbox_pred = bbox_head(feats)
        probs = cls_score.softmax(-1)[:, :-1]
        num_rois, num_classes = probs.shape
        per_class = 1 if bbox_head.reg_class_agnostic else num_classes
        boxes = _decode(
            bbox_head.bbox_coder,
            proposals.repeat_interleave(per_class, dim=0),
            bbox_pred.reshape(-1, bbox_head.bbox_coder.encode_size),
            img_shape).reshape(num_rois, per_class, 4)
        boxes = boxes.expand(num_rois, num_classes, 4).reshape(-1, 4)
        # multiclass_nms: every (RoI, class) above score_thr competes.
        scores = probs.reshape(-1)
        labels = torch.arange(num_classes, device=image.device).repeat(
            num_rois)
        keep = class_nms(boxes, scores, labels, scores > self.score_thr,
                         self.iou, self.max_num)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        mask_feats = roi_features(roi_head.mask_roi_extractor, x, boxes,
                                  img_shape)
        class_logits = _class_masks(roi_head.mask_head, mask_feats, labels)
        return boxes, scores, labels, class_logits.sigmoid(), scores


def build_export_graph(model: nn.Module) -> nn.Module:
    """The export module for a built detector, or a clear refusal.

    Raises:
        UnsupportedModelError: not CenterMask, CenterMask-Lite, RetinaMask
            or Mask R-CNN (or a config part with no export path).
    """
    if isinstance(model, MaskOnDetectionsDetector):
        return MaskOnDetectionsGraph(model).eval()
    if isinstance(model, MaskRCNN):
        return MaskRCNNGraph(model).eval()
    raise UnsupportedModelError(
        f'{type(model).__name__}: tools/export_onnx.py exports CenterMask, '
        f'CenterMask-Lite, RetinaMask and Mask R-CNN only')
