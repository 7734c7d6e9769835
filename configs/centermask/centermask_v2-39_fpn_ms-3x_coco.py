# CenterMask V2-39, the published full model: multi-scale training (short
# side 640-800), 3x (36 epochs; CM2's 270k iterations at batch 16, LR / 10
# at 210k and 250k = epochs 28 and 33).
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
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    # CM2 (detectron2): linear warm-up from 1/1000 over 1000 iterations.
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[28, 33], gamma=0.1)
]
