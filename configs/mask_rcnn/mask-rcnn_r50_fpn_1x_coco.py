# MMDetection's own Mask R-CNN R-50-FPN 1x (box 38.2 / mask 34.7 on COCO val),
# with the project's runtime (plugins, resumable checkpoints, NaN check).
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/plugins_runtime.py',
]
