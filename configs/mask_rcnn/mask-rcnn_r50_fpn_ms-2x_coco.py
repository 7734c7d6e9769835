# Mask R-CNN R-50-FPN multi-scale 2x, CenterMask Table 5's Mask R-CNN row
# (CM1 README: "all models are trained using multi-scale training
# augmentation"; MRCN-R-50-FPN-ms-2x, val 35.9 mask / 39.7 box; CM1 ships no
# config for it). Short side drawn uniformly from 640-800 as CM1's
# MIN_SIZE_RANGE_TRAIN (640, 800) and mmdet's own ms configs, max 1333;
# mmdet's 2x solver (schedule_2x.py: 24 epochs, LR / 10 at 16 and 22).
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(1333, 640), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[16, 22], gamma=0.1)
]
paper_recipe = dict(
    max_epochs=24, milestones=[16, 22],
    source='mmdet 3.3.0 schedule_2x.py (16 images, SGD 0.02, 24 epochs, '
           'steps 16/22, linear warm-up 0.001 over 500) with multi-scale '
           '640-800 (CM1 README, centermask_R_50_FPN_ms_2x.yaml '
           'MIN_SIZE_RANGE_TRAIN)')
