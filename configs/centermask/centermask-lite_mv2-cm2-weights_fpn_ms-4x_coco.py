# CenterMask-Lite MobileNetV2 from centermask2's own ImageNet weights, fed
# as CM2 feeds them: BGR, detectron2's mean, std 1 (detectron2 v0.3
# defaults; centermask_lite_Mv2_FPN_ms_4x.yaml sets no PIXEL_MEAN/STD).
# Not the default (centermask-lite_mv2_fpn_ms-4x_coco.py uses mmdet's
# weights, which download themselves): this file must be fetched by hand
# from the centermask2 README ("ImageNet Pretrained Models",
# dl.dropbox.com/s/yduxbc13s3ip6qn/mobilenet_v2_detectron2.pth) and
# converted once (docs/weights.md):
#   python -m mmdet_plugins.converters.mobilenet_v2 \
#       downloads/mobilenet_v2_detectron2.pth \
#       checkpoints/mobilenet_v2_detectron2_mmdet.pth
# Everything else, including FrozenBN and no frozen stage (FREEZE_AT 0), is
# the default config's.
_base_ = './centermask-lite_mv2_fpn_ms-4x_coco.py'
model = dict(
    data_preprocessor=dict(
        mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False),
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/mobilenet_v2_detectron2_mmdet'
                      '.pth')))
