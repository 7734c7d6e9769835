"""MMDetection 3.x plugins: CenterMask and RetinaMask building blocks.

Importing this package registers every module into MMDetection's (and
mmengine's) registries, so a config only needs::

    custom_imports = dict(imports=['mmdet_plugins'], allow_failed_imports=False)
"""
from .engine import FiniteLossHook, TrustedCheckpointRunner, trust_checkpoints_under

__all__ = ['FiniteLossHook', 'TrustedCheckpointRunner', 'trust_checkpoints_under']
