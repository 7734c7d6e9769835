"""Refuse to freeze parts of a backbone that starts from random weights.

``norm_eval=True`` keeps BatchNorm in eval mode, so a BN that never loaded
weights normalises with mean 0 / variance 1 (it does not normalise at all);
``frozen_stages >= 0`` keeps the stem (and stages) at their random
initialisation; ``norm_cfg.requires_grad=False`` freezes BN's affine
parameters at 1/0. Each is right for a backbone that loads ImageNet weights
and wrong for one trained from scratch. mmdet's ResNet defaults to
``norm_eval=True``, so a config that only drops ``init_cfg`` falls into it.
"""
import inspect
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

ALLOW_KEY = 'allow_untrained_frozen_backbone'


def _has_weights(cfg) -> bool:
    if cfg.get('load_from'):
        return True
    model = cfg.get('model') or {}
    for init in (model.get('init_cfg'),
                 (model.get('backbone') or {}).get('init_cfg')):
        inits = init if isinstance(init, (list, tuple)) else [init]
        if any(isinstance(i, dict) and i.get('type') == 'Pretrained'
               and i.get('checkpoint') for i in inits):
            return True
    return bool((model.get('backbone') or {}).get('pretrained'))


def _default(backbone: dict, name: str):
    """The backbone class's default for an argument the config omits."""
    from mmdet.registry import MODELS
    try:
        cls = MODELS.get(backbone.get('type'))
        param = inspect.signature(cls.__init__).parameters.get(name)
    except (KeyError, TypeError, ValueError):
        return None
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def untrained_frozen_backbone(cfg) -> Optional[str]:
    """Why ``cfg`` freezes a backbone without weights, or None if it does not.

    Args:
        cfg: A full mmengine config (``model``, ``load_from``, ...).

    Returns:
        A message naming the config keys, or None when the backbone loads
        weights, freezes nothing, or ``allow_untrained_frozen_backbone``
        is set in the config.
    """
    backbone = (cfg.get('model') or {}).get('backbone')
    if not backbone or cfg.get(ALLOW_KEY) or _has_weights(cfg):
        return None
    frozen: List[str] = []
    norm_eval = backbone.get('norm_eval', _default(backbone, 'norm_eval'))
    if norm_eval:
        frozen.append('model.backbone.norm_eval=True')
    stages = backbone.get('frozen_stages',
                          _default(backbone, 'frozen_stages'))
    if isinstance(stages, int) and stages >= 0:
        frozen.append(f'model.backbone.frozen_stages={stages}')
    norm_cfg = backbone.get('norm_cfg', _default(backbone, 'norm_cfg'))
    if isinstance(norm_cfg, dict) and norm_cfg.get('requires_grad') is False:
        frozen.append('model.backbone.norm_cfg.requires_grad=False')
    if not frozen:
        return None
    return (f'{" and ".join(frozen)} without pretrained weights (no '
            f'model.backbone.init_cfg of type Pretrained, no load_from): '
            f'BN would not normalise and frozen layers would stay random. '
            f'Load weights, or train the backbone (norm_eval=False, '
            f'frozen_stages=-1, requires_grad=True, or GN/SyncBN), or set '
            f'{ALLOW_KEY}=True to run it anyway')


@HOOKS.register_module()
class BackboneInitCheckHook(Hook):
    """Stop before training when the config freezes an untrained backbone.

    The same check ``run_grid.py`` runs while planning, for users of
    mmdet's ``tools/train.py``.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        problem = untrained_frozen_backbone(runner.cfg)
        if problem:
            raise ValueError(problem)
