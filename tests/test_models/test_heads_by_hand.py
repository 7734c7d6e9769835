"""One hand-computed forward per head that has an official parity test
(``tests/test_converters/test_official_checkpoints.py``), independent of
the transcriptions in ``tests/reference/official_heads.py``: one input
channel, a 2x2 map x = [[1, 2], [3, 4]], weights set to taps whose
arithmetic is written out in each docstring."""
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

from mmdet_plugins.converters import convert_retinamask

X = torch.tensor([[[[1., 2.], [3., 4.]]]])


def _taps(conv, centre, bias=0.):
    """A 3x3 conv that multiplies each input channel by ``centre[out][in]``
    at its own pixel."""
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, :, 1, 1] = torch.tensor(centre, dtype=torch.float)
        conv.bias.fill_(bias) if conv.bias is not None else None


def _build(cfg):
    register_all_modules()
    import mmdet_plugins  # noqa: F401 -- registers the plugin heads
    return MODELS.build(cfg)


def test_sag_mask_head_by_hand():
    """Conv (2 channels): ch0 = x, ch1 = relu(0) = 0. SAM: mean over
    channels x/2, max x; conv centre taps 2 (mean), -1 (max): 2*x/2 - x = 0,
    gate sigmoid(0) = 1/2 -> ch0 = x/2. Deconv 2x2 stride 2, ones from ch0
    to ch0: each pixel a 2x2 block of x/2, ReLU. 1x1 logits 4v - 1: 0.5 -> 1,
    1 -> 3, 1.5 -> 5, 2 -> 7."""
    head = _build(dict(type='SAGMaskHead', num_convs=1, in_channels=1,
                       conv_out_channels=2, num_classes=1)).eval()
    _taps(head.convs[0].conv, [[1.], [0.]])
    with torch.no_grad():
        head.sam.conv.weight.zero_()
        head.sam.conv.weight[0, :, 1, 1] = torch.tensor([2., -1.])
        head.upsample.weight.zero_()      # (in, out, 2, 2)
        head.upsample.weight[0, 0] = 1.
        head.upsample.bias.zero_()
        head.conv_logits.weight.zero_()
        head.conv_logits.weight[0, 0] = 4.
        head.conv_logits.bias.fill_(-1.)
        out = head(X)
    want = torch.tensor([[1., 1., 3., 3.], [1., 1., 3., 3.],
                         [5., 5., 7., 7.], [5., 5., 7., 7.]])
    torch.testing.assert_close(out, want.view(1, 1, 4, 4))


def test_maskiou_head_by_hand():
    """Mask logits 4x4, -100 except a 0 at (1, 1): sigmoid, 2x2 max pool
    -> [[1/2, 0], [0, 0]] (sigmoid(-100) ~ 4e-44). Concat [feature, mask];
    3x3 stride-2 conv on the 2x2 map has one output, whose window holds all
    four pixels: taps 1 (feature), 10 (mask): 1+2+3+4 + 10*0.5 = 15, ReLU.
    FC 2*15 + 1 = 31, ReLU; FC 0.1*31 = 3.1, ReLU; IoU layer weights
    [1, -1] -> [3.1, -3.1] (no ReLU on the last). Mask first in the
    concat would give 10*10 + 0.5 = 100.5 at the conv."""
    head = _build(dict(type='MaskIoUHead', num_convs=1, num_fcs=2,
                       roi_feat_size=2, in_channels=1, conv_out_channels=1,
                       fc_out_channels=1, num_classes=2)).eval()
    mask = torch.full((1, 4, 4), -100.)
    mask[0, 1, 1] = 0.
    with torch.no_grad():
        head.convs[0].weight.zero_()
        head.convs[0].weight[0, 0] = 1.
        head.convs[0].weight[0, 1] = 10.
        head.convs[0].bias.zero_()
        fc1, fc2 = head.fcs
        fc1.weight.fill_(2.), fc1.bias.fill_(1.)
        fc2.weight.fill_(0.1), fc2.bias.zero_()
        head.fc_mask_iou.weight.copy_(torch.tensor([[1.], [-1.]]))
        head.fc_mask_iou.bias.zero_()
        out = head(X, mask)
    torch.testing.assert_close(out, torch.tensor([[3.1, -3.1]]))


def test_fcos_head_by_hand():
    """No norm (GN is covered by the parity test), 1 tower conv each.
    cls tower: x; box tower: relu(5 - x) = [[4, 3], [2, 1]]. Logits:
    x - 2 = [[-1, 0], [1, 2]] (no ReLU). Centerness from the box tower:
    t - 3 = [[1, 0], [-1, -2]] (from the cls tower: [[-2, -1], [0, 1]]).
    Regression taps [1, -1, 2, 0] on t, scale 0.5, ReLU: [t/2, 0, t, 0];
    eval mode times the stride 8: [4t, 0, 8t, 0]."""
    head = _build(dict(
        type='CenterMaskFCOSHead', num_classes=1, in_channels=1,
        feat_channels=1, stacked_convs=1, strides=[8], norm_on_bbox=True,
        centerness_on_reg=True, conv_bias=True, norm_cfg=None))
    _taps(head.cls_convs[0].conv, [[1.]])
    _taps(head.reg_convs[0].conv, [[-1.]], bias=5.)
    _taps(head.conv_cls, [[1.]], bias=-2.)
    _taps(head.conv_centerness, [[1.]], bias=-3.)
    _taps(head.conv_reg, [[1.], [-1.], [2.], [0.]])
    with torch.no_grad():
        head.scales[0].scale.fill_(0.5)
        head.train()
        cls, reg, ctr = head.forward_single(X, head.scales[0], 8)
        head.eval()
        _, reg_eval, _ = head.forward_single(X, head.scales[0], 8)
    t = torch.tensor([[4., 3.], [2., 1.]])
    zero = torch.zeros(2, 2)
    torch.testing.assert_close(cls, torch.tensor([[[[-1., 0.], [1., 2.]]]]))
    torch.testing.assert_close(ctr, torch.tensor([[[[1., 0.], [-1., -2.]]]]))
    torch.testing.assert_close(reg, torch.stack([t / 2, zero, t, zero])[None])
    torch.testing.assert_close(reg_eval,
                               torch.stack([4 * t, zero, 8 * t, zero])[None])


def test_retinamask_box_head_by_hand():
    """One anchor, conv + ReLU towers: cls tower x, box tower
    relu(5 - x) = t = [[4, 3], [2, 1]]. Class logit: 3x3 ones over the
    cls tower, bias -15: every window holds all four pixels, 10 - 15 = -5.
    Box deltas: centre taps 1, 2, 3, 4 on t -> t, 2t, 3t, 4t."""
    head = _build(dict(
        type='RetinaMaskHead', num_classes=1, in_channels=1, feat_channels=1,
        stacked_convs=1, anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
            ratios=[1.0], strides=[8]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder')))
    _taps(head.cls_convs[0].conv, [[1.]])
    _taps(head.reg_convs[0].conv, [[-1.]], bias=5.)
    _taps(head.retina_reg, [[1.], [2.], [3.], [4.]])
    with torch.no_grad():
        head.retina_cls.weight.fill_(1.)
        head.retina_cls.bias.fill_(-15.)
        cls, reg = head.forward_single(X)
    t = torch.tensor([[4., 3.], [2., 1.]])
    torch.testing.assert_close(cls, torch.full((1, 1, 2, 2), -5.))
    torch.testing.assert_close(reg,
                               torch.stack([t, 2 * t, 3 * t, 4 * t])[None])


def test_retinamask_mask_head_by_hand():
    """Official logits layer over [background, class 1, class 2]: weights
    [9, 1, -1], biases [9, 0, 1]; converted, class 1 and 2 remain. Conv
    centre tap 1: x; deconv ones: 2x2 blocks of x, ReLU; logits v and
    1 - v (the background's 9v + 9 dropped)."""
    official = {
        'mask.predictor.mask_fcn_logits.weight':
        torch.tensor([9., 1., -1.]).view(3, 1, 1, 1),
        'mask.predictor.mask_fcn_logits.bias': torch.tensor([9., 0., 1.]),
    }
    converted = convert_retinamask(official)
    head = _build(dict(type='FCNMaskHead', num_convs=1, in_channels=1,
                       conv_out_channels=1, num_classes=2)).eval()
    head.load_state_dict({k[len('mask_head.'):]: v
                          for k, v in converted.items()}, strict=False)
    _taps(head.convs[0].conv, [[1.]])
    with torch.no_grad():
        head.upsample.weight.fill_(1.)
        head.upsample.bias.zero_()
        out = head(X)
    v = X.repeat_interleave(2, 2).repeat_interleave(2, 3)[0, 0]
    torch.testing.assert_close(out, torch.stack([v, 1 - v])[None])
