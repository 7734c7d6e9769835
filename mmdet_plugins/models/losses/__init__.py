from .fcos_iou_loss import FCOSIoULoss
from .self_adjusting_smooth_l1_loss import SelfAdjustingSmoothL1Loss

__all__ = ['FCOSIoULoss', 'SelfAdjustingSmoothL1Loss']
