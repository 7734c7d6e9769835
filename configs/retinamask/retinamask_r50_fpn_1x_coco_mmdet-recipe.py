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
# mmdet's RetinaNet 1x solver, by epochs (retinanet_r50_fpn_1x_coco.py:
# batch 16, SGD 0.01, linear warm-up from 0.001 over 500 iterations, 12
# epochs, LR / 10 at epochs 8 and 11), without the base's bias multipliers
# (one dict: a second `optim_wrapper =` in this file would replace the
# first, and the base's paramwise_cfg would survive).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(_delete_=True))
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=12,
                 val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=3))
log_processor = dict(by_epoch=True)
paper_recipe = dict(
    total_batch=16, lr=0.01, warmup_iters=500, warmup_factor=0.001,
    warmup_method='linear', max_epochs=12, milestones=[8, 11],
    max_iters=None,
    source='mmdet 3.3.0 configs/retinanet/retinanet_r50_fpn_1x_coco.py '
           '(schedule_1x.py with lr 0.01; 8 GPUs x 2 images)')
