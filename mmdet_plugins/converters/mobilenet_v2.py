"""MobileNetV2 ImageNet weights with the original (legacy) key names ->
mmdet's ``MobileNetV2``.

Two files use the legacy names: the reference PyTorch MobileNetV2's
ImageNet weights (``features.*``, BN with ``num_batches_tracked``) and
centermask2's ``mobilenet_v2_detectron2.pth`` (CM2 README, "ImageNet
Pretrained Models"), whose ``centermask/modeling/backbone/mobilenet.py`` is
the same network with detectron2 layers: ``features`` 0..17 (no final 1x1
conv ``features.18``, no classifier), ``FrozenBatchNorm2d`` (weight, bias,
running_mean, running_var as buffers; no ``num_batches_tracked``), and in a
detectron2 file the ``backbone.bottom_up.`` prefix. CM2 feeds its file BGR
images, mean subtracted, std 1 (``centermask_lite_Mv2_FPN_ms_4x.yaml`` sets
no PIXEL_MEAN/STD, so detectron2 v0.3's defaults hold); the reference
ImageNet weights were trained on RGB with ImageNet mean/std.

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


# detectron2 files name the backbone ``backbone.bottom_up.``; DDP adds
# ``module.``.
_PREFIXES = ('module.', 'backbone.bottom_up.', 'bottom_up.', 'backbone.')


def _unwrap(state_dict: Dict) -> Dict[str, torch.Tensor]:
    for name in ('model', 'state_dict'):
        if isinstance(state_dict.get(name), dict):
            state_dict = state_dict[name]
    state_dict = dict(state_dict)
    for prefix in _PREFIXES:
        if any(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()
                          if k.startswith(prefix)}
    return state_dict


def convert_legacy_mobilenet_v2(
        state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict':
    """Legacy ``features.*`` keys -> mmdet ``MobileNetV2`` keys.

    Takes the reference ImageNet file or centermask2's
    ``mobilenet_v2_detectron2.pth`` (also wrapped in ``model`` /
    ``state_dict``, with a ``backbone.bottom_up.`` or ``module.`` prefix).
    A FrozenBN without ``num_batches_tracked`` gets a zero one, so the result
    loads strictly into mmdet's BN. CM2's file has no ``features.18``, so
    mmdet's ``conv2`` stays missing: CM2 never runs it, and with
    ``out_indices`` up to 6 mmdet computes it but uses no output of it.

    Raises:
        ValueError: naming a key that has no place in mmdet's MobileNetV2.
    """
    blocks = _block_names()
    last = len(blocks) + 1
    state_dict = _unwrap(state_dict)
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
    for key in [k for k in out if k.endswith('.bn.running_var')]:
        tracked = key[:-len('running_var')] + 'num_batches_tracked'
        out.setdefault(tracked, torch.tensor(0, dtype=torch.long))
    return out


def main(argv=None) -> None:
    """``python -m mmdet_plugins.converters.mobilenet_v2 SRC DST``: write
    SRC (e.g. CM2's ``mobilenet_v2_detectron2.pth``) as an mmdet
    ``MobileNetV2`` checkpoint for a ``Pretrained`` ``init_cfg``."""
    import argparse

    from mmdet.models.backbones import MobileNetV2
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('src')
    parser.add_argument('dst')
    args = parser.parse_args(argv)
    state = convert_legacy_mobilenet_v2(
        torch.load(args.src, map_location='cpu', weights_only=True))
    result = MobileNetV2(out_indices=(1, 2, 4, 6)).load_state_dict(
        state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith('conv2.')]
    if missing or result.unexpected_keys:
        raise ValueError(f'{args.src}: missing {missing}, unexpected '
                         f'{result.unexpected_keys}')
    torch.save({'state_dict': state}, args.dst)
    print(f'{args.dst}: {len(state)} tensors; mmdet keys not in the file: '
          f'{len(result.missing_keys)} (conv2 only)')


if __name__ == '__main__':
    main()
