# CenterMask V2-57, multi-scale 3x (CM2: 40.5 mask / 45.1 box on COCO val).
_base_ = './centermask_v2-39_fpn_ms-3x_coco.py'
vovnet_weights = 'checkpoints/vovnet57_ese_detectron2.pth'
model = dict(backbone=dict(
    arch='V-57', init_cfg=dict(type='Pretrained', checkpoint=vovnet_weights)))
