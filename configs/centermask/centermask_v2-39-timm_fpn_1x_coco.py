# CenterMask V2-39 1x from timm's ImageNet eSE-VoVNet-39b (timm://
# ese_vovnet39b: timm's own loader and cache). timm's model has eSE in the
# last block of each stage only (the official one in every block), and takes
# RGB input with ImageNet mean/std. BN stays frozen as CM2's FrozenBN: timm's
# weights are an ordinary ImageNet classifier with trained running
# statistics, and BN statistics of 2 images per GPU would be worse than them.
_base_ = './centermask_v2-39_fpn_1x_coco.py'
vovnet_weights = 'timm://ese_vovnet39b'
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        attention_blocks='last',
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=vovnet_weights)))
paper_recipe = dict(
    source='CM2 Base-CenterMask-VoVNet.yaml solver @6adabd6 (batch 16, LR '
           '0.01, 90k, 60k/80k) + detectron2 v0.3 defaults (WARMUP linear '
           '1/1000, 1000)')
