# RetinaMask R-50-FPN 1x on COCO (paper's R-50 1x setting: 90k iterations at
# batch 16 = 12 epochs, SGD 0.01).
_base_ = [
    '../_base_/models/retinamask_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/plugins_runtime.py',
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
