# CenterMask VoVNetV2-57, 1x (Table 4).
_base_ = './centermask_v2-39_fpn_1x_coco.py'
model = dict(backbone=dict(arch='V-57'))
