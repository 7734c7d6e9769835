# CenterMask V2-39, the published full model: multi-scale training (short
# side 640-800), 3x as CM2 counts it: 270k iterations at batch 16, LR / 10 at
# 210k and 250k, linear warm-up from 1/1000 over 1000 iterations
# (centermask_V_39_eSE_FPN_ms_3x.yaml).
# CM2 reports 39.7 mask / 44.2 box AP on COCO val.
_base_ = './centermask_v2-39_fpn_1x_coco.py'
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                 (1333, 768), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# CM2's CenterROIHeads trains the mask branch on at most 128 positives per
# image (detectron2 v0.3 ROI_HEADS.BATCH_SIZE_PER_IMAGE 512 x
# POSITIVE_FRACTION 0.25 through subsample_labels).
model = dict(train_cfg=dict(mask=dict(max_pos_per_img=128)))
max_iters = 270000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=1000),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[210000, 250000], gamma=0.1)
]
paper_recipe = dict(
    total_batch=16, lr=0.01, warmup_iters=1000, warmup_factor=0.001,
    warmup_method='linear', max_iters=270000, milestones=[210000, 250000],
    source='CM2 configs/centermask/centermask_V_39_eSE_FPN_ms_3x.yaml '
           '@6adabd6 (IMS_PER_BATCH 16, BASE_LR 0.01, STEPS 210000/250000, '
           'MAX_ITER 270000) + detectron2 v0.3 defaults (WARMUP linear '
           '1/1000, 1000 iterations)')
