# The RetinaNet baseline of RetinaMask: the same detector, head, box coder,
# loss normalisation, self-adjusting smooth L1 and best matching, without the
# mask branch -- so that "mask supervision raises box AP" compares models
# that differ only in the mask branch.
_base_ = './retinamask_r50_fpn_1x_coco.py'
model = dict(mask_roi_extractor=None, mask_head=None)
# Box-only: evaluate bbox (CocoMetric fails on a missing segm result).
val_evaluator = dict(metric=['bbox'])
test_evaluator = dict(metric=['bbox'])
