# RetinaMask R-50-FPN 1x with mmdet's RetinaNet recipe instead of the
# official one: torchvision R-50 (pytorch style, BN frozen in eval mode but
# affine trained), RGB ImageNet normalisation, P6 from C5 without a ReLU,
# warm-up from 0.001, no bias LR/decay multipliers. An arm for asking how
# much of a result is the recipe rather than the method.
_base_ = './retinamask_r50_fpn_1x_coco.py'
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        norm_cfg=dict(type='BN', requires_grad=True),
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(add_extra_convs='on_input', relu_before_extra_convs=False))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
