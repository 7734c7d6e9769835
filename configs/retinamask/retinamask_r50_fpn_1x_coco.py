# RetinaMask R-50-FPN 1x on COCO with the official solver
# (chengyangfu/retinamask configs/retina/retinanet_mask_R-50-FPN_1x.yaml,
# "Assume 4 gpus"): total batch 8, SGD 0.005, momentum 0.9, weight decay
# 1e-4, bias LR x2 and no weight decay on biases, linear warm-up from 1/3
# over 500 iterations, 180k iterations, LR / 10 at 120k and 160k. Counted in
# iterations as maskrcnn-benchmark counts them; the run's placement (4 GPUs x
# 2, 1 GPU x 2 x 4 accumulation, ...) keeps these numbers.
_base_ = [
    '../_base_/models/retinamask_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/plugins_runtime.py',
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.))
max_iters = 180000
# Resumed without re-loading the batches already trained on.
train_cfg = dict(_delete_=True, type='ResumableIterBasedTrainLoop',
                 max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[120000, 160000], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=10000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
paper_recipe = dict(
    total_batch=8, lr=0.005, warmup_iters=500, warmup_factor=1 / 3,
    warmup_method='linear', max_iters=180000, milestones=[120000, 160000],
    source='RM configs/retina/retinanet_mask_R-50-FPN_1x.yaml @5bcf2e7 '
           '(IMS_PER_BATCH 8, BASE_LR 0.005, STEPS 120000/160000, MAX_ITER '
           '180000) + its defaults.py (WARMUP linear 1/3, 500 iterations)')
