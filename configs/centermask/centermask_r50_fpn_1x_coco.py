# CenterMask R-50-FPN 1x on COCO: the ablation setting of Tables 1 and 2,
# with CM1's solver (youngwanLEE/CenterMask configs/centermask/
# centermask_R_50_FPN_1x.yaml): total batch 16, SGD 0.01, constant warm-up at
# 1/3 for 500 iterations (WARMUP_METHOD "constant"), 90k iterations, LR / 10
# at 60k and 80k, short side 800 / max 1333. Counted in iterations, as
# maskrcnn-benchmark counts them; the run's placement (8 GPUs x 2, 1 GPU x 2
# x 8 accumulation, ...) keeps these numbers. Paper: 34.7 mask / 38.8 box AP.
_base_ = [
    '../_base_/models/centermask_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/plugins_runtime.py',
]
# FCOS decoded as CM1 (maskrcnn_benchmark/modeling/rpn/fcos/inference.py
# @72147e8): class score > INFERENCE_TH 0.03 (centermask_R_50_FPN_1x.yaml;
# the same threshold picks the mask branch's training detections), score
# cls x centerness without the square root, boxes clipped right after
# decoding (clip_to_image), so NMS, the mask RoIs and Eq. 2 see clipped
# boxes. PRE_NMS_TOP_N 1000, NMS_TH 0.6, POST_NMS_TOP_N_TRAIN 100 and
# TEST.DETECTIONS_PER_IMG 50 are the base's.
model = dict(
    # CM1's FCOS decoding (fcos/inference.py): score cls x ctr, boxes
    # clipped at decode; CM1's IOULoss (layers/iou_loss.py): 1e-7 on the
    # GIoU's enclosing area.
    bbox_head=dict(score_mode='product', clip_boxes='decode',
                   loss_bbox=dict(enclose_eps=1e-7)),
    # CM1's initialisation (roi_mask_predictors.py, make_layers.py): every
    # mask conv, the deconv and the predictor Kaiming normal fan_out, bias 0
    # (the SAM conv keeps CM2's MSRA: CM1 leaves it at PyTorch's default);
    # the MaskIoU FCs Caffe2 Xavier (kaiming_uniform a=1), as mmdet's
    # MaskIoUHead. CM2's N(0, 0.001) predictor and Kaiming fan_out FCs are
    # set back in the VoVNet configs.
    mask_head=dict(init_cfg=dict(
        type='Kaiming', layer=['Conv2d', 'ConvTranspose2d'], mode='fan_out',
        nonlinearity='relu', distribution='normal', bias=0)),
    maskiou_head=dict(init_cfg=[
        dict(type='Kaiming', override=dict(name='convs')),
        dict(type='Caffe2Xavier', override=dict(name='fcs')),
        dict(type='Normal', std=0.01, override=dict(name='fc_mask_iou'))]),
    # CM1 INFERENCE_TH 0.03, in training (the mask branch's detections) and
    # at test (centermask_R_50_FPN_1x.yaml).
    train_cfg=dict(mask=dict(score_thr=0.03)),
    test_cfg=dict(score_thr=0.03))
# CM1's optimizer (maskrcnn-benchmark solver/build.py make_optimizer,
# BIAS_LR_FACTOR 2, WEIGHT_DECAY_BIAS 0, WEIGHT_DECAY 1e-4 from the yaml):
# every parameter named "bias" -- GN's included -- at LR x2 without decay,
# everything else (GN weights too) decays; no gradient clipping. mmengine's
# bias_lr_mult skips norm layers, so the FCOS towers' GN biases get it by key.
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(
        bias_lr_mult=2., bias_decay_mult=0.,
        custom_keys={'.gn.bias': dict(lr_mult=2., decay_mult=0.)}))
max_iters = 90000
# Resumed without re-loading the batches already trained on.
train_cfg = dict(_delete_=True, type='ResumableIterBasedTrainLoop',
                 max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='ConstantLR', factor=1 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[60000, 80000], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
paper_recipe = dict(
    total_batch=16, lr=0.01, warmup_iters=500, warmup_factor=1 / 3,
    warmup_method='constant', max_iters=90000, milestones=[60000, 80000],
    source='CM1 configs/centermask/centermask_R_50_FPN_1x.yaml @72147e8 '
           '(IMS_PER_BATCH 16, BASE_LR 0.01, WARMUP_METHOD constant, '
           'maskrcnn-benchmark WARMUP_FACTOR 1/3, WARMUP_ITERS 500)')
