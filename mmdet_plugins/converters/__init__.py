"""Converters from the official codebases' checkpoints to this project's
models: whole CenterMask / RetinaMask checkpoints
(``official_checkpoints.py``), MobileNetV2 (``mobilenet_v2.py``) and VoVNet
ImageNet weights (``vovnet.py``, which ``VoVNet`` loads through).

Nothing here imports ``mmdet_plugins.models`` at import time: the models
import ``vovnet.py``, so the dependency runs one way."""
from .mobilenet_v2 import convert_legacy_mobilenet_v2
from .official_checkpoints import (CONVERTERS, convert_centermask2,
                                   convert_retinamask)
from .vovnet import convert_vovnet_state_dict, load_vovnet_weights

__all__ = ['CONVERTERS', 'convert_centermask2', 'convert_legacy_mobilenet_v2',
           'convert_retinamask', 'convert_vovnet_state_dict',
           'load_vovnet_weights']
