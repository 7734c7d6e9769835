"""Attention layers of CenterMask: SE and eSE (VoVNet), SAM (SAG-Mask).

All three multiply their input by a learned gate and keep its shape.
"""
from typing import Optional

import torch
from mmdet.models.layers import ChannelAttention, SELayer
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

ATTENTIONS = ('none', 'se', 'ese')


@MODELS.register_module()
class ESE(ChannelAttention):
    """Effective squeeze-excitation (VoVNetV2, CenterMask).

    Global average pool -> 1x1 conv C->C with bias -> hard sigmoid
    ``relu6(x + 3) / 6`` -> multiply. One FC instead of SE's two, so no
    channel reduction. This is mmdet's ``ChannelAttention`` (RTMDet uses
    the same layer); ``C^2 + C`` parameters.
    """


@MODELS.register_module()
class SE(SELayer):
    """Squeeze-excitation as the SE baseline of CenterMask's Table 4.

    Global average pool -> FC C->C/r -> ReLU -> FC C/r->C -> sigmoid ->
    multiply, with r = 4 (which makes SE add half the parameters eSE adds,
    as the table's parameter counts imply). mmdet's ``SELayer`` with a
    sigmoid gate (its default gate is a hard sigmoid).

    Args:
        channels: Input (and output) channels.
        ratio: Reduction r.
    """

    def __init__(self, channels: int, ratio: int = 4, **kwargs) -> None:
        super().__init__(channels, ratio=ratio,
                         act_cfg=(dict(type='ReLU'), dict(type='Sigmoid')),
                         **kwargs)


@MODELS.register_module()
class SpatialAttention(BaseModule):
    """SAM, the spatial attention of SAG-Mask.

    Mean and max over channels, concatenated (2 channels) -> 3x3 conv 2->1
    without bias -> sigmoid -> multiply.

    Initialised as centermask2's SAM (``centermask/modeling/centermask/
    sam.py`` @6adabd6, ``c2_msra_fill``): Kaiming normal, fan_out, ReLU
    gain (std sqrt(2 / 9)). CM1 keeps PyTorch's default here.

    Args:
        kernel_size: Of the conv (official: 3).
        init_cfg: mmengine init config.
    """

    def __init__(self, kernel_size: int = 3,
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer='Conv2d', mode='fan_out',
                     nonlinearity='relu', distribution='normal')) -> None:
        super().__init__(init_cfg=init_cfg)
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2,
                              bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True),
                            x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


def build_channel_attention(kind: str, channels: int) -> Optional[nn.Module]:
    """``'none'`` -> None, ``'se'`` -> :class:`SE`, ``'ese'`` -> :class:`ESE`.
    """
    if kind not in ATTENTIONS:
        raise ValueError(f'attention must be one of {ATTENTIONS}, got '
                         f'{kind!r}')
    if kind == 'none':
        return None
    return SE(channels) if kind == 'se' else ESE(channels)
