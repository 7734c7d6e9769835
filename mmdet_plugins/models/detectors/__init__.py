from .retinamask import RetinaMask

__all__ = ['RetinaMask']
