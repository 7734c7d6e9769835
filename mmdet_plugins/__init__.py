"""MMDetection 3.x plugins: CenterMask and RetinaMask building blocks.

Importing this package registers every module into MMDetection's (and
mmengine's) registries, so a config only needs::

    custom_imports = dict(imports=['mmdet_plugins'],
                          allow_failed_imports=False)

Where things are (one module per file under ``models/``):

- ``engine/``: ``TrustedCheckpointRunner`` (resume on torch >= 2.6),
  ``FiniteLossHook`` (NaN/inf loss stops a run), ``BackboneInitCheckHook``
  (refuses frozen BN/stages on a backbone without pretrained weights),
  ``AccumulatedParamSchedulerHook`` (LR per optimizer step under gradient
  accumulation), ``AnyDeviceDistributedDataParallel`` (DDP on GPUs and gloo
  CPU processes), ``RankLossLogHook`` (every rank's losses and images).
- ``models/layers/attention.py``: ``SE``, ``ESE`` (eSE), ``SpatialAttention``
  (SAM).
- ``models/backbones/vovnet.py``: ``VoVNet`` V1/V2, none/SE/eSE.
- ``models/roi_extractors/adaptive_roi_extractor.py``:
  ``AdaptiveRoIExtractor`` (Eq. 1 / Eq. 2 level assignment).
- ``models/mask_heads/sag_mask_head.py``: ``SAGMaskHead`` (SAG-Mask).
- ``models/dense_heads/centermask_fcos_head.py``: ``CenterMaskFCOSHead``.
- ``models/detectors/centermask.py``: ``CenterMask`` (mask scoring via
  mmdet's ``MaskIoUHead``, applied to mask scores only).
- ``models/detectors/retinamask.py``: ``RetinaMask``; both detectors share
  ``models/detectors/mask_on_detections.py``.
- ``models/dense_heads/retinamask_head.py``: ``RetinaMaskHead``.
- ``models/losses/self_adjusting_smooth_l1_loss.py``:
  ``SelfAdjustingSmoothL1Loss``.
- ``models/task_modules/best_matching_assigner.py``:
  ``BestMatchingAssigner``.
- ``converters/``: official checkpoints -> ours (centermask2, RetinaMask,
  MobileNetV2; ``vovnet.py``: the VoVNet ImageNet weights ``VoVNet`` loads).
"""
# First: mmdet without its unused seaborn import (about 1 s a process).
from . import mmdet_import  # noqa: F401
from .engine import (BackboneInitCheckHook, FiniteLossHook,
                     TrustedCheckpointRunner, trust_checkpoints_under,
                     untrained_frozen_backbone)
from .models import *  # noqa: F401,F403 -- registers every module
from .models import __all__ as _models_all

__all__ = ['BackboneInitCheckHook', 'FiniteLossHook',
           'TrustedCheckpointRunner', 'trust_checkpoints_under',
           'untrained_frozen_backbone', *_models_all]
