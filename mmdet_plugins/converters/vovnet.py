"""VoVNet ImageNet weights from timm or the official code, as our keys.

Two sources of published VoVNet classifiers:

- timm (``ese_vovnet19b_dw``, ``ese_vovnet39b``, ``ese_vovnet57b``, ...):
  RGB input with ImageNet mean/std; eSE only in the last block of each
  stage (build ``VoVNet(attention_blocks='last')`` to load them).
- The official code (centermask2's ``vovnet{19,39,57,99}_ese_detectron2.pth``,
  ``vovnet19_ese_slim[_dw]_detectron2.pth``; CenterMask's
  ``vovnet*_ese_state_dict.pth``): BGR input, mean subtracted, std 1; eSE in
  every block (``attention_blocks='all'``).

``convert_vovnet_state_dict`` recognises either key layout (or ours, with
or without a ``backbone.`` prefix) and returns our keys; classifier heads
are dropped. ``load_vovnet_weights`` takes ``timm://<model name>`` (timm's
own pretrained loader: its cache, or a download when online) or a local
file path. ``strict_load`` loads them into a ``VoVNet`` (see
``mmdet_plugins/models/backbones/vovnet.py``), failing on any key that
does not fit.

This module imports torch only, never ``mmdet_plugins.models``: the
backbone imports it, so the dependency runs one way.
"""
import glob
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import torch

TIMM_PREFIX = 'timm://'
_SKIP = re.compile(r'(^|\.)(head|fc|classifier|linear)\.')


def _block_index(stage: int, block: int) -> int:
    # Our stages 1-3 hold the max pool at index 0, so blocks start at 1.
    return block + (1 if stage > 0 else 0)


def _ours(base: str, part: str, param: str, sequential: bool) -> str:
    """Our key for one conv unit's parameter.

    ``part``: ``conv`` / ``norm`` of a conv-BN-ReLU, or ``dw`` / ``pw`` /
    ``pw_norm`` of a depthwise-separable one. A 3x3 position is our
    ``_Conv3x3`` (``sequential``): ``0.conv``/``0.bn``, or ``0`` (depthwise
    conv) and ``1`` (pointwise ``ConvModule``); a 1x1 position is a bare
    ``ConvModule``.
    """
    if part == 'dw':
        return f'{base}.0.{param}'
    if part == 'pw':
        return f'{base}.1.conv.{param}'
    if part == 'pw_norm':
        return f'{base}.1.bn.{param}'
    lead = f'{base}.0' if sequential else base
    return f'{lead}.{"conv" if part == "conv" else "bn"}.{param}'


_TIMM_PARTS = {'conv': 'conv', 'bn': 'norm', 'conv_dw': 'dw',
               'conv_pw': 'pw'}
_OFFICIAL_PARTS = {'conv': 'conv', 'norm': 'norm', 'dw_conv3x3': 'dw',
                   'pw_conv1x1': 'pw', 'pw_norm': 'pw_norm'}


def _convert_timm(key: str, depthwise: set) -> str:
    """timm ``VovNet`` key -> ours; ``depthwise``: separable module names."""
    m = re.fullmatch(r'stages\.(\d)\.blocks\.(\d+)\.attn\.fc\.(\w+)', key)
    if m:
        stage, block = int(m.group(1)), int(m.group(2))
        return (f'stages.{stage}.{_block_index(stage, block)}.attention.fc.'
                f'{m.group(3)}')
    module, part, param = re.fullmatch(r'(.+)\.(\w+)\.(\w+)', key).groups()
    part = _TIMM_PARTS[part]
    if part == 'norm' and module in depthwise:
        part = 'pw_norm'
    m = re.fullmatch(r'stem\.(\d)', module)
    if m:
        return _ours(f'stem.{m.group(1)}', part, param, m.group(1) != '0')
    m = re.fullmatch(r'stages\.(\d)\.blocks\.(\d+)\.(.+)', module)
    if not m:
        raise KeyError(key)
    stage, block, rest = int(m.group(1)), int(m.group(2)), m.group(3)
    base = f'stages.{stage}.{_block_index(stage, block)}'
    m = re.fullmatch(r'conv_mid\.(\d+)', rest)
    if m:
        return _ours(f'{base}.convs.{m.group(1)}', part, param, True)
    units = {'conv_reduction': 'reduction', 'conv_concat': 'aggregation'}
    if rest in units:
        return _ours(f'{base}.{units[rest]}', part, param, False)
    raise KeyError(key)


def _convert_official(key: str) -> str:
    """Official (centermask2 / CenterMask) VoVNet key -> ours."""
    m = re.fullmatch(r'stem\.stem_(\d)/(\w+)\.(\w+)', key)
    if m:
        index = int(m.group(1)) - 1
        return _ours(f'stem.{index}', _OFFICIAL_PARTS[m.group(2)],
                     m.group(3), index > 0)
    m = re.fullmatch(r'stage(\d)\.OSA\d_(\d+)\.(.+)', key)
    if not m:
        raise KeyError(key)
    stage, block, rest = int(m.group(1)) - 2, int(m.group(2)) - 1, m.group(3)
    base = f'stages.{stage}.{_block_index(stage, block)}'
    m = re.fullmatch(r'ese\.fc\.(weight|bias)', rest)
    if m:
        return f'{base}.attention.fc.{m.group(1)}'
    m = re.fullmatch(r'(layers\.(\d+)|conv_reduction|concat)\.[^/]+/(\w+)'
                     r'\.(\w+)', rest)
    if not m:
        raise KeyError(key)
    part, param = _OFFICIAL_PARTS[m.group(3)], m.group(4)
    if m.group(2) is not None:
        return _ours(f'{base}.convs.{m.group(2)}', part, param, True)
    unit = 'reduction' if m.group(1) == 'conv_reduction' else 'aggregation'
    return _ours(f'{base}.{unit}', part, param, False)


_PREFIXES = ('module.', 'backbone.bottom_up.', 'backbone.body.', 'backbone.',
             'bottom_up.', 'body.')


def _strip_prefix(state_dict: Dict[str, torch.Tensor]) -> Dict:
    for prefix in _PREFIXES:
        if any(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()
                          if k.startswith(prefix)}
    return state_dict


def detect_layout(state_dict: Dict[str, torch.Tensor]) -> str:
    """``'timm'``, ``'official'`` or ``'ours'`` from the stem's key names."""
    keys = list(state_dict)
    if any(k.startswith('stem.stem_1/') for k in keys):
        return 'official'
    if any(k.startswith('stages.') and '.blocks.' in k for k in keys):
        return 'timm'
    if any(k.startswith('stages.') and '.aggregation.' in k for k in keys):
        return 'ours'
    raise ValueError(
        'not a VoVNet checkpoint: expected timm keys (stages.N.blocks...), '
        'official keys (stem.stem_1/conv...) or this project\'s; first keys: '
        + ', '.join(keys[:5]))


def convert_vovnet_state_dict(
        state_dict: Dict[str, torch.Tensor]
) -> 'OrderedDict[str, torch.Tensor]':
    """Any supported VoVNet state dict -> this project's ``VoVNet`` keys.

    Raises:
        ValueError: The layout is not recognised, or a key has no place in
            ours (named in the message).
    """
    if 'state_dict' in state_dict and isinstance(state_dict['state_dict'],
                                                 dict):
        state_dict = state_dict['state_dict']
    elif 'model' in state_dict and isinstance(state_dict['model'], dict):
        state_dict = state_dict['model']
    state_dict = _strip_prefix(dict(state_dict))
    layout = detect_layout(state_dict)
    if layout == 'ours':
        return OrderedDict(state_dict)
    convert: Callable[[str], str]
    if layout == 'timm':
        depthwise = {k.rsplit('.conv_dw.', 1)[0] for k in state_dict
                     if '.conv_dw.' in k}
        convert = lambda k: _convert_timm(k, depthwise)  # noqa: E731
    else:
        convert = _convert_official
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in state_dict.items():
        if _SKIP.search(key) and not key.startswith(('stem', 'stage')):
            continue
        try:
            out[convert(key)] = value
        except KeyError:
            raise ValueError(f'{layout} VoVNet key {key!r} has no '
                             f'counterpart in this VoVNet') from None
    return out


def timm_cached_file(name: str) -> Optional[str]:
    """timm's weight file for ``name`` in the Hugging Face cache, if any.

    ``name`` may carry timm's pretrained tag (``ese_vovnet39b.ra_in1k``);
    without one, the single cached tag is taken.
    """
    hub = os.environ.get('HF_HUB_CACHE') or osp.join(
        os.environ.get('HF_HOME', osp.expanduser('~/.cache/huggingface')),
        'hub')
    repos = [osp.join(hub, f'models--timm--{name}')]
    if '.' not in name:
        repos += sorted(glob.glob(osp.join(hub, f'models--timm--{name}.*')))
    found = {}
    for repo in repos:
        for file in ('model.safetensors', 'pytorch_model.bin'):
            hits = sorted(glob.glob(osp.join(repo, 'snapshots', '*', file)))
            if hits:
                found[osp.basename(repo)] = hits[-1]
                break
    if len(found) > 1:
        tags = ', '.join(r.split('--', 2)[2] for r in found)
        raise ValueError(f'timm://{name}: several timm weights are cached '
                         f'({tags}); name one, e.g. timm://'
                         f'{next(iter(found)).split("--", 2)[2]}')
    return next(iter(found.values()), None)


def _load_file(path: str) -> dict:
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, map_location='cpu', weights_only=True)


def load_vovnet_weights(source: str, root: Optional[str] = None
                        ) -> 'OrderedDict[str, torch.Tensor]':
    """Our VoVNet state dict from ``timm://<name>`` or a checkpoint file.

    ``timm://<name>[.<tag>]`` reads timm's file from the Hugging Face cache
    (``HF_HUB_CACHE`` / ``HF_HOME``) without importing timm; when it is not
    cached, timm's own loader fetches it (network, timm and torchvision
    needed). A relative path is tried from the working directory, then
    under ``root`` when the caller gives one (e.g. the checkout a tool
    script runs from); this package does not know where that is.
    """
    if source.startswith(TIMM_PREFIX):
        name = source[len(TIMM_PREFIX):]
        cached = timm_cached_file(name)
        if cached is not None:
            return convert_vovnet_state_dict(_load_file(cached))
        try:
            import timm
        except ImportError as e:
            raise ImportError(
                f'{source}: not in the Hugging Face cache, and timm cannot '
                f'fetch it ({e}); download the weights (docs/weights.md)') \
                from None
        model = timm.create_model(name, pretrained=True)
        return convert_vovnet_state_dict(model.state_dict())
    path = source
    if root is not None and not osp.isabs(path) and not osp.exists(path):
        # Configs name checkpoints/<file> relative to the checkout.
        path = osp.join(root, path)
    if not osp.isfile(path):
        where = '' if osp.isabs(source) else (
            f' (relative to {os.getcwd()}'
            + (f' or {root}' if root is not None else '') + ')')
        raise FileNotFoundError(
            f'VoVNet weights {source!r} do not exist{where}; download them '
            f'(see docs/weights.md) or name timm weights as timm://<model>')
    return convert_vovnet_state_dict(_load_file(path))


def compare_state_dicts(own: Dict[str, torch.Tensor],
                        state_dict: Dict[str, torch.Tensor],
                        skip: Tuple[str, ...] = ()
                        ) -> Tuple[List[str], List[str], List[str]]:
    """Keys of ``own`` that ``state_dict`` lacks, keys it has that ``own``
    does not, and keys whose shapes differ (as ``"key: theirs vs ours"``).

    ``num_batches_tracked`` and keys of ``own`` containing any of ``skip``
    may be absent.
    """
    missing = [k for k in own if k not in state_dict
               and not k.endswith('num_batches_tracked')
               and not any(s in k for s in skip)]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f'{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}'
              for k, v in own.items()
              if k in state_dict and state_dict[k].shape != v.shape]
    return missing, unexpected, shapes


def strict_load(module: torch.nn.Module, state_dict: Dict[str, torch.Tensor],
                source: str, skip: Tuple[str, ...] = ()) -> None:
    """Load every key or fail naming what is missing, extra or misshapen.

    Keys of ``module`` containing any of ``skip`` may be absent.
    """
    missing, unexpected, shapes = compare_state_dicts(
        module.state_dict(), state_dict, skip)
    if missing or unexpected or shapes:
        hint = ''
        if any('.attention.' in k for k in missing):
            hint = (" (timm's eSE is in the last block of each stage only: "
                    "attention_blocks='last'; the official weights have it "
                    "in every block: 'all')")
        raise ValueError(
            f'VoVNet weights {source!r} do not fit this VoVNet{hint}: '
            f'{len(missing)} missing (e.g. {missing[:3]}), '
            f'{len(unexpected)} unexpected (e.g. {unexpected[:3]}), '
            f'{len(shapes)} of other shape (e.g. {shapes[:3]})')
    module.load_state_dict(state_dict, strict=False)
