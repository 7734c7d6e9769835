"""``FCOSIoULoss``: the official CenterMask FCOS IoU / GIoU loss."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmdet_plugins  # noqa: F401
from experiments.store import project_path
from mmdet_plugins.models.losses import FCOSIoULoss

TINY = 'configs/centermask/centermask_r18-tiny_fpn_builtin.py'


def _boxes(points, ltrb):
    """x1y1x2y2 boxes decoded from points, as mmdet's FCOSHead decodes."""
    return torch.stack([points[:, 0] - ltrb[:, 0], points[:, 1] - ltrb[:, 1],
                        points[:, 0] + ltrb[:, 2], points[:, 1] + ltrb[:, 3]],
                       dim=1)


def cm2_iou_loss(pred, target, weight, loc_loss_type):
    """Transcribed from centermask2 ``centermask/layers/iou_loss.py``
    ``IOULoss.forward`` @6adabd6 (distances l, t, r, b; returns the sum)."""
    pred_left, pred_top, pred_right, pred_bottom = pred.unbind(1)
    target_left, target_top, target_right, target_bottom = target.unbind(1)
    target_aera = (target_left + target_right) * (target_top + target_bottom)
    pred_aera = (pred_left + pred_right) * (pred_top + pred_bottom)
    w_intersect = torch.min(pred_left, target_left) + \
        torch.min(pred_right, target_right)
    h_intersect = torch.min(pred_bottom, target_bottom) + \
        torch.min(pred_top, target_top)
    g_w_intersect = torch.max(pred_left, target_left) + \
        torch.max(pred_right, target_right)
    g_h_intersect = torch.max(pred_bottom, target_bottom) + \
        torch.max(pred_top, target_top)
    ac_uion = g_w_intersect * g_h_intersect
    area_intersect = w_intersect * h_intersect
    area_union = target_aera + pred_aera - area_intersect
    ious = (area_intersect + 1.0) / (area_union + 1.0)
    gious = ious - (ac_uion - area_union) / ac_uion
    losses = {'iou': -torch.log(ious), 'linear_iou': 1 - ious,
              'giou': 1 - gious}[loc_loss_type]
    return (losses * weight).sum()


def cm1_iou_loss(pred, target, weight, loc_loss_type):
    """Transcribed from CenterMask ``maskrcnn_benchmark/layers/iou_loss.py``
    ``IOULoss.forward`` @72147e8: as CM2's but ``ac_uion + 1e-7`` and the
    weighted mean (``/ weight.sum()``)."""
    pred_left, pred_top, pred_right, pred_bottom = pred.unbind(1)
    target_left, target_top, target_right, target_bottom = target.unbind(1)
    target_area = (target_left + target_right) * (target_top + target_bottom)
    pred_area = (pred_left + pred_right) * (pred_top + pred_bottom)
    w_intersect = torch.min(pred_left, target_left) + \
        torch.min(pred_right, target_right)
    g_w_intersect = torch.max(pred_left, target_left) + \
        torch.max(pred_right, target_right)
    h_intersect = torch.min(pred_bottom, target_bottom) + \
        torch.min(pred_top, target_top)
    g_h_intersect = torch.max(pred_bottom, target_bottom) + \
        torch.max(pred_top, target_top)
    ac_uion = g_w_intersect * g_h_intersect + 1e-7
    area_intersect = w_intersect * h_intersect
    area_union = target_area + pred_area - area_intersect
    ious = (area_intersect + 1.0) / (area_union + 1.0)
    gious = ious - (ac_uion - area_union) / ac_uion
    losses = {'iou': -torch.log(ious), 'linear_iou': 1 - ious,
              'giou': 1 - gious}[loc_loss_type]
    return (losses * weight).sum() / weight.sum()


def cm2_ctrness_targets(reg_targets):
    """centermask2 ``fcos_outputs.py`` ``compute_ctrness_targets``."""
    left_right = reg_targets[:, [0, 2]]
    top_bottom = reg_targets[:, [1, 3]]
    ctrness = (left_right.min(dim=-1)[0] / left_right.max(dim=-1)[0]) * \
        (top_bottom.min(dim=-1)[0] / top_bottom.max(dim=-1)[0])
    return torch.sqrt(ctrness)


def test_two_boxes_by_hand():
    # Box 1 at point (100, 50): pred l,t,r,b = 1,1,1,1 (2 x 2, area 4),
    # target 1,1,2,2 (3 x 3, area 9); intersection (1+1) x (1+1) = 4,
    # union 4 + 9 - 4 = 9, IoU (4 + 1) / (9 + 1) = 0.5 (mmdet: 4/9);
    # enclosure 3 x 3 = 9 = union: GIoU 0.5, loss 0.5.
    # Box 2 at point (20, 30): pred 2,0,1,1 (3 x 1, area 3), target 1,1,1,1
    # (area 4); intersection (1+1) x (0+1) = 2, union 3 + 4 - 2 = 5,
    # IoU (2 + 1) / (5 + 1) = 0.5; enclosure (2+1) x (1+1) = 6,
    # GIoU 0.5 - (6 - 5) / 6 = 1/3, loss 2/3.
    points = torch.tensor([[100., 50.], [20., 30.]])
    pred = _boxes(points, torch.tensor([[1., 1., 1., 1.], [2., 0., 1., 1.]]))
    target = _boxes(points, torch.tensor([[1., 1., 2., 2.],
                                          [1., 1., 1., 1.]]))
    weight = torch.tensor([0.5, 1.0])
    per_box = FCOSIoULoss(reduction='none')(pred, target)
    assert torch.allclose(per_box, torch.tensor([0.5, 2 / 3]))
    # Weighted by centerness, divided by the centerness sum 1.5:
    # (0.5 x 0.5 + 1.0 x 2/3) / 1.5 = 0.61111.
    loss = FCOSIoULoss()(pred, target, weight, avg_factor=1.5)
    assert torch.allclose(loss, torch.tensor(0.611111))
    # IoU 0.5 for both boxes: -log(0.5) and 1 - 0.5.
    for loss_type, want in (('iou', 0.693147), ('linear_iou', 0.5)):
        loss = FCOSIoULoss(loss_type=loss_type)(pred, target, weight,
                                                avg_factor=1.5)
        assert torch.allclose(loss, torch.tensor(want)), loss_type
    # mmdet's GIoULoss (no smoothing) differs: box 1 would be 1 - 4/9.
    giou = MODELS.build(dict(type='GIoULoss', reduction='none'))
    assert giou(pred, target)[0] == pytest.approx(5 / 9, abs=1e-5)


@pytest.mark.parametrize('loss_type', ['giou', 'iou', 'linear_iou'])
def test_equals_the_official_functions(loss_type):
    torch.manual_seed(0)
    n = 50
    points = torch.rand(n, 2) * 800
    pred = torch.relu(torch.randn(n, 4) * 3 + 2)  # some distances are 0
    target = torch.rand(n, 4) * 10 + 0.5
    weight = cm2_ctrness_targets(target)
    boxes_p, boxes_t = _boxes(points, pred), _boxes(points, target)
    # CM2: sum / ctrness_norm.
    ours = FCOSIoULoss(loss_type=loss_type)(boxes_p, boxes_t, weight,
                                            avg_factor=weight.sum())
    want = cm2_iou_loss(pred, target, weight, loss_type) / weight.sum()
    # Points up to 800 px around stride-unit distances: float32 decoding
    # rounds the widths by ~1e-4.
    assert torch.allclose(ours, want, rtol=1e-4)
    # CM1: enclose + 1e-7, weighted mean.
    ours = FCOSIoULoss(loss_type=loss_type, enclose_eps=1e-7)(
        boxes_p, boxes_t, weight, avg_factor=weight.sum())
    assert torch.allclose(ours, cm1_iou_loss(pred, target, weight, loss_type),
                          rtol=1e-4)


def _head_and_inputs():
    register_all_modules()
    cfg = Config.fromfile(project_path(TINY)).model
    head_cfg = copy.deepcopy(cfg.bbox_head)
    assert head_cfg.loss_bbox.type == 'FCOSIoULoss'
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()
    feats = [torch.randn(2, 64, 128 // s, 128 // s) for s in head.strides]
    gts, metas = [], []
    for boxes in ([[4., 6., 30., 28.]], [[10., 10., 60., 50.],
                                         [2., 30., 20., 62.]]):
        gts.append(InstanceData(bboxes=torch.tensor(boxes),
                                labels=torch.zeros(len(boxes)).long()))
        metas.append(dict(img_shape=(128, 128), pad_shape=(128, 128)))
    return head.train(), feats, gts, metas


def test_configured_head_loss_equals_the_official_formula():
    """The tiny CenterMask's FCOS ``loss_bbox`` is CM2's ``IOULoss`` on the
    stride-normalised l, t, r, b, divided by the centerness-target sum."""
    head, feats, gts, metas = _head_and_inputs()
    cls_scores, bbox_preds, centernesses = head(feats)
    losses = head.loss_by_feat(cls_scores, bbox_preds, centernesses, gts,
                               metas)
    # The official path, from the same targets (mmdet's assignment, whose
    # regression targets are divided by the stride as CM2's).
    points = head.prior_generator.grid_priors(
        [s.shape[-2:] for s in cls_scores], dtype=torch.float32,
        device='cpu')
    labels, targets = head.get_targets(points, gts)
    labels, targets = torch.cat(labels), torch.cat(targets)
    preds = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, 4)
                       for p in bbox_preds])
    pos = (labels < head.num_classes).nonzero().flatten()
    assert len(pos) > 5
    ctr = cm2_ctrness_targets(targets[pos])
    want = cm2_iou_loss(preds[pos], targets[pos], ctr, 'giou') / ctr.sum()
    assert torch.allclose(losses['loss_bbox'], want, rtol=1e-5)
    # Distances in stride units: the smoothing is not negligible here.
    mmdet_loss = MODELS.build(dict(type='GIoULoss'))
    decoded = [head.bbox_coder.decode(torch.cat(
        [p.repeat(2, 1) for p in points])[pos], t[pos])
        for t in (preds, targets)]
    assert abs(float(mmdet_loss(*decoded, ctr, avg_factor=ctr.sum())) -
               float(want)) > 1e-3


def test_no_positive_weight_gives_a_connected_zero():
    pred = torch.rand(3, 4, requires_grad=True)
    loss = FCOSIoULoss()(pred, pred.detach(), torch.zeros(3))
    assert loss.item() == 0 and loss.requires_grad


def test_unknown_loss_type_is_refused():
    with pytest.raises(ValueError, match='loss_type'):
        FCOSIoULoss(loss_type='diou')
