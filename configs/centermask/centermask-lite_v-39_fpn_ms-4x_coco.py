# CenterMask-Lite V-39 (official centermask2 Lite settings): FPN, FCOS
# towers, mask head and MaskIoU head at 128 channels with 2 convs each, short
# side 580-600 / max 1000 for training and 600 for testing, 4x as CM2 counts
# it (centermask_lite_V_39_eSE_FPN_ms_4x.yaml): 360k iterations at batch 16,
# LR / 10 at 300k and 340k, linear warm-up from 1/1000 over 1000 iterations.
# Paper (test-dev): 36.3 mask / 40.7 box at 28 ms.
_base_ = './centermask_v2-39_fpn_1x_coco.py'
width = 128
model = dict(
    neck=dict(out_channels=width),
    bbox_head=dict(in_channels=width, feat_channels=width, stacked_convs=2),
    mask_roi_extractor=dict(out_channels=width),
    mask_head=dict(num_convs=2, in_channels=width, conv_out_channels=width),
    # Official Lite MaskIoU head: 2 convs at 128 channels (the last stride 2).
    maskiou_head=dict(num_convs=2, in_channels=width,
                      conv_out_channels=width),
    # CM2 samples at most 128 mask positives per image (ROI_HEADS
    # BATCH_SIZE_PER_IMAGE 512 x POSITIVE_FRACTION 0.25).
    train_cfg=dict(mask=dict(max_pos_per_img=128)))
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1000, 580), (1000, 600)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1000, 600), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = 360000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=1000),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[300000, 340000], gamma=0.1)
]
paper_recipe = dict(
    total_batch=16, lr=0.01, warmup_iters=1000, warmup_factor=0.001,
    warmup_method='linear', max_iters=360000, milestones=[300000, 340000],
    source='CM2 configs/centermask/centermask_lite_V_39_eSE_FPN_ms_4x.yaml '
           '@6adabd6 (IMS_PER_BATCH 16, BASE_LR 0.01, STEPS 300000/340000, '
           'MAX_ITER 360000) + detectron2 v0.3 defaults (WARMUP linear '
           '1/1000, 1000 iterations)')
