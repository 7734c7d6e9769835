# CenterMask V2-57, multi-scale 3x (CM2: 40.5 mask / 45.1 box on COCO val).
_base_ = './centermask_v2-39_fpn_ms-3x_coco.py'
vovnet_weights = 'checkpoints/vovnet57_ese_detectron2.pth'
model = dict(backbone=dict(
    arch='V-57', init_cfg=dict(type='Pretrained', checkpoint=vovnet_weights)))
paper_recipe = dict(
    source='CM2 configs/centermask/centermask_V_57_eSE_FPN_ms_3x.yaml '
           '@6adabd6 (batch 16, LR 0.01, 270k, 210k/250k) + detectron2 '
           'v0.3 defaults (WARMUP linear 1/1000, 1000)')
