"""CenterMask (Lee & Park, CVPR 2020, arXiv 1911.06667)."""
from mmdet.registry import MODELS

from .mask_on_detections import MaskOnDetectionsDetector


@MODELS.register_module()
class CenterMask(MaskOnDetectionsDetector):
    """FCOS plus the SAG-Mask branch on its detections, with mask scoring.

    - Box head: FCOS as CenterMask uses it (``CenterMaskFCOSHead``: GN
      towers, centerness on the regression branch, GIoU, center sampling,
      normalised regression).
    - Mask branch training (class defaults): FCOS's post-NMS detections
      (score > 0.05, NMS 0.6, top 100 per image), detached, plus the GT
      boxes, positives at IoU >= 0.5; RoIAlign 14x14 on P3-P5 with the
      adaptive level assignment (``AdaptiveRoIExtractor``, Eq. 2); the
      ``SAGMaskHead``; optionally MaskIoU (``maskiou_head``).
    - Test: the top 50 detections (``test_cfg.mask.max_per_img``) get
      masks; boxes are final; with MaskIoU, segm uses box score x mask IoU.

    Without ``mask_head`` this is the FCOS baseline of Table 1.
    See :class:`MaskOnDetectionsDetector` for the arguments.
    """

    mask_train_defaults = dict(
        nms_pre=1000, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100, min_bbox_size=0, pos_iou_thr=0.5, mask_size=28,
        max_pos_per_img=None, maskiou_target_thr=0.0)
    mask_test_defaults = dict(max_per_img=50, mask_thr_binary=0.5)
