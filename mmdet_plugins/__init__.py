"""MMDetection 3.x plugins: CenterMask and RetinaMask building blocks.

Importing this package registers every module into MMDetection's (and
mmengine's) registries, so a config only needs::

    custom_imports = dict(imports=['mmdet_plugins'],
                          allow_failed_imports=False)

Where things are:

- ``engine/``: ``TrustedCheckpointRunner`` (resume on torch >= 2.6),
  ``FiniteLossHook`` (NaN/inf loss stops a run).
- ``models/detectors/retinamask.py``: ``RetinaMask``.
- ``models/dense_heads/retinamask_head.py``: ``RetinaMaskHead``.
- ``models/losses/self_adjusting_smooth_l1_loss.py``:
  ``SelfAdjustingSmoothL1Loss``.
- ``models/task_modules/best_matching_assigner.py``:
  ``BestMatchingAssigner``.
"""
from .engine import (FiniteLossHook, TrustedCheckpointRunner,
                     trust_checkpoints_under)
from .models import (BestMatchingAssigner, RetinaMask, RetinaMaskHead,
                     SelfAdjustingSmoothL1Loss)

__all__ = ['FiniteLossHook', 'TrustedCheckpointRunner',
           'trust_checkpoints_under', 'BestMatchingAssigner', 'RetinaMask',
           'RetinaMaskHead', 'SelfAdjustingSmoothL1Loss']
