# CenterMask VoVNetV2-57, 1x (Table 4), from the official ImageNet weights.
_base_ = './centermask_v2-39_fpn_1x_coco.py'
vovnet_weights = 'checkpoints/vovnet57_ese_detectron2.pth'
model = dict(backbone=dict(
    arch='V-57', init_cfg=dict(type='Pretrained', checkpoint=vovnet_weights)))
