"""centermask2's MobileNetV2 backbone, for parity tests only.

Transcribes youngwanLEE/centermask2 @6adabd6
``centermask/modeling/backbone/mobilenet.py`` (``conv_bn``,
``InvertedResidual``, ``MobileNetV2.__init__``/``forward``; ``conv_1x1_bn``
is defined there but never used) with detectron2 v0.3's ``Conv2d`` written
as ``nn.Conv2d`` (no norm/activation given, so equal) and
``detectron2/layers/batch_norm.py`` ``FrozenBatchNorm2d`` (buffers, eps 1e-5,
``F.batch_norm(training=False)``). Module names, and so state-dict keys,
are the official ones: ``features.{i}.{0,1}`` stem, ``features.{i}.conv.
{j}`` blocks. ``FREEZE_AT`` (0 in the Lite MV2 yaml) only sets
``requires_grad`` and is left out.
"""
import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """detectron2 v0.3 ``layers/batch_norm.py`` ``FrozenBatchNorm2d``."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer('weight', torch.ones(num_features))
        self.register_buffer('bias', torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_features))
        self.register_buffer('running_var', torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var,
                            self.weight, self.bias, training=False,
                            eps=self.eps)


def conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    """``mobilenet.py`` ``conv_bn``: the stem."""
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
                         FrozenBatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """``mobilenet.py`` ``InvertedResidual``."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers += [nn.Conv2d(inp, hidden_dim, 1, 1, 0, bias=False),
                       FrozenBatchNorm2d(hidden_dim), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim,
                      bias=False),
            FrozenBatchNorm2d(hidden_dim), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            FrozenBatchNorm2d(oup)
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class OfficialMobileNetV2(nn.Module):
    """``mobilenet.py`` ``MobileNetV2`` (width 1): ``forward`` returns
    ``res2``..``res5`` from ``features`` 3, 6, 13, 17."""

    SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
               [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
    RETURN = [3, 6, 13, 17]

    def __init__(self):
        super().__init__()
        input_channel = 32
        self.features = nn.ModuleList([conv_bn(3, input_channel, 2)])
        for t, c, n, s in self.SETTING:
            for i in range(n):
                self.features.append(InvertedResidual(
                    input_channel, c, s if i == 0 else 1, expand_ratio=t))
                input_channel = c

    def forward(self, x: torch.Tensor) -> dict:
        res = []
        for i, m in enumerate(self.features):
            x = m(x)
            if i in self.RETURN:
                res.append(x)
        return {f'res{i + 2}': r for i, r in enumerate(res)}
