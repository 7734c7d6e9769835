"""FCOS's centerness target, by hand (issue 36): CM1
``rpn/fcos/loss.py:166-171`` and CM2 ``fcos_outputs.py`` both train the
centerness branch (and weight the IoU loss) with
``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))``. The expected
values are written out, not computed with the formula, so that a missing
square root or a swapped pair of sides fails here and not only through the
IoU-loss weights."""
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

# (l, t, r, b) -> target, worked out by hand.
CASES = [
    ((2., 2., 2., 2.), 1.0),  # at the centre: 1 * 1
    ((1., 5., 4., 5.), 0.5),  # sqrt(1/4 * 1)
    ((1., 2., 3., 4.), 0.40824829),  # sqrt(1/3 * 1/2) = sqrt(1/6)
    ((3., 1., 1., 9.), 0.19245009),  # sqrt(1/3 * 1/9) = sqrt(1/27)
    ((8., 3., 2., 12.), 0.25),  # sqrt(2/8 * 3/12) = sqrt(1/16)
]


def _head():
    register_all_modules()
    import mmdet_plugins  # noqa: F401 -- registers CenterMaskFCOSHead
    return MODELS.build(dict(
        type='CenterMaskFCOSHead', num_classes=1, in_channels=1,
        feat_channels=1, stacked_convs=1, strides=[8], norm_on_bbox=True,
        centerness_on_reg=True, center_sampling=True, norm_cfg=None))


def test_centerness_target_is_the_square_root_of_the_side_ratios():
    targets = torch.tensor([ltrb for ltrb, _ in CASES])
    expected = torch.tensor([value for _, value in CASES])
    torch.testing.assert_close(_head().centerness_target(targets), expected)


def test_centerness_target_is_symmetric_in_each_pair_and_scale_free():
    """Swapping l / r or t / b, or scaling all four sides (stride units
    vs pixels: CM2 normalises the regression, CM1 does not), keeps it."""
    head = _head()
    ltrb = torch.tensor([[1., 2., 3., 4.]])
    for other in ([[3., 2., 1., 4.]], [[1., 4., 3., 2.]], [[8., 16., 24.,
                                                             32.]]):
        torch.testing.assert_close(head.centerness_target(
            torch.tensor(other)), head.centerness_target(ltrb))
