# CenterMask V2-99, multi-scale 3x (paper, test-dev: 40.6 mask / 45.8 box;
# CM2 val: 41.4 / 46.0).
_base_ = './centermask_v2-39_fpn_ms-3x_coco.py'
vovnet_weights = 'checkpoints/vovnet99_ese_detectron2.pth'
model = dict(backbone=dict(
    arch='V-99', init_cfg=dict(type='Pretrained', checkpoint=vovnet_weights)))
paper_recipe = dict(
    source='CM2 configs/centermask/centermask_V_99_eSE_FPN_ms_3x.yaml '
           '@6adabd6 (batch 16, LR 0.01, 270k, 210k/250k) + detectron2 '
           'v0.3 defaults (WARMUP linear 1/1000, 1000)')
