"""RetinaMask: RetinaNet plus a mask branch trained on its own detections."""
import copy
from typing import List, Optional

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.models.utils import empty_instances, unpack_gt_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

# Official RetinaMask training/test settings of the mask branch.
MASK_TRAIN_DEFAULTS = dict(
    nms_pre=1000, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.4),
    max_per_img=100, min_bbox_size=0, pos_iou_thr=0.5, mask_size=28)
MASK_TEST_DEFAULTS = dict(max_per_img=100, mask_thr_binary=0.5)


@MODELS.register_module()
class RetinaMask(SingleStageDetector):
    """RetinaNet with a Mask R-CNN-style mask branch (Fu et al., 2019).

    Training: the box head's losses as usual; then its detections on the
    current batch (``train_cfg.mask``: score > 0.05, class-wise NMS 0.4,
    top 100 per image), detached, plus all GT boxes are matched to the GTs
    at IoU >= 0.5; every positive (no sampling) gets a class-specific 28x28
    mask loss on RoIAlign features of P3-P5. The mask loss back-propagates
    into the FPN and the backbone.

    The RoI level rule is the official one (canonical 224 px -> P4, clamped
    to P3-P5); with mmdet's ``SingleRoIExtractor`` that is
    ``featmap_strides=[8, 16, 32]`` and ``finest_scale=112``.

    Test: the box head's detections (``test_cfg``); the top
    ``test_cfg.mask.max_per_img`` of them by score get masks and the rest
    are dropped. The default 100 equals the box head's ``max_per_img``, so
    box AP is not cut; the official code uses 50 (which also cuts boxes).

    Without ``mask_head`` this is RetinaNet with the same head, coder, loss
    and matching -- the baseline for "does the mask branch help box AP".

    Args:
        backbone, neck, bbox_head: As ``SingleStageDetector``.
        mask_roi_extractor: RoI extractor of the mask branch, or None.
        mask_head: Mask head (e.g. ``FCNMaskHead``), or None for RetinaNet.
        train_cfg: The box head's train config, plus an optional ``mask``
            dict overriding ``MASK_TRAIN_DEFAULTS``.
        test_cfg: The box head's test config, plus an optional ``mask``
            dict overriding ``MASK_TEST_DEFAULTS``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 mask_roi_extractor: OptConfigType = None,
                 mask_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None) -> None:
        train_cfg = copy.deepcopy(train_cfg) if train_cfg else None
        test_cfg = copy.deepcopy(test_cfg) if test_cfg else None
        mask_train = train_cfg.pop('mask', {}) if train_cfg else {}
        mask_test = test_cfg.pop('mask', {}) if test_cfg else {}
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if (mask_head is None) != (mask_roi_extractor is None):
            raise ValueError('RetinaMask needs both mask_roi_extractor and '
                             'mask_head, or neither (RetinaNet)')
        self.mask_train_cfg = ConfigDict({**MASK_TRAIN_DEFAULTS,
                                          **mask_train})
        self.mask_test_cfg = ConfigDict({**MASK_TEST_DEFAULTS, **mask_test})
        if mask_head is not None:
            self.mask_roi_extractor = MODELS.build(mask_roi_extractor)
            self.mask_head = MODELS.build(mask_head)
            thr = self.mask_train_cfg.pos_iou_thr
            self.mask_assigner = TASK_UTILS.build(dict(
                type='MaxIoUAssigner', pos_iou_thr=thr, neg_iou_thr=thr,
                min_pos_iou=thr, match_low_quality=False))
            self.mask_sampler = TASK_UTILS.build(dict(type='PseudoSampler'))

    @property
    def with_mask(self) -> bool:
        return hasattr(self, 'mask_head')

    def _mask_features(self, x, rois: Tensor) -> Tensor:
        return self.mask_roi_extractor(
            x[:self.mask_roi_extractor.num_inputs], rois)

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
            with torch.no_grad():
                detections = self.bbox_head.predict_by_feat(
                    *[[t.detach() for t in level] for level in outs],
                    batch_img_metas=batch_img_metas,
                    cfg=self.mask_train_cfg, rescale=False)
            losses.update(self.mask_loss(x, detections, batch_gt_instances))
        return losses

    def mask_loss(self, x, detections: InstanceList,
                  batch_gt_instances: InstanceList) -> dict:
        """Mask loss on detections + GT boxes matched at IoU >= thr."""
        sampling_results = []
        for det, gt in zip(detections, batch_gt_instances):
            proposals = InstanceData(
                priors=torch.cat([det.bboxes.detach(), gt.bboxes]))
            assign = self.mask_assigner.assign(proposals, gt)
            sampling_results.append(
                self.mask_sampler.sample(assign, proposals, gt))
        rois = bbox2roi([res.pos_priors for res in sampling_results])
        mask_preds = self.mask_head(self._mask_features(x, rois))
        results = self.mask_head.loss_and_target(
            mask_preds, sampling_results, batch_gt_instances,
            self.mask_train_cfg)
        return results['loss_mask']

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
        rois = bbox2roi([r.bboxes for r in results_list])
        if rois.shape[0] == 0:
            return empty_instances(
                batch_img_metas, rois.device, task_type='mask',
                instance_results=results_list,
                mask_thr_binary=self.mask_test_cfg.mask_thr_binary)
        mask_preds = self.mask_head(self._mask_features(x, rois))
        mask_preds = mask_preds.split([len(r) for r in results_list], 0)
        return self.mask_head.predict_by_feat(
            mask_preds=mask_preds, results_list=results_list,
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=self.mask_test_cfg, rescale=rescale)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: Optional[SampleList] = None):
        return self.bbox_head.forward(self.extract_feat(batch_inputs))
