# CenterMask-Lite V-19 (paper, test-dev: 32.4 mask / 35.9 box at 23 ms;
# CM2 val: 32.8 / 35.9).
_base_ = './centermask-lite_v-39_fpn_ms-4x_coco.py'
vovnet_weights = 'checkpoints/vovnet19_ese_detectron2.pth'
model = dict(backbone=dict(arch='V-19', init_cfg=dict(
    type='Pretrained', checkpoint=vovnet_weights)))
paper_recipe = dict(
    source='CM2 configs/centermask/centermask_lite_V_19_eSE_FPN_ms_4x.yaml '
           '@6adabd6 (batch 16, LR 0.01, 360k, 300k/340k) + detectron2 '
           'v0.3 defaults (WARMUP linear 1/1000, 1000)')
