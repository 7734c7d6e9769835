# CenterMask V2-57, multi-scale 3x.
_base_ = './centermask_v2-39_fpn_ms-3x_coco.py'
model = dict(backbone=dict(arch='V-57'))
