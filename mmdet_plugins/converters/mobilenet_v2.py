"""MobileNetV2 ImageNet weights with the original (legacy) key names ->
mmdet's ``MobileNetV2``.

The legacy layout (the reference PyTorch MobileNetV2 that torchvision's
first release and many packages copy) is one ``features`` Sequential:
``features.0`` the stem conv-BN, ``features.1`` .. ``features.17`` the
inverted residual blocks (``conv.{3k}`` conv and ``conv.{3k+1}`` BN of their
k-th unit), ``features.18`` the final 1x1 conv-BN. mmdet groups the same
blocks into ``layer1`` .. ``layer7`` (1, 2, 3, 4, 3, 3, 1 blocks) of
``ConvModule`` units (``conv``, ``bn``) named ``expand_conv`` (absent when
the expansion ratio is 1), ``depthwise_conv`` and ``linear_conv``, and
names the ends ``conv1`` and ``conv2``.
"""
import re
from collections import OrderedDict
from typing import Dict

import torch

_BLOCKS_PER_LAYER = (1, 2, 3, 4, 3, 3, 1)


def _block_names():
    names = []
    for layer, blocks in enumerate(_BLOCKS_PER_LAYER, start=1):
        names += [f'layer{layer}.{b}' for b in range(blocks)]
    return names


def convert_legacy_mobilenet_v2(
        state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict':
    """Legacy ``features.*`` keys -> mmdet ``MobileNetV2`` keys.

    Raises:
        ValueError: naming a key that has no place in mmdet's MobileNetV2.
    """
    blocks = _block_names()
    last = len(blocks) + 1
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    units_per_block: Dict[int, int] = {}
    for key in state_dict:
        m = re.fullmatch(r'features\.(\d+)\.conv\.(\d+)\.\w+', key)
        if m:
            block, unit = int(m.group(1)), int(m.group(2)) // 3
            units_per_block[block] = max(units_per_block.get(block, 0),
                                         unit + 1)
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in state_dict.items():
        m = re.fullmatch(r'features\.(\d+)\.(\d)\.(\w+)', key)
        if m and int(m.group(1)) in (0, last):
            name = 'conv1' if m.group(1) == '0' else 'conv2'
            part = {'0': 'conv', '1': 'bn'}[m.group(2)]
            out[f'{name}.{part}.{m.group(3)}'] = value
            continue
        m = re.fullmatch(r'features\.(\d+)\.conv\.(\d+)\.(\w+)', key)
        if m and 1 <= int(m.group(1)) < last:
            unit, kind = divmod(int(m.group(2)), 3)
            if kind == 2:
                raise ValueError(f'MobileNetV2 key {key!r}: a ReLU6 has no '
                                 f'parameters')
            part = 'conv' if kind == 0 else 'bn'
            index = int(m.group(1))
            names = ['expand_conv', 'depthwise_conv', 'linear_conv']
            names = names[3 - units_per_block[index]:]
            out[f'{blocks[index - 1]}.{names[unit]}.{part}.{m.group(3)}'] = \
                value
            continue
        if key.startswith('classifier.'):
            continue
        raise ValueError(f'MobileNetV2 key {key!r} has no place in mmdet\'s '
                         f'MobileNetV2')
    return out
