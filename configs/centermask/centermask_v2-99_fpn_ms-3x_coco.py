# CenterMask V2-99, multi-scale 3x (paper, test-dev: 40.6 mask / 45.8 box).
_base_ = './centermask_v2-39_fpn_ms-3x_coco.py'
model = dict(backbone=dict(arch='V-99'))
