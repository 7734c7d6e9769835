# CenterMask-Lite V-19 (paper, test-dev: 32.4 mask / 35.9 box at 23 ms;
# CM2 val: 32.8 / 35.9).
_base_ = './centermask-lite_v-39_fpn_ms-4x_coco.py'
vovnet_weights = 'checkpoints/vovnet19_ese_detectron2.pth'
model = dict(backbone=dict(arch='V-19', init_cfg=dict(
    type='Pretrained', checkpoint=vovnet_weights)))
