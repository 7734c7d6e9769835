# CenterMask R-50-FPN multi-scale 2x (CM1 configs/centermask/
# centermask_R_50_FPN_ms_2x.yaml; CM1 README, val: 36.4 mask / 41.2 box):
# Table 5's setting. Short side drawn uniformly from the integers 640-800
# (maskrcnn-benchmark MIN_SIZE_RANGE_TRAIN (640, 800): random.choice over
# range(640, 801), which mmcv's RandomResize over a scale range reproduces),
# max 1333; 180k iterations at batch 16, LR / 10 at 120k and 160k; solver
# otherwise as the 1x (constant warm-up 1/3 over 500, CM1's optimizer).
_base_ = './centermask_r50_fpn_1x_coco.py'
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(1333, 640), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
max_iters = 180000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='ConstantLR', factor=1 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[120000, 160000], gamma=0.1)
]
paper_recipe = dict(
    total_batch=16, lr=0.01, warmup_iters=500, warmup_factor=1 / 3,
    warmup_method='constant', max_iters=180000,
    milestones=[120000, 160000],
    source='CM1 configs/centermask/centermask_R_50_FPN_ms_2x.yaml @72147e8 '
           '(IMS_PER_BATCH 16, BASE_LR 0.01, STEPS 120000/160000, MAX_ITER '
           '180000, WARMUP_METHOD constant, MIN_SIZE_RANGE_TRAIN (640, 800))')
