# CenterMask-Lite V-19 (paper, test-dev: 32.4 mask / 35.9 box at 23 ms).
_base_ = './centermask-lite_v-39_fpn_ms-4x_coco.py'
model = dict(backbone=dict(arch='V-19'))
