"""FCOS's IoU / GIoU loss as CenterMask's official code computes it."""
from typing import Optional

import torch
from mmdet.models.losses.utils import weighted_loss
from mmdet.registry import MODELS
from torch import Tensor, nn

LOSS_TYPES = ('iou', 'linear_iou', 'giou')


@weighted_loss
def fcos_iou_loss(pred: Tensor, target: Tensor, loss_type: str = 'giou',
                  smooth: float = 1.0, enclose_eps: float = 0.0) -> Tensor:
    """Per-box loss of the official ``IOULoss`` on boxes around one point.

    Both boxes are decoded from the same point, so the widths and heights
    below equal the official ``l + r`` / ``t + b`` sums and the
    intersection / enclosure equal its ``min`` / ``max`` sums.

    Args:
        pred: Predicted boxes (n, 4), x1y1x2y2.
        target: Target boxes (n, 4), x1y1x2y2, decoded from the same points.
        loss_type: ``'iou'`` (-log IoU), ``'linear_iou'`` (1 - IoU) or
            ``'giou'`` (1 - GIoU).
        smooth: Added to intersection and union, in the boxes' units.
        enclose_eps: Added to the enclosing box's area.

    Returns:
        Tensor: The loss of each box, shape (n, ).
    """
    pred_area = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    target_area = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    # No clamp, as the official code: distances >= 0 from one shared point
    # keep the intersection non-negative.
    area_inter = (rb - lt).prod(dim=1)
    area_union = pred_area + target_area - area_inter
    ious = (area_inter + smooth) / (area_union + smooth)
    if loss_type == 'iou':
        return -torch.log(ious)
    if loss_type == 'linear_iou':
        return 1 - ious
    enclose_wh = torch.max(pred[:, 2:], target[:, 2:]) - torch.min(
        pred[:, :2], target[:, :2])
    enclose = enclose_wh.prod(dim=1) + enclose_eps
    return 1 - (ious - (enclose - area_union) / enclose)


@MODELS.register_module()
class FCOSIoULoss(nn.Module):
    """The IoU / GIoU loss of FCOS in CenterMask's official code.

    Both official ``IOULoss`` classes (CM1 ``maskrcnn_benchmark/layers/
    iou_loss.py`` @72147e8, CM2 ``centermask/layers/iou_loss.py``
    @6adabd6) compute, from the distances (l, t, r, b) of the prediction and
    the target to one point::

        iou  = (inter + 1) / (union + 1)
        giou = iou - (enclose - union) / enclose     (CM1: enclose + 1e-7)

    mmdet's ``GIoULoss`` uses ``inter / (union + 1e-6)`` instead. The
    ``+ 1`` lifts the IoU of small boxes towards 1: mmdet's ``FCOSHead``
    with ``norm_on_bbox`` (CM2's normalised regression) gives this loss
    boxes in stride units during training (a 2 x 2-stride box has area 4),
    exactly the units of CM2's loss, so ``smooth=1.0`` is CM2's formula.
    With ``norm_on_bbox=False`` (CM1's ``exp`` regression) the boxes are in
    pixels, as in CM1. The smoothing is always added in the units of the
    boxes given.

    Reduction as mmdet's losses: ``FCOSHead`` passes the centerness targets
    as ``weight`` and their sum (averaged over processes) as
    ``avg_factor``, which is CM2's ``ctrness_norm``.

    Args:
        loss_type: ``'giou'`` (both official CenterMask configs),
            ``'iou'`` or ``'linear_iou'``.
        smooth: Added to intersection and union (official: 1.0).
        enclose_eps: Added to the enclosing area (CM1: 1e-7, CM2: 0).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Weight of the loss.
    """

    def __init__(self, loss_type: str = 'giou', smooth: float = 1.0,
                 enclose_eps: float = 0.0, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if loss_type not in LOSS_TYPES:
            raise ValueError(f'loss_type must be one of {LOSS_TYPES}, got '
                             f'{loss_type!r}')
        self.loss_type = loss_type
        self.smooth = smooth
        self.enclose_eps = enclose_eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Weighted loss of boxes decoded from shared points.

        Args:
            pred: Predicted boxes (n, 4), x1y1x2y2.
            target: Target boxes (n, 4), from the same points as ``pred``.
            weight: Per-box weight (n, ) or (n, 4) (averaged over the 4).
            avg_factor: Divides the weighted sum (``'mean'`` reduction).
            reduction_override: Overrides ``reduction``.

        Returns:
            Tensor: The loss.
        """
        assert reduction_override in (None, 'none', 'mean', 'sum')
        reduction = reduction_override or self.reduction
        if weight is not None and not torch.any(weight > 0):
            # A zero that keeps the graph (as mmdet's IoU losses).
            return (pred * weight.reshape(len(pred), -1)).sum()
        if weight is not None and weight.dim() > 1:
            weight = weight.mean(-1)
        return self.loss_weight * fcos_iou_loss(
            pred, target, weight, reduction=reduction,
            avg_factor=avg_factor, loss_type=self.loss_type,
            smooth=self.smooth, enclose_eps=self.enclose_eps)
