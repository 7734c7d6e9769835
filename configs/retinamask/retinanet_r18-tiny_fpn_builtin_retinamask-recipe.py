# Tiny RetinaNet baseline: tiny RetinaMask without the mask branch.
_base_ = './retinamask_r18-tiny_fpn_builtin.py'
model = dict(mask_roi_extractor=None, mask_head=None)
# Box-only: evaluate bbox (CocoMetric fails on a missing segm result).
val_evaluator = dict(metric=['bbox'])
test_evaluator = dict(metric=['bbox'])
