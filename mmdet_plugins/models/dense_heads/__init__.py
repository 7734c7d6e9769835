from .centermask_fcos_head import CenterMaskFCOSHead
from .retinamask_head import RetinaMaskHead

__all__ = ['CenterMaskFCOSHead', 'RetinaMaskHead']
