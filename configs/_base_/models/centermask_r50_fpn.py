# CenterMask R-50-FPN (Lee & Park, CVPR 2020) as the official code builds it:
# - FCOS with CenterMask's settings: GN towers (4 convs), centerness on the
#   regression branch, GIoU, center sampling (radius 1.5), normalised
#   regression, focal loss (0.25, 2); decoded as centermask2 (CM2) does:
#   class score > 0.05, per level the top 1000 by cls x centerness, NMS
#   0.6, score sqrt(cls x centerness), boxes clipped only at the end (the
#   mask branch and Eq. 2 see them unclipped). The R-50 1x config decodes
#   as CM1 (score cls x centerness, threshold 0.03, clipped at decoding);
#   the V2 / Lite configs reset CM2's;
# - mask branch on FCOS's detached top-100 detections + GT boxes (IoU >=
#   0.5): RoIAlign 14x14 (aligned, sampling ratio 0) on P3-P5 with the
#   adaptive assignment (Eq. 2), SAG-Mask (4 x conv 256 + SAM), 28x28 masks;
# - MaskIoU mask scoring (segm scores only); masks for the top 50 at test.
# Table 1's arms switch these parts off one by one (see the grids).
model = dict(
    type='CenterMask',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[103.530, 116.280, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_mask=True),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='caffe',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet50_caffe')),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='CenterMaskFCOSHead',
        score_mode='sqrt',
        clip_boxes='final',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        norm_on_bbox=True,
        centerness_on_reg=True,
        dcn_on_last_conv=False,
        center_sampling=True,
        center_sample_radius=1.5,
        conv_bias=True,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
            loss_weight=1.0),
        # The official IOULoss (GIoU with +1 on intersection and union, in
        # the stride units of the normalised regression); CM2's, whose
        # enclosing area has no epsilon (CM1: enclose_eps=1e-7).
        loss_bbox=dict(type='FCOSIoULoss', loss_type='giou', smooth=1.0,
                       enclose_eps=0.0, loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    mask_roi_extractor=dict(
        type='AdaptiveRoIExtractor',
        mapping='eq2',
        roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0,
                       aligned=True),
        out_channels=256,
        featmap_strides=[8, 16, 32]),
    mask_head=dict(
        type='SAGMaskHead',
        use_sam=True,
        num_convs=4,
        in_channels=256,
        conv_out_channels=256,
        num_classes=80,
        loss_mask=dict(
            type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)),
    maskiou_head=dict(
        type='MaskIoUHead',
        num_convs=4,
        num_fcs=2,
        roi_feat_size=14,
        in_channels=256,
        conv_out_channels=256,
        fc_out_channels=1024,
        num_classes=80,
        loss_iou=dict(type='MSELoss', loss_weight=0.5),
        # centermask2's MaskIoUHead (maskiou_head.py): FCs Kaiming normal
        # fan_out as the convs (mmdet's and CM1's: Caffe2 Xavier).
        init_cfg=[
            dict(type='Kaiming', override=dict(name='convs')),
            dict(type='Kaiming', override=dict(name='fcs')),
            dict(type='Normal', std=0.01, override=dict(name='fc_mask_iou'))
        ]),
    train_cfg=dict(
        # The mask branch's training RoIs: FCOS's post-NMS top 100 of the
        # current batch (decoded as at test), detached, plus the GT boxes
        # (CM2 INFERENCE_TH_TRAIN 0.05, PRE_NMS_TOPK_TRAIN 1000,
        # POST_NMS_TOPK_TRAIN 100, NMS_TH 0.6).
        # max_pos_per_img=None keeps every positive (CM1, the paper's
        # tables); centermask2 samples at most 128 per image.
        # maskiou_target_thr: the MaskIoU target binarises mask logits > 0.
        mask=dict(nms_pre=1000, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.6), max_per_img=100,
                  min_bbox_size=0, pos_iou_thr=0.5, mask_size=28,
                  max_pos_per_img=None, maskiou_target_thr=0.0)),
    # CM2 INFERENCE_TH_TEST 0.05, PRE_NMS_TOPK_TEST 1000, NMS_TH 0.6.
    # min_bbox_size 0 drops zero-width/height boxes before NMS, which
    # neither CM1 (it keeps them) nor CM2 (it drops them after the top-k)
    # does: only degenerate boxes are concerned.
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        # 50 detections per image for every arm, the FCOS baseline included
        # (CM1 TEST.DETECTIONS_PER_IMG, CM2 POST_NMS_TOPK_TEST).
        max_per_img=50,
        mask=dict(max_per_img=50, mask_thr_binary=0.5)))
