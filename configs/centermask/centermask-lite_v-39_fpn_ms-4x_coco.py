# CenterMask-Lite V-39 (official centermask2 Lite settings): FPN, FCOS
# towers, mask head and MaskIoU head at 128 channels with 2 convs each, short side
# 580-600 / max 1000 for training and 600 for testing, 4x (48 epochs; CM2's
# 360k iterations). Paper (test-dev): 36.3 mask / 40.7 box at 28 ms.
_base_ = './centermask_v2-39_fpn_1x_coco.py'
width = 128
model = dict(
    neck=dict(out_channels=width),
    bbox_head=dict(in_channels=width, feat_channels=width, stacked_convs=2),
    mask_roi_extractor=dict(out_channels=width),
    mask_head=dict(num_convs=2, in_channels=width, conv_out_channels=width),
    # Official Lite MaskIoU head: 2 convs at 128 channels (the last stride 2).
    maskiou_head=dict(num_convs=2, in_channels=width,
                      conv_out_channels=width))
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
max_epochs = 48
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    # CM2 (detectron2): linear warm-up from 1/1000 over 1000 iterations.
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[40, 45], gamma=0.1)
]
