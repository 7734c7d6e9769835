# CenterMask V2-99, multi-scale 3x (paper, test-dev: 40.6 mask / 45.8 box;
# CM2 val: 41.4 / 46.0).
_base_ = './centermask_v2-39_fpn_ms-3x_coco.py'
vovnet_weights = 'checkpoints/vovnet99_ese_detectron2.pth'
model = dict(backbone=dict(
    arch='V-99', init_cfg=dict(type='Pretrained', checkpoint=vovnet_weights)))
