# Tiny RetinaNet baseline: tiny RetinaMask without the mask branch.
_base_ = './retinamask_r18-tiny_fpn_builtin.py'
model = dict(mask_roi_extractor=None, mask_head=None)
