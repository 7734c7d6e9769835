# CenterMask-Lite with the smallest VoVNet (V-19-slim, depthwise, eSE) at
# CPU-smoke size: the tiny config for VoVNet arms (attention none/SE/eSE;
# V-19 variants have one block per stage, so `residual` changes nothing).
_base_ = './centermask_r18-tiny_fpn_builtin.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='VoVNet',
        arch='V-19-slim-dw',
        attention='ese',
        residual=True,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False),
    neck=dict(in_channels=[112, 256, 384, 512]))
