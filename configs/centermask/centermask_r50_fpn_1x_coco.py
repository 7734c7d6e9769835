# CenterMask R-50-FPN 1x on COCO: the ablation setting of Tables 1 and 2,
# with CM1's solver (youngwanLEE/CenterMask configs/centermask/
# centermask_R_50_FPN_1x.yaml): total batch 16, SGD 0.01, constant warm-up at
# 1/3 for 500 iterations (WARMUP_METHOD "constant"), 90k iterations, LR / 10
# at 60k and 80k, short side 800 / max 1333. Counted in iterations, as
# maskrcnn-benchmark counts them; the run's placement (8 GPUs x 2, 1 GPU x 2
# x 8 accumulation, ...) keeps these numbers. Paper: 34.7 mask / 38.8 box AP.
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
max_iters = 90000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='ConstantLR', factor=1 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[60000, 80000], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
paper_recipe = dict(
    total_batch=16, lr=0.01, warmup_iters=500, warmup_factor=1 / 3,
    warmup_method='constant', max_iters=90000, milestones=[60000, 80000],
    source='CM1 configs/centermask/centermask_R_50_FPN_1x.yaml @72147e8 '
           '(IMS_PER_BATCH 16, BASE_LR 0.01, WARMUP_METHOD constant, '
           'maskrcnn-benchmark WARMUP_FACTOR 1/3, WARMUP_ITERS 500)')
