"""Converters from the official codebases' checkpoints to this project's
models (VoVNet ImageNet weights: ``models/backbones/vovnet_checkpoint.py``)."""
from .mobilenet_v2 import convert_legacy_mobilenet_v2
from .official_checkpoints import (CONVERTERS, convert_centermask2,
                                   convert_retinamask)

__all__ = ['CONVERTERS', 'convert_centermask2', 'convert_legacy_mobilenet_v2',
           'convert_retinamask']
