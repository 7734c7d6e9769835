"""FCOS head as CenterMask's official code scores and decodes its boxes."""
from typing import List, Sequence

import torch
from mmcv.ops import batched_nms
from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_wh, scale_boxes
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

SCORE_MODES = ('sqrt', 'product')
CLIP_MODES = ('final', 'decode')


def clip_to_image(bboxes: Tensor, img_shape: Sequence[int]) -> Tensor:
    """(n, 4) boxes clamped to ``[0, w] x [0, h]``, as mmdet's
    ``distance2bbox`` clamps them with ``max_shape`` (``img_shape`` is
    ``(h, w)``)."""
    h, w = img_shape[:2]
    return torch.stack([bboxes[:, 0].clamp(0, w), bboxes[:, 1].clamp(0, h),
                        bboxes[:, 2].clamp(0, w), bboxes[:, 3].clamp(0, h)],
                       dim=1)


@MODELS.register_module()
class CenterMaskFCOSHead(FCOSHead):
    """mmdet's ``FCOSHead`` with a selectable detection score.

    - ``'sqrt'`` (default; centermask2, ``fcos_outputs.py``):
      ``score = sqrt(cls x centerness)``.
    - ``'product'`` (CM1's maskrcnn-benchmark FCOS ``inference.py``,
      mmdet's FCOS and the FCOS paper): ``score = cls x centerness``.

    The square root does not change the ranking within an image, only the
    scale of the scores against thresholds and across images, so COCO AP
    can differ slightly.

    Decoding in training mode: with ``norm_on_bbox`` mmdet's
    ``FCOSHead.forward_single`` returns the regression in stride units
    while training and multiplies it by the stride only in eval mode, but
    ``predict_by_feat`` always decodes as pixels. CenterMask decodes the
    current batch's detections during training to feed its mask branch
    (centermask2 rescales by the stride first, ``fcos_outputs.py``), so
    ``predict_by_feat`` here rescales training-mode outputs: the loss path
    and eval decoding give the same boxes for the same weights and input.

    Decoding (``_predict_by_feat_single``) follows CM1 / CM2's FCOS
    post-processor (``forward_for_single_feature_map``), not mmdet's: per
    level, the (location, class) pairs whose class score exceeds
    ``score_thr`` are candidates, and the top ``nms_pre`` of them by
    cls x centerness (not by the class score alone) are decoded; then
    class-wise NMS and the top ``max_per_img`` by score.

    ``clip_boxes`` says where boxes are clipped to the image:

    - ``'decode'`` (CM1, maskrcnn-benchmark ``clip_to_image`` right after
      decoding): NMS, the mask RoIs and Eq. 2's area see clipped boxes.
    - ``'final'`` (CM2, detectron2's ``detector_postprocess``): NMS, the
      mask RoIs and Eq. 2 see the unclipped boxes; the output boxes are
      clipped after the top-k (masks are pasted into the clipped boxes)
      and those left empty are dropped.

    Either way ``bboxes`` are the final, clipped boxes. Without ``rescale``
    the results also carry ``roi_bboxes``: the boxes the mask branch pools
    from (unclipped in ``'final'`` mode).

    Everything else is ``FCOSHead``; CenterMask's
    settings (GN towers, centerness on the regression branch, GIoU, center
    sampling radius 1.5, normalised regression) are set in the config.

    Args:
        score_mode: ``'sqrt'`` (CM2) or ``'product'`` (CM1).
        clip_boxes: ``'final'`` (CM2) or ``'decode'`` (CM1).
        **kwargs: As ``FCOSHead``.
    """

    def __init__(self, *args, score_mode: str = 'sqrt',
                 clip_boxes: str = 'final', **kwargs) -> None:
        if score_mode not in SCORE_MODES:
            raise ValueError(f'score_mode must be one of {SCORE_MODES}, got '
                             f'{score_mode!r}')
        if clip_boxes not in CLIP_MODES:
            raise ValueError(f'clip_boxes must be one of {CLIP_MODES}, got '
                             f'{clip_boxes!r}')
        super().__init__(*args, **kwargs)
        self.score_mode = score_mode
        self.clip_boxes = clip_boxes

    def predict_by_feat(self, cls_scores: List[Tensor],
                        bbox_preds: List[Tensor], *args,
                        **kwargs) -> List[InstanceData]:
        if self.training and self.norm_on_bbox:
            bbox_preds = [pred * stride for pred, stride in
                          zip(bbox_preds, self.strides)]
        return super().predict_by_feat(cls_scores, bbox_preds, *args,
                                       **kwargs)

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Tensor],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: ConfigDict,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """One image's detections, as CM1 / CM2 decode them.

        Args:
            cls_score_list: Per level (C, H, W) class logits.
            bbox_pred_list: Per level (4, H, W) distances in pixels.
            score_factor_list: Per level (1, H, W) centerness logits.
            mlvl_priors: Per level (H*W, 2) points.
            img_meta: The image's meta (``img_shape``, ``scale_factor``).
            cfg: ``score_thr``, ``nms_pre``, ``min_bbox_size``, ``nms``,
                ``max_per_img``; the head's ``test_cfg`` when None.
            rescale: Return boxes in the original image's scale.
            with_nms: Apply NMS and ``max_per_img``.

        Returns:
            ``bboxes``, ``scores``, ``labels`` (and ``roi_bboxes`` without
            ``rescale``), highest score first after NMS.
        """
        cfg = self.test_cfg if cfg is None else cfg
        img_shape = img_meta['img_shape']
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0)
        at_decode = img_shape if self.clip_boxes == 'decode' else None
        bboxes, scores, labels = [], [], []
        for cls, reg, ctr, priors in zip(cls_score_list, bbox_pred_list,
                                         score_factor_list, mlvl_priors):
            cls = cls.permute(1, 2, 0).reshape(
                -1, self.cls_out_channels).sigmoid()
            reg = reg.permute(1, 2, 0).reshape(-1, 4)
            ctr = ctr.permute(1, 2, 0).reshape(-1).sigmoid()
            # Thresholded on the class score, ranked by cls x centerness
            # (CM1/CM2 THRESH_WITH_CTR False).
            candidates = cls > score_thr
            level_scores = (cls * ctr[:, None])[candidates]
            locs, level_labels = candidates.nonzero(as_tuple=True)
            if 0 < nms_pre < level_scores.numel():
                level_scores, top = level_scores.topk(nms_pre)
                locs, level_labels = locs[top], level_labels[top]
            bboxes.append(self.bbox_coder.decode(
                priors[locs], reg[locs], max_shape=at_decode))
            scores.append(level_scores)
            labels.append(level_labels)
        results = InstanceData(bboxes=torch.cat(bboxes),
                               scores=torch.cat(scores),
                               labels=torch.cat(labels))
        if self.score_mode == 'sqrt':
            results.scores = results.scores.sqrt()
        if cfg.get('min_bbox_size', -1) >= 0:
            w, h = get_box_wh(results.bboxes)
            results = results[(w > cfg.min_bbox_size) &
                              (h > cfg.min_bbox_size)]
        if with_nms and len(results) > 0:
            _, keep = batched_nms(results.bboxes, results.scores,
                                           results.labels, cfg.nms)
            results = results[keep][:cfg.max_per_img]
        if self.clip_boxes == 'final':
            roi_bboxes = results.bboxes
            results.bboxes = clip_to_image(roi_bboxes, img_shape)
            # detectron2 drops the boxes the clipping leaves empty.
            w, h = get_box_wh(results.bboxes)
            keep = (w > 0) & (h > 0)
            results, roi_bboxes = results[keep], roi_bboxes[keep]
        else:
            roi_bboxes = results.bboxes
        if rescale:
            results.bboxes = scale_boxes(
                results.bboxes, [1 / s for s in img_meta['scale_factor']])
        else:
            results.roi_bboxes = roi_bboxes
        return results
