# The RetinaNet baseline of RetinaMask: the same detector, head, box coder,
# loss normalisation, self-adjusting smooth L1 and best matching, without the
# mask branch -- so that "mask supervision raises box AP" compares models
# that differ only in the mask branch.
_base_ = './retinamask_r50_fpn_1x_coco.py'
model = dict(mask_roi_extractor=None, mask_head=None)
# Box-only: evaluate bbox (CocoMetric fails on a missing segm result).
val_evaluator = dict(metric=['bbox'])
test_evaluator = dict(metric=['bbox'])
# The solver is RetinaMask's (retinanet_mask_R-50-FPN_1x.yaml), so that the
# two arms differ in the mask branch only.
paper_recipe = dict(
    source='RM configs/retina/retinanet_mask_R-50-FPN_1x.yaml @5bcf2e7 '
           'solver without the mask branch (batch 8, LR 0.005, 180k, '
           '120k/160k, linear warm-up 1/3 over 500)')
