# RetinaMask R-50-FPN multi-scale 2x (RM configs/retina/
# retinanet_mask_R-50-FPN_2x_adjust_std011_ms.yaml): CenterMask Table 5's
# RetinaMask row. Short side one of 640, 800, 1000 (maskrcnn-benchmark
# MultiScaleResize: random.choice among MIN_SIZE_TRAIN), max 1333; 360k
# iterations at batch 8, LR / 10 at 240k and 320k; self-adjusting smooth L1
# (beta 0.11) as the base. Solver otherwise as the 1x.
_base_ = './retinamask_r50_fpn_1x_coco.py'
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 800), (1333, 1000)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
max_iters = 360000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[240000, 320000], gamma=0.1)
]
paper_recipe = dict(
    total_batch=8, lr=0.005, warmup_iters=500, warmup_factor=1 / 3,
    warmup_method='linear', max_iters=360000, milestones=[240000, 320000],
    source='RM configs/retina/retinanet_mask_R-50-FPN_2x_adjust_std011_ms'
           '.yaml @5bcf2e7 (IMS_PER_BATCH 8, BASE_LR 0.005, STEPS '
           '240000/320000, MAX_ITER 360000, MIN_SIZE_TRAIN (640, 800, '
           '1000)) + its defaults.py (WARMUP linear 1/3, 500 iterations)')
