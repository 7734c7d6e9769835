# CenterMask R-50-FPN 1x on COCO: the ablation setting of Tables 1 and 2
# (90k iterations at batch 16 = 12 epochs, SGD 0.01, steps at 8 and 11
# epochs, short side 800 / max 1333). Paper: 34.7 mask / 38.8 box AP.
_base_ = [
    '../_base_/models/centermask_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/plugins_runtime.py',
]
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
