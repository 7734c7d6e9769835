"""The official VoVNet's module structure, for parity tests only.

Condensed from youngwanLEE/centermask2 @6adabd6
``centermask/modeling/backbone/vovnet.py``: the same ``OrderedDict`` unit
names (``stem_1/conv``, ``OSA2_1_0/norm``, ``OSA2_1_reduction_0/conv``,
``OSA2_1_concat/conv``, ``ese.fc``), the same ``_OSA_stage`` / ``_OSA_module``
nesting, eSE in every block, identity in blocks 2..n, and detectron2's
``FrozenBatchNorm2d`` (four buffers, eps 1e-5). DCN, the registry and the
freezing logic are left out. Its state dict, under ``backbone.bottom_up.``,
has the keys of the ``vovnet*_ese_detectron2.pth`` files.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# vovnet.py lines 30-107: VoVNet19_slim_dw_eSE .. VoVNet99_eSE, _STAGE_SPECS
# (the ``eSE`` flag is left out: every block builds eSE regardless).
_STAGE_SPECS = {
    'V-19-slim-dw-eSE': dict(stem=[64, 64, 64],
                             stage_conv_ch=[64, 80, 96, 112],
                             stage_out_ch=[112, 256, 384, 512],
                             layer_per_block=3, block_per_stage=[1, 1, 1, 1],
                             dw=True),
    'V-19-dw-eSE': dict(stem=[64, 64, 64], stage_conv_ch=[128, 160, 192, 224],
                        stage_out_ch=[256, 512, 768, 1024], layer_per_block=3,
                        block_per_stage=[1, 1, 1, 1], dw=True),
    'V-19-slim-eSE': dict(stem=[64, 64, 128], stage_conv_ch=[64, 80, 96, 112],
                          stage_out_ch=[112, 256, 384, 512],
                          layer_per_block=3, block_per_stage=[1, 1, 1, 1],
                          dw=False),
    'V-19-eSE': dict(stem=[64, 64, 128], stage_conv_ch=[128, 160, 192, 224],
                     stage_out_ch=[256, 512, 768, 1024], layer_per_block=3,
                     block_per_stage=[1, 1, 1, 1], dw=False),
    'V-39-eSE': dict(stem=[64, 64, 128], stage_conv_ch=[128, 160, 192, 224],
                     stage_out_ch=[256, 512, 768, 1024], layer_per_block=5,
                     block_per_stage=[1, 1, 2, 2], dw=False),
    'V-57-eSE': dict(stem=[64, 64, 128], stage_conv_ch=[128, 160, 192, 224],
                     stage_out_ch=[256, 512, 768, 1024], layer_per_block=5,
                     block_per_stage=[1, 1, 4, 3], dw=False),
    'V-99-eSE': dict(stem=[64, 64, 128], stage_conv_ch=[128, 160, 192, 224],
                     stage_out_ch=[256, 512, 768, 1024], layer_per_block=5,
                     block_per_stage=[1, 3, 9, 3], dw=False),
}


class FrozenBatchNorm2d(nn.Module):
    """detectron2 v0.3 ``detectron2/layers/batch_norm.py``
    ``FrozenBatchNorm2d`` (buffers, eps 1e-5; its grad-mode ``forward``)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer('weight', torch.ones(num_features))
        self.register_buffer('bias', torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_features))
        self.register_buffer('running_var', torch.ones(num_features) - eps)

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        bias = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)


def dw_conv3x3(in_channels, out_channels, module_name, postfix, stride=1):
    """centermask2 @6adabd6 ``centermask/modeling/backbone/vovnet.py``
    ``dw_conv3x3``."""
    return [
        (f'{module_name}_{postfix}/dw_conv3x3',
         nn.Conv2d(in_channels, out_channels, 3, stride, 1,
                   groups=out_channels, bias=False)),
        (f'{module_name}_{postfix}/pw_conv1x1',
         nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False)),
        (f'{module_name}_{postfix}/pw_norm', FrozenBatchNorm2d(out_channels)),
        (f'{module_name}_{postfix}/pw_relu', nn.ReLU(inplace=True)),
    ]


def conv3x3(in_channels, out_channels, module_name, postfix, stride=1):
    """centermask2 @6adabd6 ``centermask/modeling/backbone/vovnet.py``
    ``conv3x3`` (kernel 3, padding 1)."""
    return [
        (f'{module_name}_{postfix}/conv',
         nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)),
        (f'{module_name}_{postfix}/norm', FrozenBatchNorm2d(out_channels)),
        (f'{module_name}_{postfix}/relu', nn.ReLU(inplace=True)),
    ]


def conv1x1(in_channels, out_channels, module_name, postfix):
    """centermask2 @6adabd6 ``centermask/modeling/backbone/vovnet.py``
    ``conv1x1``."""
    return [
        (f'{module_name}_{postfix}/conv',
         nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False)),
        (f'{module_name}_{postfix}/norm', FrozenBatchNorm2d(out_channels)),
        (f'{module_name}_{postfix}/relu', nn.ReLU(inplace=True)),
    ]


class eSEModule(nn.Module):  # noqa: N801 -- the official name
    """centermask2 @6adabd6 ``centermask/modeling/backbone/vovnet.py``
    ``eSEModule`` with ``Hsigmoid`` inlined (``relu6(x + 3) / 6``)."""

    def __init__(self, channel):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channel, channel, kernel_size=1, padding=0)

    def forward(self, x):
        y = self.fc(self.avg_pool(x))
        return x * (F.relu6(y + 3.) / 6.)


class _OSA_module(nn.Module):  # noqa: N801
    """centermask2 @6adabd6 ``centermask/modeling/backbone/vovnet.py``
    ``_OSA_module`` (``__init__``, ``forward``), DCN left out."""

    def __init__(self, in_ch, stage_ch, concat_ch, layer_per_block,
                 module_name, identity=False, depthwise=False):
        super().__init__()
        self.identity = identity
        self.depthwise = depthwise
        self.isReduced = False
        self.layers = nn.ModuleList()
        in_channel = in_ch
        if self.depthwise and in_channel != stage_ch:
            self.isReduced = True
            self.conv_reduction = nn.Sequential(OrderedDict(conv1x1(
                in_channel, stage_ch, f'{module_name}_reduction', '0')))
        for i in range(layer_per_block):
            if self.depthwise:
                self.layers.append(nn.Sequential(OrderedDict(
                    dw_conv3x3(stage_ch, stage_ch, module_name, i))))
            else:
                self.layers.append(nn.Sequential(OrderedDict(
                    conv3x3(in_channel, stage_ch, module_name, i))))
            in_channel = stage_ch
        in_channel = in_ch + layer_per_block * stage_ch
        self.concat = nn.Sequential(OrderedDict(
            conv1x1(in_channel, concat_ch, module_name, 'concat')))
        self.ese = eSEModule(concat_ch)

    def forward(self, x):
        identity_feat = x
        output = [x]
        if self.depthwise and self.isReduced:
            x = self.conv_reduction(x)
        for layer in self.layers:
            x = layer(x)
            output.append(x)
        xt = self.ese(self.concat(torch.cat(output, dim=1)))
        return xt + identity_feat if self.identity else xt


class _OSA_stage(nn.Sequential):  # noqa: N801
    """centermask2 @6adabd6 ``centermask/modeling/backbone/vovnet.py``
    ``_OSA_stage`` (the unused ``SE`` flag and DCN left out)."""

    def __init__(self, in_ch, stage_ch, concat_ch, block_per_stage,
                 layer_per_block, stage_num, depthwise=False):
        super().__init__()
        if stage_num != 2:
            self.add_module('Pooling', nn.MaxPool2d(3, 2, ceil_mode=True))
        name = f'OSA{stage_num}_1'
        self.add_module(name, _OSA_module(in_ch, stage_ch, concat_ch,
                                          layer_per_block, name,
                                          depthwise=depthwise))
        for i in range(block_per_stage - 1):
            name = f'OSA{stage_num}_{i + 2}'
            self.add_module(name, _OSA_module(
                concat_ch, stage_ch, concat_ch, layer_per_block, name,
                identity=True, depthwise=depthwise))


class OfficialVoVNet(nn.Module):
    """centermask2 @6adabd6 ``centermask/modeling/backbone/vovnet.py``
    ``VoVNet.__init__`` / ``forward`` (stem, stages; freezing and
    ``out_features`` left out): ``forward`` returns the outputs of
    stage2..stage5."""

    def __init__(self, conv_body: str):
        super().__init__()
        spec = _STAGE_SPECS[conv_body]
        stem_ch = spec['stem']
        conv_type = dw_conv3x3 if spec['dw'] else conv3x3
        stem = conv3x3(3, stem_ch[0], 'stem', '1', 2)
        stem += conv_type(stem_ch[0], stem_ch[1], 'stem', '2', 1)
        stem += conv_type(stem_ch[1], stem_ch[2], 'stem', '3', 2)
        self.add_module('stem', nn.Sequential(OrderedDict(stem)))
        in_ch_list = [stem_ch[2]] + spec['stage_out_ch'][:-1]
        self.stage_names = []
        for i in range(4):
            name = f'stage{i + 2}'
            self.stage_names.append(name)
            self.add_module(name, _OSA_stage(
                in_ch_list[i], spec['stage_conv_ch'][i],
                spec['stage_out_ch'][i], spec['block_per_stage'][i],
                spec['layer_per_block'], i + 2, spec['dw']))

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            outs.append(x)
        return outs
