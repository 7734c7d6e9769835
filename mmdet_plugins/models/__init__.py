from .backbones import VoVNet
from .dense_heads import CenterMaskFCOSHead, RetinaMaskHead
from .detectors import CenterMask, MaskOnDetectionsDetector, RetinaMask
from .layers import ESE, SE, SpatialAttention
from .losses import SelfAdjustingSmoothL1Loss
from .mask_heads import SAGMaskHead
from .roi_extractors import AdaptiveRoIExtractor
from .task_modules import BestMatchingAssigner

__all__ = ['VoVNet', 'CenterMaskFCOSHead', 'RetinaMaskHead', 'CenterMask',
           'MaskOnDetectionsDetector', 'RetinaMask', 'ESE', 'SE',
           'SpatialAttention', 'SelfAdjustingSmoothL1Loss', 'SAGMaskHead',
           'AdaptiveRoIExtractor', 'BestMatchingAssigner']
