# CenterMask-Lite MobileNetV2 (paper, test-dev: 26.7 mask / 30.2 box at 20
# ms; CM2 val: 27.2 / 29.8): mmdet's MobileNetV2 with its ImageNet weights
# (open-mmlab://mmdet/mobilenet_v2, RGB with ImageNet mean/std), P3-P5 from
# the 32-, 96- and 320-channel stages (strides 8, 16, 32), BN frozen as the
# VoVNet Lite models. The rest is CenterMask-Lite (128-channel FPN and heads).
# Default weights: mmdet's (mmcls-trained, RGB), because they download
# themselves. CM2 starts from its own mobilenet_v2_detectron2.pth, fed BGR
# with std 1 (its yaml sets no PIXEL_MEAN/STD: detectron2 v0.3 defaults),
# which must be downloaded by hand and converted: that is
# centermask-lite_mv2-cm2-weights_fpn_ms-4x_coco.py (docs/weights.md).
# CM2 (FREEZE_AT 0, FrozenBN everywhere) freezes BN only, as here.
_base_ = './centermask-lite_v-39_fpn_ms-4x_coco.py'
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(1, 2, 4, 6),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 320]))
# mmdet's MobileNetV2 always runs its last 1x1 conv (conv2, 320 -> 1280),
# whose output no out_index takes: its parameters get no gradient, which DDP
# refuses unless told (mmdet's yolov3_mobilenetv2 config does the same).
find_unused_parameters = True
paper_recipe = dict(
    source='CM2 configs/centermask/centermask_lite_Mv2_FPN_ms_4x.yaml '
           '@6adabd6 (batch 16, LR 0.01, 360k, 300k/340k) + detectron2 '
           'v0.3 defaults (WARMUP linear 1/1000, 1000)')
