# CenterMask-Lite V-19-slim-dw (CM2, val: 27.1 mask / 29.5 box).
_base_ = './centermask-lite_v-39_fpn_ms-4x_coco.py'
vovnet_weights = 'checkpoints/vovnet19_ese_slim_dw_detectron2.pth'
model = dict(backbone=dict(arch='V-19-slim-dw', init_cfg=dict(
                 type='Pretrained', checkpoint=vovnet_weights)),
             neck=dict(in_channels=[112, 256, 384, 512]))
paper_recipe = dict(
    source='CM2 configs/centermask/centermask_lite_V_19_slim_dw_eSE_FPN_ms '
           '_4x.yaml @6adabd6 (batch 16, LR 0.01, 360k, 300k/340k) + '
           'detectron2 v0.3 defaults (WARMUP linear 1/1000, 1000)')
