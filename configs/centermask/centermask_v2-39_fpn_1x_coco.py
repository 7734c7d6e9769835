# CenterMask with VoVNetV2-39 (eSE + residual), 1x: the setting of Table 4,
# whose V1 / +residual / +SE / +eSE rows are the backbone's `attention` and
# `residual` arguments (see experiments/grids/centermask_table4.yaml).
# ImageNet weights for VoVNet are not on mmdet's model zoo: set
# model.backbone.init_cfg = dict(type='Pretrained', checkpoint=<path>) to
# start from a converted classifier checkpoint.
_base_ = './centermask_r50_fpn_1x_coco.py'
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='VoVNet',
        arch='V-39',
        attention='ese',
        residual=True,
        out_indices=(0, 1, 2, 3),
        frozen_stages=0,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True),
    neck=dict(in_channels=[256, 512, 768, 1024]))
