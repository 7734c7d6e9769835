# Mask R-CNN at CPU-smoke size: ResNet-18 at a quarter of the width
# (16-32-64-128 channels), 64-channel FPN, 128 px images, trained from scratch
# (no pretrained weights are fetched). The structure -- RPN, RoIAlign, box
# and 4-conv FCN mask heads, losses, assigners -- is mmdet's Mask R-CNN.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/builtin_instance_tiny.py',
    '../_base_/schedules/tiny_iters.py',
    '../_base_/tiny_runtime.py',
]
width = 64
model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=3),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width,
                       num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
