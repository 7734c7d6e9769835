# CenterMask at CPU-smoke size, the counterpart of the tiny Mask R-CNN and
# RetinaMask: quarter-width ResNet-18, 64-channel FPN (P3-P7), 2-conv FCOS
# towers, 2 x 64 SAG-Mask and a 64-channel MaskIoU head, 128 px images,
# trained from scratch.
_base_ = [
    '../_base_/models/centermask_r50_fpn.py',
    '../_base_/datasets/builtin_instance_tiny.py',
    '../_base_/schedules/tiny_iters.py',
    '../_base_/tiny_runtime.py',
]
width = 64
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=width),
    bbox_head=dict(in_channels=width, feat_channels=width, stacked_convs=2,
                   norm_cfg=dict(type='GN', num_groups=16,
                                 requires_grad=True),
                   num_classes=3),
    mask_roi_extractor=dict(out_channels=width),
    mask_head=dict(num_convs=2, in_channels=width, conv_out_channels=width,
                   num_classes=3),
    maskiou_head=dict(in_channels=width, conv_out_channels=width,
                      fc_out_channels=256, num_classes=3))
