# RetinaMask at CPU-smoke size, the counterpart of
# configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py: the same quarter-width
# ResNet-18, 64-channel FPN (P3-P7), 128 px images, trained from scratch.
_base_ = [
    '../_base_/models/retinamask_r50_fpn.py',
    '../_base_/datasets/builtin_instance_tiny.py',
    '../_base_/schedules/tiny_iters.py',
    '../_base_/tiny_runtime.py',
]
width = 64
model = dict(
    # From scratch: the official recipe's frozen caffe backbone and std-1
    # input only make sense with its ImageNet weights.
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
                   num_classes=3),
    mask_roi_extractor=dict(out_channels=width),
    mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=3))
