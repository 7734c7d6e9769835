"""FCOS's loss normalisers on one process, by hand (issue 36).

CM1 (``rpn/fcos/loss.py:187,209-212,225-228``) divides the focal loss by
(positives + images) and averages the centerness BCE over the positives;
our ``CenterMaskFCOSHead`` (mmdet's ``FCOSHead``, = CM2
``fcos_outputs.py:67-100``) divides both by the positives. This pins ours
and writes out the size of the difference (a deliberate row of
``configs/official/centermask_r50_fpn_1x_coco.yaml``).

One 32 x 32 image, one level (stride 8, 4 x 4 locations at 4, 12, 20, 28),
one class, one GT box [0, 0, 32, 32], centre sampling radius 1.5: the
centre region is 16 +- 12 = [4, 28], strictly inside, so the positives are
the 2 x 2 locations at 12 and 20. Every logit 0 (p = 1/2):
focal per positive 0.25 x (1/2)^2 x ln 2, per negative 0.75 x (1/2)^2 x
ln 2; sum = (4 x 0.0625 + 12 x 0.1875) ln 2 = 2.5 ln 2. Each positive's
centerness target is sqrt(12/20 x 12/20) = 0.6; the BCE of logit 0 is ln 2
whatever the target.
"""
import math

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.structures import InstanceData

LN2 = math.log(2.)
FOCAL_SUM, NUM_POS, NUM_IMAGES = 2.5 * LN2, 4, 1


def _losses():
    register_all_modules()
    import mmdet_plugins  # noqa: F401 -- registers CenterMaskFCOSHead
    head = MODELS.build(dict(
        type='CenterMaskFCOSHead', num_classes=1, in_channels=1,
        feat_channels=1, stacked_convs=1, strides=[8],
        regress_ranges=((-1, 1e8), ), norm_on_bbox=True,
        centerness_on_reg=True, center_sampling=True,
        center_sample_radius=1.5, norm_cfg=None,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                      alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='FCOSIoULoss', loss_type='giou', smooth=1.0,
                       enclose_eps=0.0, loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True,
                             loss_weight=1.0)))
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.]]),
                      labels=torch.tensor([0]))
    return head.loss_by_feat(
        [torch.zeros(1, 1, 4, 4)], [torch.ones(1, 4, 4, 4)],
        [torch.zeros(1, 1, 4, 4)], [gt],
        [dict(img_shape=(32, 32), pad_shape=(32, 32))])


def test_focal_loss_is_divided_by_the_positives_not_plus_the_images():
    losses = _losses()
    ours = FOCAL_SUM / NUM_POS  # 0.625 ln 2
    cm1 = FOCAL_SUM / (NUM_POS + NUM_IMAGES)  # 0.5 ln 2
    torch.testing.assert_close(losses['loss_cls'], torch.tensor(ours))
    # CM1's is num_pos / (num_pos + N) of ours: 4 / 5 here, about 0.98 at
    # the ~100 positives of two COCO images (docs/fidelity.md).
    assert math.isclose(cm1 / ours, NUM_POS / (NUM_POS + NUM_IMAGES))


def test_centerness_loss_is_the_mean_over_the_positives():
    """On one process CM1's per-GPU mean and ours agree: ln 2."""
    torch.testing.assert_close(_losses()['loss_centerness'],
                               torch.tensor(LN2))
