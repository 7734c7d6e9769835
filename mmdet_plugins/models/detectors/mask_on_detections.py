"""Single-stage detectors whose mask branch runs on their own detections.

RetinaMask and CenterMask share this structure: a dense box head (RetinaNet,
FCOS) plus a Mask R-CNN-style mask branch that trains on the box head's
detections of the current batch and, at test time, segments its top
detections. Only defaults differ; the subclasses name them.
"""
import copy
from typing import List, Optional, Sequence

import torch
from mmdet.models.dense_heads import FCOSHead
from mmdet.models.detectors import SingleStageDetector
from mmdet.models.utils import empty_instances, unpack_gt_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from ..roi_extractors import AdaptiveRoIExtractor


def roi_boxes(detections: InstanceData) -> Tensor:
    """The boxes the mask branch pools from and Eq. 2 measures.

    A box head that clips only its final boxes (``CenterMaskFCOSHead``
    with ``clip_boxes='final'``, centermask2) hands them over unclipped as
    ``roi_bboxes``; otherwise they are the detections' ``bboxes``.
    """
    return detections.get('roi_bboxes', detections.bboxes)


class MaskOnDetectionsDetector(SingleStageDetector):
    """A dense detector plus a mask branch trained on its detections.

    Training: the box head's losses as usual; then its detections on the
    current batch (``train_cfg.mask``: score threshold, class-wise NMS, top
    k per image; decoded by the box head's ``predict_by_feat`` exactly as in
    eval mode), detached, plus all GT boxes are matched to the GTs at
    ``pos_iou_thr``; every positive (no sampling; ``max_pos_per_img`` caps
    them at random, as centermask2's 128) gets a class-specific mask loss on
    RoI features. The mask loss back-propagates into the FPN and the
    backbone. With a ``maskiou_head``, a MaskIoU head learns the IoU of the
    predicted mask binarised at logit > ``maskiou_target_thr`` (0: p > 0.5,
    as CM1/CM2) with the GT (mmdet's ``MaskIoUHead`` targets).

    Logged every iteration: ``mask_pos_from_dets`` and ``mask_pos_from_gt``
    (positives of the batch that are detections / GT boxes) and
    ``mask_pos_dets_frac``: a mask branch that trains on GT boxes only shows
    ``mask_pos_from_dets`` = 0.

    Test: the box head's detections (``test_cfg``) are final boxes; the top
    ``test_cfg.mask.max_per_img`` of them by score get masks and the rest
    are dropped. With a MaskIoU head, ``pred_instances.mask_scores`` =
    box score x predicted mask IoU, which ``CocoMetric`` uses for segm only;
    ``pred_instances.scores`` (box AP) is left as it is. (mmdet's
    ``MaskScoringRoIHead`` overwrites ``scores``, changing box AP too.)

    Without ``mask_head`` the model is the bare dense detector with the same
    head, coder, loss and matching.

    Args:
        backbone, neck, bbox_head: As ``SingleStageDetector``.
        mask_roi_extractor: RoI extractor of the mask branch, or None.
        mask_head: Mask head (``FCNMaskHead`` or ``SAGMaskHead``), or None.
        maskiou_head: ``MaskIoUHead``, or None for no mask scoring.
        train_cfg: The box head's train config, plus an optional ``mask``
            dict overriding the class's ``mask_train_defaults``.
        test_cfg: The box head's test config, plus an optional ``mask``
            dict overriding the class's ``mask_test_defaults``.
    """

    mask_train_defaults: dict = dict(
        nms_pre=1000, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100, min_bbox_size=0, pos_iou_thr=0.5, mask_size=28,
        max_pos_per_img=None, maskiou_target_thr=0.0)
    mask_test_defaults: dict = dict(max_per_img=100, mask_thr_binary=0.5)

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 mask_roi_extractor: OptConfigType = None,
                 mask_head: OptConfigType = None,
                 maskiou_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None) -> None:
        train_cfg = copy.deepcopy(train_cfg) if train_cfg else None
        test_cfg = copy.deepcopy(test_cfg) if test_cfg else None
        mask_train = train_cfg.pop('mask', {}) if train_cfg else {}
        mask_test = test_cfg.pop('mask', {}) if test_cfg else {}
        if 'mask_thr_binary' in mask_train:
            # mmdet's MaskIoUHead compares this value with logits; a 0.5
            # there binarises at p > 0.62 instead of the official p > 0.5.
            raise ValueError(
                'model.train_cfg.mask.mask_thr_binary is not read: the '
                'MaskIoU target binarises mask logits at '
                'model.train_cfg.mask.maskiou_target_thr (official: 0.0)')
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if (mask_head is None) != (mask_roi_extractor is None):
            raise ValueError(f'{type(self).__name__} needs both '
                             f'mask_roi_extractor and mask_head, or neither')
        if maskiou_head is not None and mask_head is None:
            raise ValueError('maskiou_head needs a mask_head')
        self.mask_train_cfg = ConfigDict({**self.mask_train_defaults,
                                          **mask_train})
        self.mask_test_cfg = ConfigDict({**self.mask_test_defaults,
                                         **mask_test})
        if mask_head is not None:
            self.mask_roi_extractor = MODELS.build(mask_roi_extractor)
            self.mask_head = MODELS.build(mask_head)
            thr = self.mask_train_cfg.pos_iou_thr
            self.mask_assigner = TASK_UTILS.build(dict(
                type='MaxIoUAssigner', pos_iou_thr=thr, neg_iou_thr=thr,
                min_pos_iou=thr, match_low_quality=False))
            self.mask_sampler = TASK_UTILS.build(dict(type='PseudoSampler'))
        if maskiou_head is not None:
            self.maskiou_head = MODELS.build(maskiou_head)
        head_type = type(self.bbox_head)
        if (isinstance(self.bbox_head, FCOSHead)
                and self.bbox_head.norm_on_bbox
                and head_type.predict_by_feat is FCOSHead.predict_by_feat):
            # Its training-mode outputs are in stride units (see
            # CenterMaskFCOSHead): the mask branch would train on boxes
            # 8-128x too small.
            raise TypeError(
                f'{head_type.__name__} with norm_on_bbox decodes training-'
                f'mode outputs wrongly; use CenterMaskFCOSHead')

    @property
    def with_mask(self) -> bool:
        return hasattr(self, 'mask_head')

    @property
    def with_maskiou(self) -> bool:
        return hasattr(self, 'maskiou_head')

    def _mask_features(self, x, rois: Tensor,
                       img_shapes: Sequence) -> Tensor:
        feats = x[:self.mask_roi_extractor.num_inputs]
        if isinstance(self.mask_roi_extractor, AdaptiveRoIExtractor):
            return self.mask_roi_extractor(feats, rois,
                                           img_shapes=img_shapes)
        return self.mask_roi_extractor(feats, rois)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        x = self.extract_feat(batch_inputs)
        outs = self.bbox_head(x)
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        losses = self.bbox_head.loss_by_feat(
            *outs, batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore)
        log_vars = getattr(self.bbox_head.loss_bbox, 'log_vars', None)
        if log_vars is not None:
            losses.update(log_vars())
        if self.with_mask:
            losses.update(self.mask_loss(
                x, self.train_detections(outs, batch_img_metas),
                batch_gt_instances,
                [m['img_shape'] for m in batch_img_metas]))
        return losses

    def train_detections(self, outs: tuple,
                         batch_img_metas: List[dict]) -> InstanceList:
        """The batch's detections that train the mask branch, detached.

        Decoded by the box head with ``train_cfg.mask`` in network-input
        coordinates, from the outputs of the training forward.
        """
        with torch.no_grad():
            return self.bbox_head.predict_by_feat(
                *[[t.detach() for t in level] for level in outs],
                batch_img_metas=batch_img_metas,
                cfg=self.mask_train_cfg, rescale=False)

    def _sample_mask_rois(self, detections: InstanceList,
                          batch_gt_instances: InstanceList) -> tuple:
        """Positives among detections + GT boxes, and how many were dets."""
        sampling_results, from_dets = [], 0
        cap = self.mask_train_cfg.max_pos_per_img
        for det, gt in zip(detections, batch_gt_instances):
            proposals = InstanceData(
                priors=torch.cat([roi_boxes(det).detach(), gt.bboxes]))
            assign = self.mask_assigner.assign(proposals, gt)
            if cap is not None:
                pos = (assign.gt_inds > 0).nonzero().flatten()
                if len(pos) > cap:
                    drop = pos[torch.randperm(len(pos),
                                              device=pos.device)[cap:]]
                    assign.gt_inds[drop] = 0
                    assign.labels[drop] = -1
            result = self.mask_sampler.sample(assign, proposals, gt)
            from_dets += int((result.pos_inds < len(det)).sum())
            sampling_results.append(result)
        return sampling_results, from_dets

    def mask_loss(self, x, detections: InstanceList,
                  batch_gt_instances: InstanceList,
                  img_shapes: Sequence) -> dict:
        """Mask (and MaskIoU) losses on detections + GT boxes.

        Also returns the ``mask_pos_*`` counts (not losses: logged only).
        """
        sampling_results, from_dets = self._sample_mask_rois(
            detections, batch_gt_instances)
        num_pos = sum(len(res.pos_inds) for res in sampling_results)
        device = detections[0].bboxes.device if detections else None
        counts = dict(
            mask_pos_from_dets=torch.tensor(float(from_dets), device=device),
            mask_pos_from_gt=torch.tensor(float(num_pos - from_dets),
                                          device=device),
            mask_pos_dets_frac=torch.tensor(from_dets / max(num_pos, 1),
                                            device=device))
        rois = bbox2roi([res.pos_priors for res in sampling_results])
        mask_feats = self._mask_features(x, rois, img_shapes)
        mask_preds = self.mask_head(mask_feats)
        results = self.mask_head.loss_and_target(
            mask_preds, sampling_results, batch_gt_instances,
            self.mask_train_cfg)
        losses = dict(results['loss_mask'], **counts)
        if self.with_maskiou:
            labels = torch.cat([r.pos_gt_labels for r in sampling_results])
            index = torch.arange(len(labels), device=labels.device)
            class_masks = mask_preds[index, labels]
            iou_preds = self.maskiou_head(mask_feats, class_masks)
            losses.update(self.maskiou_head.loss_and_target(
                iou_preds[index, labels], class_masks,
                results['mask_targets'], sampling_results,
                batch_gt_instances, self.maskiou_target_cfg))
        return losses

    @property
    def maskiou_target_cfg(self) -> ConfigDict:
        """What mmdet's ``MaskIoUHead.get_targets`` reads: the logit
        threshold that binarises the predicted mask."""
        return ConfigDict(
            mask_thr_binary=self.mask_train_cfg.maskiou_target_thr)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        x = self.extract_feat(batch_inputs)
        if not self.with_mask:
            results = self.bbox_head.predict(x, batch_data_samples,
                                             rescale=rescale)
            return self.add_pred_to_datasample(batch_data_samples, results)
        # Boxes stay in network-input scale for RoIAlign; the mask head
        # rescales them (in place) while pasting the masks.
        results = self.bbox_head.predict(x, batch_data_samples,
                                         rescale=False)
        results = self.predict_masks(
            x, [s.metainfo for s in batch_data_samples], results, rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def predict_masks(self, x, batch_img_metas: List[dict],
                      results_list: InstanceList,
                      rescale: bool) -> InstanceList:
        """Masks for the top ``mask.max_per_img`` detections per image."""
        top_n = self.mask_test_cfg.max_per_img
        results_list = [
            r[r.scores.argsort(descending=True)[:top_n]]
            if len(r) > top_n else r for r in results_list]
        rois = bbox2roi([roi_boxes(r) for r in results_list])
        for r in results_list:  # the masks are pasted into ``bboxes``
            if 'roi_bboxes' in r:
                del r.roi_bboxes
        if rois.shape[0] == 0:
            results_list = empty_instances(
                batch_img_metas, rois.device, task_type='mask',
                instance_results=results_list,
                mask_thr_binary=self.mask_test_cfg.mask_thr_binary)
            if self.with_maskiou:
                for r in results_list:
                    r.mask_scores = r.scores
            return results_list
        mask_feats = self._mask_features(
            x, rois, [m['img_shape'] for m in batch_img_metas])
        mask_preds = self.mask_head(mask_feats)
        if self.with_maskiou:
            labels = torch.cat([r.labels for r in results_list])
            index = torch.arange(len(labels), device=labels.device)
            ious = self.maskiou_head(mask_feats, mask_preds[index, labels])
            ious = ious[index, labels].split([len(r) for r in results_list])
            for r, iou in zip(results_list, ious):
                r.mask_scores = r.scores * iou
        mask_preds = mask_preds.split([len(r) for r in results_list], 0)
        return self.mask_head.predict_by_feat(
            mask_preds=mask_preds, results_list=results_list,
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=self.mask_test_cfg, rescale=rescale)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: Optional[SampleList] = None):
        return self.bbox_head.forward(self.extract_feat(batch_inputs))
