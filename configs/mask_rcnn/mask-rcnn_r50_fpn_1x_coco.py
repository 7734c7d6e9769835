# MMDetection's own Mask R-CNN R-50-FPN 1x (box 38.2 / mask 34.7 on COCO val),
# with the project's runtime (plugins, resumable checkpoints, NaN check).
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/plugins_runtime.py',
]
# mmdet's recipe, by epochs: 8 GPUs x 2 images = 16, SGD 0.02, linear
# warm-up from 0.001 over 500 iterations, 12 epochs, LR / 10 at 8 and 11.
paper_recipe = dict(
    total_batch=16, lr=0.02, warmup_iters=500, warmup_factor=0.001,
    warmup_method='linear', max_epochs=12, milestones=[8, 11],
    source='mmdet 3.3.0 configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py '
           '(schedule_1x.py: SGD 0.02, auto_scale_lr base_batch_size 16; '
           'coco_instance.py: 2 images per GPU)')
