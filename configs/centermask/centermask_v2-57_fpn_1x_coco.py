# CenterMask VoVNetV2-57, 1x (Table 4), from the official ImageNet weights.
_base_ = './centermask_v2-39_fpn_1x_coco.py'
vovnet_weights = 'checkpoints/vovnet57_ese_detectron2.pth'
model = dict(backbone=dict(
    arch='V-57', init_cfg=dict(type='Pretrained', checkpoint=vovnet_weights)))
paper_recipe = dict(
    source='CM2 Base-CenterMask-VoVNet.yaml solver @6adabd6 (as V2-39 1x: '
           'batch 16, LR 0.01, 90k, 60k/80k) + detectron2 v0.3 defaults '
           '(WARMUP linear 1/1000, 1000)')
