"""Every initial weight a run reads, where it will read it, and whether it
is there (issue 37).

On a compute node without internet a missing ImageNet backbone otherwise
surfaces 12 s into training as ``URLError during train: <urlopen error
...>``, naming neither the config nor the key. The planner asks
:func:`weight_sources` for each run before anything starts and refuses with
one line per missing file (:func:`refusal`); ``tools/fetch_weights.py``
downloads the same list on a node with internet.

Each source is resolved as the loader that reads it will resolve it:

- ``open-mmlab://``, ``openmmlab://``, ``torchvision://``, ``modelzoo://``,
  ``mmcls://`` and ``http(s)://``: mmengine's ``CheckpointLoader`` maps the
  name to a URL (its ``hub/*.json`` tables) and ``torch.hub`` keeps the file
  in ``torch.hub.get_dir()/checkpoints/<file name>`` (``TORCH_HOME``);
- ``timm://<model>[.<tag>]`` (VoVNet only): the Hugging Face cache
  (``HF_HUB_CACHE`` / ``HF_HOME``), read by
  ``mmdet_plugins/converters/vovnet.py`` without importing timm;
- a path: from the checkout (runs start there), then under the
  ``init_cfg``'s ``root`` (VoVNet's own fallback).

What a run reads follows the harness (``experiments/runner/train_run.py``):
a training run initialises its modules (every ``Pretrained`` ``init_cfg``
and ``pretrained`` string under ``model``) and ignores ``load_from`` (it
resumes from its own work dir instead); an ``evaluate_only`` run loads
``load_from`` and initialises nothing.
"""
import dataclasses
import os
import os.path as osp
import re
from typing import (TYPE_CHECKING, Any, Dict, Iterator, List, Optional,
                    Sequence, Tuple)
from urllib.parse import urlparse

from mmengine.config import Config

from experiments.store import project_path

if TYPE_CHECKING:
    from experiments.grid.spec import RunSpec

TIMM_PREFIX = 'timm://'
# timm's default pretrained tag of the models a VoVNet config may name
# (timm/models/vovnet.py, default_cfgs): the Hugging Face repo is
# timm/<model>.<tag>. Read here because timm does not import without
# torchvision on the CPU machines.
TIMM_DEFAULT_TAGS = {
    'ese_vovnet19b_dw': 'ra_in1k',
    'ese_vovnet39b': 'ra_in1k',
    'ese_vovnet57b': 'ra4_e3600_r256_in1k',
}
# The official ImageNet classifiers the VoVNet configs read from
# checkpoints/ (docs/weights.md; links of centermask2's README).
_DROPBOX = 'https://dl.dropbox.com/s/{}/{}?dl=1'
KNOWN_DOWNLOADS = {name: _DROPBOX.format(key, name) for name, key in (
    ('vovnet19_ese_detectron2.pth', 'rptgw6stppbiw1u'),
    ('vovnet19_ese_slim_detectron2.pth', '8h5ybmi4ftbcom0'),
    ('vovnet19_ese_slim_dw_detectron2.pth', 'f3s7ospitqoals1'),
    ('vovnet39_ese_detectron2.pth', 'q98pypf96rhtd8y'),
    ('vovnet57_ese_detectron2.pth', '8xl0cb3jj51f45a'),
    ('vovnet99_ese_detectron2.pth', '1mlv31coewx8trd'),
)}
# Schemes mmengine resolves through its model-zoo tables to an http URL.
_ZOO_SCHEMES = ('open-mmlab://', 'openmmlab://', 'torchvision://',
                'modelzoo://', 'mmcls://')
# torch.hub's: a file name's "-<hex>." is a sha256 prefix it checks.
_HASH_REGEX = re.compile(r'-([a-f0-9]*)\.')


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """One initial weight a run reads.

    Attributes:
        config: The config file, as the grid names it.
        key: Dotted key of the value, e.g.
            ``model.backbone.init_cfg.checkpoint``.
        url: The value as written in the config.
        cache_path: The file the run will read (for ``timm://``, the
            Hugging Face repo folder); ``''`` when the name is unknown to
            mmengine's model zoo.
        available: Whether that file is there now.
        sha256: The sha256 prefix the source publishes in its file name
            (torch hub's ``-<hex>.`` convention), else None.
        download_url: Where ``tools/fetch_weights.py`` fetches it from
            (the zoo name resolved); None for a local file.
    """

    config: str
    key: str
    url: str
    cache_path: str
    available: bool
    sha256: Optional[str] = None
    download_url: Optional[str] = None


def known_download(path: str) -> Optional[str]:
    """Where a local checkpoint a config names is published, if known."""
    return KNOWN_DOWNLOADS.get(osp.basename(path))


def torch_hub_checkpoints() -> str:
    """``torch.hub``'s checkpoint folder as mmengine's ``load_url`` uses
    it (``TORCH_HOME`` is read at each call)."""
    import torch.hub
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def hf_hub_cache() -> str:
    """The Hugging Face hub cache folder (as
    ``mmdet_plugins/converters/vovnet.py`` reads it)."""
    return os.environ.get('HF_HUB_CACHE') or osp.join(
        os.environ.get('HF_HOME', osp.expanduser('~/.cache/huggingface')),
        'hub')


def use_weights_cache(folder: str) -> str:
    """Make ``folder`` the cache of this process and of the runs it
    starts (they inherit its environment): torch hub files in
    ``<folder>/hub/checkpoints``, Hugging Face files in ``<folder>/hub``.

    Returns:
        The folder, absolute (relative to the checkout).
    """
    folder = project_path(osp.expanduser(folder))
    os.environ['TORCH_HOME'] = folder
    os.environ['HF_HUB_CACHE'] = osp.join(folder, 'hub')
    return folder


def zoo_url(name: str) -> Optional[str]:
    """The http URL (or mmengine-home file) mmengine maps a zoo name to.

    Returns:
        None when mmengine's tables do not know the name.
    """
    import mmengine
    from mmengine.fileio import load
    from mmengine.runner import checkpoint as ckpt
    if name.startswith(('open-mmlab://', 'openmmlab://')):
        model = name.split('://', 1)[1]
        model = ckpt.get_deprecated_model_names().get(model, model)
        return ckpt.get_external_models().get(model)
    if name.startswith('mmcls://'):
        return ckpt.get_mmcls_models().get(name.split('://', 1)[1])
    model = name.split('://', 1)[1]
    # mmengine's own table of torchvision URLs; its newer names need
    # torchvision itself, which the CPU machines lack.
    table = load(osp.join(mmengine.__path__[0], 'hub',
                          'torchvision_0.12.json'))
    if model in table:
        return table[model]
    try:
        return ckpt.get_torchvision_models().get(model)
    except ImportError:
        return None


def _timm_source(name: str) -> Tuple[str, bool, Optional[str]]:
    """Cache path, availability and download URL of ``timm://<name>``."""
    from mmdet_plugins.converters.vovnet import timm_cached_file
    try:
        cached = timm_cached_file(name)
    except ValueError:
        # Several tags cached: the loader refuses the run with its own
        # message; the file is there.
        return osp.join(hf_hub_cache(), f'models--timm--{name}'), True, None
    model, _, tag = name.partition('.')
    tag = tag or TIMM_DEFAULT_TAGS.get(model)
    repo = f'{model}.{tag}' if tag else model
    if cached:
        return cached, True, None
    path = osp.join(hf_hub_cache(), f'models--timm--{repo}', 'snapshots',
                    'main', 'model.safetensors')
    url = (f'https://huggingface.co/timm/{repo}/resolve/main/'
           f'model.safetensors') if tag else None
    return path, False, url


def resolve_source(config: str, key: str, value: str,
                   root: Optional[str] = None) -> WeightSource:
    """Where the loader of ``value`` will read it, and whether it is
    there.

    Args:
        config: The config file (for messages).
        key: The dotted key holding ``value``.
        value: A checkpoint as a config writes it.
        root: VoVNet's ``init_cfg.root``: a second folder for a relative
            path.
    """
    if value.startswith(TIMM_PREFIX):
        path, available, url = _timm_source(value[len(TIMM_PREFIX):])
        return WeightSource(config, key, value, path, available, None, url)
    url = zoo_url(value) if value.startswith(_ZOO_SCHEMES) else value
    if url is None:
        return WeightSource(config, key, value, '', False)
    if url.startswith(('http://', 'https://')):
        name = osp.basename(urlparse(url).path)
        path = osp.join(torch_hub_checkpoints(), name)
        match = _HASH_REGEX.search(name)
        return WeightSource(config, key, value, path, osp.isfile(path),
                            match.group(1) if match else None, url)
    if value.startswith(_ZOO_SCHEMES):
        # open-mmlab names mapped to a file under mmengine's home.
        from mmengine.runner.checkpoint import _get_mmengine_home
        path = osp.join(_get_mmengine_home(), url)
        return WeightSource(config, key, value, path, osp.isfile(path))
    path = project_path(osp.expanduser(url))
    if not osp.isfile(path) and root is not None and not osp.isabs(url):
        path = osp.join(root, url)
    return WeightSource(config, key, value, path, osp.isfile(path),
                        None, known_download(url))


def _initial_weights(node: Any, path: str
                     ) -> Iterator[Tuple[str, str, Optional[str]]]:
    """``(dotted key, value, root)`` of every pretrained weight under
    ``node``: ``Pretrained`` ``init_cfg``s and ``pretrained`` strings."""
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and isinstance(
                node.get('checkpoint'), str):
            yield f'{path}.checkpoint', node['checkpoint'], node.get('root')
        for key, value in node.items():
            if key == 'pretrained' and isinstance(value, str):
                yield f'{path}.{key}', value, None
            else:
                yield from _initial_weights(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _initial_weights(value, f'{path}.{i}')


def weight_sources(cfg: Config, config_path: str) -> List[WeightSource]:
    """Every initial weight a run of ``cfg`` reads (see the module doc).

    Args:
        cfg: The run's config after the grid's overrides.
        config_path: The config file, as the grid names it.

    Returns:
        One :class:`WeightSource` per key, in config order.
    """
    if cfg.get('evaluate_only'):
        return [resolve_source(config_path, 'load_from', cfg.load_from)] \
            if cfg.get('load_from') else []
    return [resolve_source(config_path, key, value, root)
            for key, value, root in _initial_weights(
                cfg.to_dict().get('model'), 'model')]


def run_weight_sources(run: 'RunSpec', where: str) -> List[WeightSource]:
    """The initial weights of one grid run, without its dataset.

    Its config is the planner's (the file, the grid's overrides, then
    ``--cfg-options``) less what the dataset and the placement set, which
    change no weight.

    Raises:
        GridSpecError: An override names a path the config lacks.
        ConfigBuildError: The config file is missing or does not parse.
    """
    from experiments.grid.run_config import apply_overrides, load_run_config
    cfg = load_run_config(run, where)
    apply_overrides(cfg, run.overrides, where)
    apply_overrides(cfg, run.cfg_options, f'{where} --cfg-options')
    return weight_sources(cfg, run.config)


def refusal(source: WeightSource, grid: str) -> str:
    """The planner's one line for a missing weight."""
    if not source.cache_path:
        return (f'{source.config}: {source.key} = {source.url} is not a '
                f'name mmengine\'s model zoo knows')
    return (f'{source.config}: {source.key} = {source.url} is not in '
            f'{source.cache_path}; run tools/fetch_weights.py {grid} on a '
            f'node with internet (or --random-init-missing-weights)')


def _parent(cfg: Config, key: str) -> Tuple[Any, str]:
    """The container holding the last component of ``key``, and it."""
    node: Any = cfg
    parts = key.split('.')
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, parts[-1]


def _key_order(source: WeightSource) -> list:
    # List indices compare as numbers (init_cfg.10 after init_cfg.2).
    return [(0, int(p), '') if p.isdigit() else (1, 0, p)
            for p in source.key.split('.')]


def drop_unavailable_weights(cfg: Config,
                             sources: Sequence[WeightSource]) -> List[str]:
    """Replace each unavailable initial weight by random init in ``cfg``
    (in place); return the dotted keys replaced.

    A ``Pretrained`` ``init_cfg`` is removed, so the module takes its own
    default initialisation (mmdet's ResNet: Kaiming and BN constants;
    VoVNet: Kaiming); an element of an ``init_cfg`` list is removed from the
    list; ``pretrained`` and ``load_from`` become None. The config records
    what was replaced in ``random_init_weights`` (key -> value: the run's
    ``weights`` says so, and the run id differs from the pretrained run's)
    and sets ``allow_untrained_frozen_backbone``: the backbone keeps the
    frozen stages and BN of the real recipe, knowingly.
    """
    replaced: Dict[str, str] = {}
    # Deepest and last first, so a list index removed does not shift
    # another key still to be removed.
    for source in sorted((s for s in sources if not s.available),
                         key=_key_order, reverse=True):
        parent, last = _parent(cfg, source.key)
        if last == 'checkpoint':
            holder, init_key = _parent(cfg, source.key.rsplit('.', 1)[0])
            if isinstance(holder, list):
                del holder[int(init_key)]
            else:
                holder.pop(init_key)
        else:
            parent[last] = None
        replaced[source.key] = source.url
    if replaced:
        cfg.random_init_weights = dict(
            sorted({**(cfg.get('random_init_weights') or {}),
                    **replaced}.items()))
        from mmdet_plugins.engine.backbone_init_check import ALLOW_KEY
        cfg[ALLOW_KEY] = True
    return sorted(replaced)
