"""VoVNet V1 and V2 (Lee et al. 2019; Lee & Park, CenterMask, CVPR 2020)."""
from typing import Dict, List, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...converters.vovnet import load_vovnet_weights, strict_load
from ..layers import build_channel_attention

# stem channels, conv channels per stage, output channels per stage,
# layers per OSA block, blocks per stage, depthwise.
ARCH_SETTINGS: Dict[str, dict] = {
    'V-19-slim-dw': dict(stem=(64, 64, 64), conv=(64, 80, 96, 112),
                         out=(112, 256, 384, 512), layers=3,
                         blocks=(1, 1, 1, 1), depthwise=True),
    'V-19-dw': dict(stem=(64, 64, 64), conv=(128, 160, 192, 224),
                    out=(256, 512, 768, 1024), layers=3, blocks=(1, 1, 1, 1),
                    depthwise=True),
    'V-19-slim': dict(stem=(64, 64, 128), conv=(64, 80, 96, 112),
                      out=(112, 256, 384, 512), layers=3, blocks=(1, 1, 1, 1),
                      depthwise=False),
    'V-19': dict(stem=(64, 64, 128), conv=(128, 160, 192, 224),
                 out=(256, 512, 768, 1024), layers=3, blocks=(1, 1, 1, 1),
                 depthwise=False),
    'V-39': dict(stem=(64, 64, 128), conv=(128, 160, 192, 224),
                 out=(256, 512, 768, 1024), layers=5, blocks=(1, 1, 2, 2),
                 depthwise=False),
    'V-57': dict(stem=(64, 64, 128), conv=(128, 160, 192, 224),
                 out=(256, 512, 768, 1024), layers=5, blocks=(1, 1, 4, 3),
                 depthwise=False),
    'V-99': dict(stem=(64, 64, 128), conv=(128, 160, 192, 224),
                 out=(256, 512, 768, 1024), layers=5, blocks=(1, 3, 9, 3),
                 depthwise=False),
}


class _Conv3x3(nn.Sequential):
    """3x3 conv-norm-ReLU, or its depthwise-separable form.

    The depthwise form (official ``dw_conv3x3``) is a 3x3 depthwise conv
    followed by a 1x1 pointwise conv, then norm and ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 depthwise: bool, norm_cfg: dict) -> None:
        if depthwise:
            super().__init__(
                nn.Conv2d(in_channels, out_channels, 3, stride, 1,
                          groups=out_channels, bias=False),
                ConvModule(out_channels, out_channels, 1, norm_cfg=norm_cfg))
        else:
            super().__init__(
                ConvModule(in_channels, out_channels, 3, stride, 1,
                           norm_cfg=norm_cfg))


class OSABlock(nn.Module):
    """One-shot aggregation block.

    ``layers`` 3x3 convs in sequence; the input and every conv output are
    concatenated once, fused by a 1x1 conv to ``out_channels``, gated by the
    attention, and -- with ``identity`` -- added to the input.

    Args:
        in_channels: Input channels.
        conv_channels: Channels of each 3x3 conv.
        out_channels: Channels after the 1x1 aggregation.
        layers: Number of 3x3 convs.
        attention: ``'none'``, ``'se'`` or ``'ese'``.
        identity: Add the input to the output (needs in == out channels).
        depthwise: Depthwise-separable 3x3 convs; the input is first reduced
            to ``conv_channels`` by a 1x1 conv when the counts differ.
        norm_cfg: Normalisation of every conv.
    """

    def __init__(self, in_channels: int, conv_channels: int,
                 out_channels: int, layers: int, attention: str,
                 identity: bool, depthwise: bool, norm_cfg: dict) -> None:
        super().__init__()
        if identity and in_channels != out_channels:
            raise ValueError('an identity OSA block needs in == out channels')
        self.identity = identity
        self.reduction = None
        channels = in_channels
        if depthwise and in_channels != conv_channels:
            self.reduction = ConvModule(in_channels, conv_channels, 1,
                                        norm_cfg=norm_cfg)
            channels = conv_channels
        self.convs = nn.ModuleList()
        for _ in range(layers):
            self.convs.append(_Conv3x3(channels, conv_channels, 1, depthwise,
                                       norm_cfg))
            channels = conv_channels
        self.aggregation = ConvModule(in_channels + layers * conv_channels,
                                      out_channels, 1, norm_cfg=norm_cfg)
        self.attention = build_channel_attention(attention, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        outputs = [x]
        y = x if self.reduction is None else self.reduction(x)
        for conv in self.convs:
            y = conv(y)
            outputs.append(y)
        y = self.aggregation(torch.cat(outputs, dim=1))
        if self.attention is not None:
            y = self.attention(y)
        return y + x if self.identity else y


@MODELS.register_module()
class VoVNet(BaseModule):
    """VoVNet backbone: V1 (no attention, no residual) to V2 (eSE, residual).

    With ``attention`` and ``residual`` as arguments, the rows of
    CenterMask's Table 4 (V1, +residual, +SE, +eSE) are configs.

    Stem: 3x3 conv 3->64 stride 2, 3x3 64->64, 3x3 64->128 stride 2 (the
    depthwise variants: 64/64/64, the last two depthwise-separable). Stage 2
    has no pooling; stages 3-5 start with a 3x3 stride-2 max pool (ceil
    mode). Output strides 4, 8, 16, 32.

    Official code vs the paper, both selectable:

    - ``attention_blocks='all'`` (default, the official centermask2 code):
      every OSA block has the attention layer (the code builds eSE
      unconditionally, ignoring its own SE flag). ``'last'``: only the last
      block of each stage, as timm does.
    - ``residual=True``: the identity is added in blocks 2..n of each stage
      (the first block changes the channel count), as the official code;
      V-19 variants have one block per stage and so no residual.

    Args:
        arch: One of ``ARCH_SETTINGS`` (``V-19-slim``, ``V-19``, ``V-39``,
            ``V-57``, ``V-99``, ``V-19-slim-dw``, ``V-19-dw``).
        attention: ``'none'`` (V1), ``'se'`` (SE, r = 4) or ``'ese'`` (V2).
        residual: Identity connections in blocks 2..n of each stage.
        attention_blocks: ``'all'`` or ``'last'``, see above.
        out_indices: Stages to output (0 = stage 2, stride 4).
        frozen_stages: -1 freezes nothing; 0 the stem; k the stem and the
            first k stages (as mmdet's ResNet).
        norm_cfg: Normalisation of every conv.
        norm_eval: Keep normalisation layers in eval mode when training.
        init_cfg: Weight initialisation (Kaiming by default), or
            ``dict(type='Pretrained', checkpoint=...)`` with ImageNet
            weights: ``'timm://ese_vovnet39b'`` (timm's loader and cache;
            needs ``attention_blocks='last'``) or a file with timm's, the
            official code's (``vovnet39_ese_detectron2.pth``) or our keys.
            Every key must fit (see ``mmdet_plugins/converters/vovnet.py``);
            ``reinit_attention=True`` in that dict loads everything but the
            attention layers, which keep their fresh initialisation. A
            relative ``checkpoint`` is read from the working directory, or
            else under ``root=<dir>`` when that dict names one.
    """

    def __init__(self,
                 arch: str = 'V-39',
                 attention: str = 'ese',
                 residual: bool = True,
                 attention_blocks: str = 'all',
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 init_cfg=dict(type='Kaiming', layer='Conv2d')) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in ARCH_SETTINGS:
            raise KeyError(f'unknown VoVNet arch {arch!r}; choose from '
                           f'{sorted(ARCH_SETTINGS)}')
        if attention_blocks not in ('all', 'last'):
            raise ValueError("attention_blocks must be 'all' or 'last'")
        setting = ARCH_SETTINGS[arch]
        self.arch = arch
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        depthwise = setting['depthwise']

        s0, s1, s2 = setting['stem']
        self.stem = nn.Sequential(
            ConvModule(3, s0, 3, 2, 1, norm_cfg=norm_cfg),
            _Conv3x3(s0, s1, 1, depthwise, norm_cfg),
            _Conv3x3(s1, s2, 2, depthwise, norm_cfg))

        self.stages = nn.ModuleList()
        in_channels = s2
        for i, (conv_ch, out_ch, blocks) in enumerate(
                zip(setting['conv'], setting['out'], setting['blocks'])):
            modules: List[nn.Module] = []
            if i > 0:
                modules.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            for b in range(blocks):
                with_attention = attention_blocks == 'all' or b == blocks - 1
                modules.append(OSABlock(
                    in_channels if b == 0 else out_ch, conv_ch, out_ch,
                    setting['layers'],
                    attention if with_attention else 'none',
                    identity=residual and b > 0, depthwise=depthwise,
                    norm_cfg=norm_cfg))
            self.stages.append(nn.Sequential(*modules))
            in_channels = out_ch
        self.out_channels = tuple(setting['out'][i] for i in self.out_indices)
        self._freeze_stages()

    def init_weights(self) -> None:
        init = self.init_cfg
        if not (isinstance(init, dict) and init.get('type') == 'Pretrained'):
            super().init_weights()
            return
        # mmengine's Pretrained loads with strict=False and only logs what
        # is missing; a mapping error would leave random layers unnoticed.
        source = init['checkpoint']
        state = load_vovnet_weights(source, root=init.get('root'))
        skip = ()
        if init.get('reinit_attention'):
            # Table 4's like-for-like arms: every arm starts from the same
            # ImageNet convs and BN; the attention layers (none / SE / eSE)
            # start from their own initialisation in every arm.
            skip = ('.attention.', )
            state = {k: v for k, v in state.items() if '.attention.' not in k}
        strict_load(self, state, source, skip=skip)
        self._is_init = True

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.stem] + list(self.stages[:self.frozen_stages])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'VoVNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
