from .dense_heads import RetinaMaskHead
from .detectors import RetinaMask
from .losses import SelfAdjustingSmoothL1Loss
from .task_modules import BestMatchingAssigner

__all__ = ['RetinaMaskHead', 'RetinaMask', 'SelfAdjustingSmoothL1Loss',
           'BestMatchingAssigner']
