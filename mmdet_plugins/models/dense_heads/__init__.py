from .retinamask_head import RetinaMaskHead

__all__ = ['RetinaMaskHead']
