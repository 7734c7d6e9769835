# CenterMask with VoVNetV2-39 (eSE + residual), 1x: the setting of Table 4,
# whose V1 / +residual / +SE / +eSE rows are the backbone's `attention` and
# `residual` arguments (see experiments/grids/centermask_table4.yaml).
#
# Starts, as centermask2 does, from the official ImageNet classifier
# (vovnet39_ese_detectron2.pth; download it into checkpoints/, see
# docs/weights.md): BGR input, mean subtracted, std 1 (detectron2's pixel
# mean), BN frozen (CM2's FrozenBN: statistics and affine fixed), no stage
# frozen (CM2 FREEZE_AT 0). For timm's ImageNet weights use
# centermask_v2-39-timm_fpn_1x_coco.py.
_base_ = './centermask_r50_fpn_1x_coco.py'
vovnet_weights = 'checkpoints/vovnet39_ese_detectron2.pth'
model = dict(
    data_preprocessor=dict(
        mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False),
    backbone=dict(
        _delete_=True,
        type='VoVNet',
        arch='V-39',
        attention='ese',
        residual=True,
        attention_blocks='all',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=vovnet_weights)),
    neck=dict(in_channels=[256, 512, 768, 1024]))
