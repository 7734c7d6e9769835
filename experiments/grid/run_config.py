"""Resolve one grid run into an mmengine ``Config`` and its stable id."""
import copy
import functools
import hashlib
import json
import os.path as osp
from typing import Any, Dict, Tuple

from mmengine.config import Config, ConfigDict

from experiments.data.prepare import PreparedDataset
from experiments.grid.batch_recipe import (
    RecipeError,
    RunRecipe,
    apply_run_recipe,
)
from experiments.grid.config_check import config_problems
from experiments.grid.schedule_check import schedule_problems
from experiments.grid.spec import GridSpecError, RunSpec
from experiments.store import project_path


class ConfigBuildError(ValueError):
    """A run's config does not load, take its overrides, or build."""


def walk_to_parent(cfg: Config, key: str):
    """The container holding the last component of dotted ``key``.

    Raises:
        KeyError: naming the first component that does not exist.
    """
    node: Any = cfg
    parts = key.split('.')
    for depth, part in enumerate(parts[:-1]):
        prefix = '.'.join(parts[:depth + 1])
        if isinstance(node, (dict, ConfigDict, Config)) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(prefix)
    return node


def apply_overrides(cfg: Config, overrides: Dict[str, Any],
                    where: str) -> None:
    """Merge dotted-key overrides into ``cfg``, refusing misspelt paths.

    Every component but the last must exist in the config (so a typo such as
    ``model.backbon.depth`` is an error); the last may be new, because
    plugin modules take arguments the base config does not list.
    """
    for key in overrides:
        try:
            walk_to_parent(cfg, key)
        except KeyError as e:
            raise GridSpecError(
                f'{where}: override "{key}": "{e.args[0]}" does not exist in '
                f'the config') from None
    cfg.merge_from_dict(dict(overrides), allow_list_keys=True)


def _innermost_dataset(dataset_cfg: dict) -> dict:
    # Wrappers (RepeatDataset, ClassBalancedDataset, ...) nest the real one.
    while isinstance(dataset_cfg.get('dataset'), dict):
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def _set_num_classes(node: Any, num_classes: int) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes':
                node[key] = num_classes
            else:
                _set_num_classes(value, num_classes)
    elif isinstance(node, list):
        for value in node:
            _set_num_classes(value, num_classes)


def set_dataset(cfg: Config, dataset: PreparedDataset) -> None:
    """Point every dataloader and evaluator at ``dataset``.

    Also sets every ``num_classes`` under ``cfg.model`` to the dataset's
    number of classes, so one model config serves COCO and the built-in set.

    The dataloaders get ``data_root`` and the grid's paths, which mmengine
    joins as :meth:`PreparedDataset.path` does (an absolute path stays
    absolute); the evaluators get that path itself, so both open the file
    the planning check read.
    """
    root = dataset.data_root.rstrip('/') + '/'
    splits = {'train_dataloader': ('train_ann', 'train_img'),
              'val_dataloader': ('val_ann', 'val_img'),
              'test_dataloader': ('val_ann', 'val_img')}
    for loader, (ann, img) in splits.items():
        if cfg.get(loader) is None:
            continue
        ds = _innermost_dataset(cfg[loader]['dataset'])
        ds['data_root'] = root
        ds['ann_file'] = getattr(dataset, ann)
        ds['data_prefix'] = dict(img=getattr(dataset, img))
        ds['metainfo'] = dict(classes=tuple(dataset.classes))
    for name in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(name)
        if evaluators is None:
            continue
        for ev in evaluators if isinstance(evaluators, list) else [
                evaluators]:
            if 'ann_file' in ev or ev.get('type') == 'CocoMetric':
                ev['ann_file'] = osp.join(root, dataset.val_ann)
    _set_num_classes(cfg.model, len(dataset.classes))


# Set by the run's placement (experiments/grid/batch_recipe.py), never by hand:
# a grid says total_batch / max_images_per_process / lr_scaling instead.
PLACEMENT_KEYS = ('train_dataloader.batch_size',
                  'optim_wrapper.accumulative_counts', 'auto_scale_lr')


def unformatted(cfg: Config) -> Config:
    """``cfg`` with yapf formatting of its text turned off (in place).

    mmengine formats ``Config.pretty_text`` with yapf, 0.5-1 s a call on our
    configs, and its Runner asks for that text when it starts (the logged
    and the dumped config) and at every checkpoint (``meta.cfg``): a tiny
    run checkpointing every iteration spent more time in yapf than in
    training. The unformatted text is the same Python, one value a line.
    ``Config.fromfile(..., format_python_code=False)`` should do this, but
    mmengine 0.10.7 drops that argument for a config that is not lazy.
    """
    object.__setattr__(cfg, '_format_python_code', False)
    return cfg


@functools.lru_cache(maxsize=64)
def _load(path: str, mtime: float) -> Config:
    # A grid resolves one config for many arms and seeds: parsed once.
    # Keyed by mtime too, so an edited file is read again.
    return Config.fromfile(path)


def load_run_config(run: RunSpec, where: str) -> Config:
    """A copy of the run's config file as parsed, before any override.

    Raises:
        ConfigBuildError: The file is missing or does not parse.
    """
    path = project_path(run.config)
    try:
        return copy.deepcopy(_load(path, osp.getmtime(path)))
    except FileNotFoundError:
        raise ConfigBuildError(f'{where}: config file does not exist') \
            from None
    except Exception as e:  # noqa: BLE001 -- report any parse failure
        raise ConfigBuildError(f'{where}: config does not load: '
                               f'{type(e).__name__}: {e}') from None


def resolve_config(run: RunSpec, dataset: PreparedDataset,
                   grid_path: str, devices: int = 1) -> Config:
    """The full config of one run (without its work dir); see
    :func:`resolve_run`."""
    return resolve_run(run, dataset, grid_path, devices)[0]


def resolve_run(run: RunSpec, dataset: PreparedDataset, grid_path: str,
                devices: int = 1) -> Tuple[Config, RunRecipe]:
    """The full config of one run (without its work dir), its total batch
    placed on its processes (``run.processes``, or as many of ``devices`` as
    split it), and its recipe.

    Raises:
        ConfigBuildError: The config file is missing or does not parse.
        GridSpecError: An override names a path the config does not have,
            sets what the placement sets, or the run's total batch or LR
            differs from its config's recipe (one line naming both).
    """
    where = f'{grid_path}: run {run.label} ({run.config})'
    cfg = load_run_config(run, where)
    for key in {**run.overrides, **run.cfg_options}:
        if any(key == k or key.startswith(k + '.') for k in PLACEMENT_KEYS):
            raise GridSpecError(
                f'{where}: override "{key}": the run\'s placement sets it; '
                f'give the grid\'s total_batch (images per optimizer step), '
                f'max_images_per_process or lr_scaling instead')
    apply_overrides(cfg, run.overrides, where)
    # The command line's --cfg-options, after the grid's overrides.
    apply_overrides(cfg, run.cfg_options, f'{where} --cfg-options')
    problems = schedule_problems(cfg)
    if problems:
        raise GridSpecError(f'{where}: ' + '; '.join(problems))
    try:
        recipe = apply_run_recipe(
            cfg, run.total_batch, run.lr_scaling, run.processes,
            run.max_images_per_process, devices)
    except RecipeError as e:
        raise GridSpecError(f'{where}: {e}') from None
    if cfg.get('evaluate_only'):
        checkpoint = cfg.get('load_from')
        if not checkpoint:
            raise ConfigBuildError(
                f'{where}: evaluate_only needs load_from, a checkpoint with '
                f'this project\'s keys (tools/convert_official_checkpoint.py '
                f'converts the official ones)')
        if not osp.isfile(project_path(checkpoint)):
            raise ConfigBuildError(f'{where}: load_from "{checkpoint}" does '
                                   f'not exist')
        cfg.load_from = project_path(checkpoint)
    set_dataset(cfg, dataset)
    cfg.randomness = dict(seed=run.seed, deterministic=False)
    if recipe.placement.processes > 1:
        # mmengine's default DDP wrapper cannot hold a CPU model; buffers
        # (BN statistics, the self-adjusting smooth L1's running mean and
        # variance) stay per process, as in maskrcnn-benchmark, detectron2
        # and mmengine (broadcast_buffers=False in all three).
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('type', 'AnyDeviceDistributedDataParallel')
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
    cfg.pop('work_dir', None)
    # The child trains from the dumped config.py; a value Python source
    # cannot spell (nan, inf, an object) must fail here, not in the child.
    try:
        Config.fromstring(unformatted(copy.copy(cfg)).pretty_text, '.py')
    except Exception as e:  # noqa: BLE001
        raise ConfigBuildError(f'{where}: the resolved config cannot be '
                               f'written as a Python config: '
                               f'{type(e).__name__}: {e}') from None
    return cfg, recipe


def weights_source(cfg: Config) -> str:
    """What a run starts from, for its results row.

    ``evaluated: <checkpoint>`` for an evaluation-only run, ``random init
    (not in the cache: <checkpoint>)`` for one whose weights were missing,
    ``backbone: <checkpoint>`` for a backbone's pretrained weights, else
    ``from scratch``.
    """
    if cfg.get('evaluate_only'):
        return f'evaluated: {cfg.load_from}'
    if cfg.get('random_init_weights'):
        # run_grid.py --random-init-missing-weights (weights_check.py).
        return 'random init (not in the cache: ' + ', '.join(
            cfg.random_init_weights.values()) + ')'
    init = (cfg.model.get('backbone') or {}).get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        return f'backbone: {init["checkpoint"]}'
    return 'from scratch'


def config_hash(cfg: Config) -> str:
    """Stable id of a resolved config: sha1 of its canonical JSON, 12 hex."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def register_types(cfg: Config) -> None:
    """Register mmdet's modules and import the config's
    ``custom_imports`` (the plugins), so its types can be looked up."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)


def check_model_builds(cfg: Config, where: str) -> int:
    """Check the backbone's initialisation, build ``cfg.model`` once, and
    return its parameter count.

    Raises:
        ConfigBuildError: With the builder's message, naming the run.
    """
    from mmdet.registry import MODELS

    # Here, not in resolve_config: mmdet_plugins imports mmdet, and a
    # runner restarting started runs must plan in seconds without it.
    from mmdet_plugins.engine.backbone_init_check import (
        untrained_frozen_backbone,
    )
    register_types(cfg)
    problems = config_problems(cfg)
    if problems:
        raise ConfigBuildError(f'{where}: ' + '; '.join(problems))
    problem = untrained_frozen_backbone(cfg)
    if problem:
        raise ConfigBuildError(f'{where}: {problem}')
    try:
        model = MODELS.build(cfg.model)
    except Exception as e:  # noqa: BLE001 -- any build failure is reported
        raise ConfigBuildError(f'{where}: model does not build: '
                               f'{type(e).__name__}: {e}') from None
    if cfg.get('evaluate_only'):
        # An evaluation of the wrong weights must not start: mmengine's
        # load_from skips keys that do not fit, silently.
        from mmdet_plugins.export.checkpoint import (
            CheckpointMismatchError,
            load_weights,
        )
        try:
            load_weights(model, cfg.load_from, 'the run\'s config',
                         allow_partial=bool(
                             cfg.get('allow_partial_checkpoint')))
        except CheckpointMismatchError as e:
            raise ConfigBuildError(
                f'{where}: {e}; set allow_partial_checkpoint: true in the '
                f'run\'s overrides to load only the keys that fit') from None
    return sum(p.numel() for p in model.parameters())
