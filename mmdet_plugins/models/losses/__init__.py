from .self_adjusting_smooth_l1_loss import SelfAdjustingSmoothL1Loss

__all__ = ['SelfAdjustingSmoothL1Loss']
