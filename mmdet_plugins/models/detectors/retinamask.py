"""RetinaMask (Fu, Shvets & Berg, arXiv 1901.03353)."""
from mmdet.registry import MODELS

from .mask_on_detections import MaskOnDetectionsDetector


@MODELS.register_module()
class RetinaMask(MaskOnDetectionsDetector):
    """RetinaNet with a Mask R-CNN-style mask branch on its detections.

    Official settings (the class defaults): the mask branch trains on the
    box head's detections with score > 0.05, class-wise NMS 0.4, top 100
    per image, detached, plus all GT boxes, positives at IoU >= 0.5, all
    used; class-specific 28x28 masks on RoIAlign features of P3-P5 with the
    official level rule (canonical 224 px -> P4, clamped to P3-P5; with
    mmdet's ``SingleRoIExtractor`` ``featmap_strides=[8, 16, 32]`` and
    ``finest_scale=112``). Mask gradients reach the FPN and the backbone.

    At test time masks go to the top ``test_cfg.mask.max_per_img``
    detections: 100 by default, equal to the box head's ``max_per_img`` so
    box AP is not cut; the official code uses 50, which also cuts the boxes
    (set ``test_cfg.mask.max_per_img=50``).

    Without ``mask_head`` this is RetinaNet with the same head, coder, loss
    and matching: the baseline for "does the mask branch raise box AP".
    See :class:`MaskOnDetectionsDetector` for the arguments.
    """

    mask_train_defaults = dict(
        nms_pre=1000, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.4),
        max_per_img=100, min_bbox_size=0, pos_iou_thr=0.5, mask_size=28,
        max_pos_per_img=None, maskiou_target_thr=0.0)
    mask_test_defaults = dict(max_per_img=100, mask_thr_binary=0.5)
