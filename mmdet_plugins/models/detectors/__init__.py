from .centermask import CenterMask
from .mask_on_detections import MaskOnDetectionsDetector
from .retinamask import RetinaMask

__all__ = ['CenterMask', 'MaskOnDetectionsDetector', 'RetinaMask']
