# RetinaMask R-50-FPN 1x on COCO (paper's R-50 1x setting: 90k iterations at
# batch 16 = 12 epochs), with the official solver: SGD 0.01, momentum 0.9,
# weight decay 1e-4, bias LR x2 and no weight decay on biases, linear warm-up
# from 1/3 over 500 iterations, LR / 10 at 60k and 80k (epochs 8 and 11).
_base_ = [
    '../_base_/models/retinamask_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/plugins_runtime.py',
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
