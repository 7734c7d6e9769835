# RetinaMask R-50-FPN as in the official code (Fu et al., arXiv 1901.03353):
# mmdet's RetinaNet model with
# - RetinaMaskHead: losses over all FPN levels at once, official
#   normalisation (focal / (num_pos + num_images), box / (4 num_pos));
# - box coder weights (10, 10, 5, 5) = target_stds (0.1, 0.1, 0.2, 0.2);
# - self-adjusting smooth L1 (beta_max 0.11);
# - best matching 0.5 / 0.4 with low-quality threshold 0.0,
#   maskrcnn-benchmark semantics;
# - test NMS 0.4 (official) instead of mmdet's 0.5;
# - the mask branch: RoIAlign 14x14 on P3-P5 with the canonical-224 level
#   rule (finest_scale=112), 4 x conv 256 + deconv + 1x1, class-specific 28x28;
# - the official backbone and neck (mmdet's RetinaNet differs in all three):
#   MSRA caffe R-50 (Detectron's R-50.pkl, as maskrcnn-benchmark's
#   catalog://ImageNetPretrained/MSRA/R-50) with frozen BN and frozen stem +
#   res2, BGR input, Detectron's pixel mean, std 1; P6 from P5 (not C5) with a
#   ReLU before P7 (maskrcnn-benchmark's LastLevelP6P7 with use_P5).
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    type='RetinaMask',
    data_preprocessor=dict(
        mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False, pad_mask=True),
    backbone=dict(
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='caffe',
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://detectron/resnet50_caffe')),
    neck=dict(add_extra_convs='on_output', relu_before_extra_convs=True),
    bbox_head=dict(
        type='RetinaMaskHead',
        loss_normalizer='retinamask',
        # maskrcnn-benchmark centres anchors at stride / 2 in continuous
        # coordinates (mmdet's default: 0). Its ratio-0.5/2 anchors are also
        # rounded at base size (up to ~3 px per corner; not reproduced).
        anchor_generator=dict(center_offset=0.5),
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_bbox=dict(
            _delete_=True, type='SelfAdjustingSmoothL1Loss', beta_max=0.11,
            momentum=0.1, loss_weight=1.0)),
    mask_roi_extractor=dict(
        type='SingleRoIExtractor',
        # maskrcnn-benchmark's RoIAlign is the legacy, non-aligned one.
        roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=2,
                       aligned=False),
        out_channels=256,
        featmap_strides=[8, 16, 32],
        finest_scale=112),
    mask_head=dict(
        type='FCNMaskHead',
        num_convs=4,
        in_channels=256,
        conv_out_channels=256,
        num_classes=80,
        loss_mask=dict(
            type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            _delete_=True, type='BestMatchingAssigner', pos_iou_thr=0.5,
            neg_iou_thr=0.4, low_quality_thr=0.0,
            semantics='maskrcnn-benchmark'),
        # Detections that train the mask branch (official settings).
        mask=dict(nms_pre=1000, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.4), max_per_img=100,
                  min_bbox_size=0, pos_iou_thr=0.5, mask_size=28)),
    test_cfg=dict(
        nms=dict(iou_threshold=0.4),
        # Masks for the top-100 detections: box AP is not cut (official: 50).
        mask=dict(max_per_img=100, mask_thr_binary=0.5)))
