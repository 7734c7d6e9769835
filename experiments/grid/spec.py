"""Grid specifications: models x arms x datasets x seeds, from YAML.

A grid file::

    name: smoke                      # default: the file's stem
    description: ...
    work_dir: work_dirs/smoke        # default: work_dirs/<name>
    models:                          # name -> config (path or mapping)
      mask_rcnn: configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py
      centermask:
        config: configs/...py
        overrides: {train_cfg.max_iters: 100}
        total_batch: 16              # per model, like the keys below
    arms:                            # default: one arm "default"
      default: {}
      eq2:
        models: [centermask]         # default: every model
        overrides: {model.roi_head.mask_roi_extractor.mapping: eq2}
    datasets:                        # name -> built-in or COCO paths
      builtin: {synthetic: {num_train: 64, image_size: 128}}
      coco: {data_root: data/coco,
             train_ann: annotations/instances_train2017.json,
             train_img: train2017/,
             val_ann: annotations/instances_val2017.json,
             val_img: val2017/}
    seeds: [0, 1, 2]                 # default: [0]
    overrides: {train_cfg.max_iters: 200}   # applied to every run first
    total_batch: 16                  # images per optimizer step, all
                                     # processes together (default: the
                                     # config's paper_recipe)
    lr_scaling: none                 # none | linear | manual: how LR and
                                     # schedule follow another total batch
    processes: 2                     # processes per run (one per GPU, or
                                     # CPU processes with gloo); default:
                                     # every GPU given, 1 on CPU
    max_images_per_process: 2        # memory limit (default: the config's
                                     # train_dataloader.batch_size)
    tracker: tensorboard             # also log every run to TensorBoard,
                                     # mlflow or wandb (default: none)
    weights_cache: /shared/weights   # the runs read initial weights from
                                     # here (as TORCH_HOME and HF_HOME);
                                     # default: the user's caches

The total batch is the run's, whatever the hardware: the runner places it as
processes x images per process x gradient accumulation
(``experiments/grid/batch_recipe.py``), and refuses a run whose total batch
or LR
differs from its config's recipe unless ``lr_scaling`` names the rule.
``gpus`` is read as ``processes`` (its older name).

Overrides are mmengine ``--cfg-options`` style dotted keys. Precedence:
grid ``overrides`` < model ``overrides`` < arm ``overrides`` <
``run_grid.py --cfg-options`` (``experiments/grid/cfg_options.py``).

Relative paths are relative to the project root (the directory that holds
``experiments/``), so a grid means the same thing from any working directory.
A dataset's ``*_ann`` and ``*_img`` are joined to its ``data_root`` as
``os.path.join`` does: an absolute one (a subset file kept elsewhere) is
used as given, by the planning check, the dataloaders and the evaluator.
"""
import dataclasses
import os.path as osp
from typing import Any, Dict, List, Optional

import yaml

from experiments.store.layout import run_label

# Keys a grid may give at its top level or per model: the run's batch.
_BATCH_KEYS = {'total_batch', 'lr_scaling', 'processes', 'gpus',
               'max_images_per_process'}
_TOP_KEYS = {'name', 'description', 'work_dir', 'models', 'arms', 'datasets',
             'seeds', 'overrides', 'tracker', 'weights_cache'} | _BATCH_KEYS
# Live tracking: mmengine's visualisation backend each value adds to every
# run's visualizer (LocalVisBackend, which the report reads, always stays).
TRACKERS = {'none': None, 'tensorboard': 'TensorboardVisBackend',
            'mlflow': 'MLflowVisBackend', 'wandb': 'WandbVisBackend'}
_MODEL_KEYS = {'config', 'overrides'} | _BATCH_KEYS
LR_SCALING = ('none', 'linear', 'manual')
_ARM_KEYS = {'models', 'overrides', 'description'}
_COCO_KEYS = {'data_root', 'train_ann', 'train_img', 'val_ann', 'val_img',
              'classes'}
_COCO_REQUIRED = {'train_ann', 'train_img', 'val_ann', 'val_img'}


class GridSpecError(ValueError):
    """A grid file is malformed; the message names the file and the key."""




@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a grid: built-in (``synthetic``) or COCO paths."""

    name: str
    synthetic: Optional[Dict[str, Any]] = None
    data_root: str = ''
    train_ann: str = ''
    train_img: str = ''
    val_ann: str = ''
    val_img: str = ''
    classes: Optional[tuple] = None


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One cell of the grid, before its config is resolved."""

    grid: str
    model: str
    arm: str
    dataset: str
    seed: int
    config: str
    overrides: Dict[str, Any]
    total_batch: Optional[int] = None
    lr_scaling: str = 'none'
    processes: Optional[int] = None
    max_images_per_process: Optional[int] = None
    # The arm's ``description`` from the grid file (recorded in run.json).
    description: str = ''
    # The command line's ``--cfg-options``, applied after ``overrides``
    # (experiments/grid/cfg_options.py; recorded in run.json).
    cfg_options: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        return run_label(self.model, self.arm, self.dataset, self.seed)


@dataclasses.dataclass
class GridSpec:
    """A parsed grid file."""

    path: str
    name: str
    description: str
    work_dir: str
    models: Dict[str, Dict[str, Any]]
    arms: Dict[str, Dict[str, Any]]
    datasets: Dict[str, DatasetSpec]
    seeds: List[int]
    overrides: Dict[str, Any]
    tracker: str = 'none'
    # Where the runs read initial weights (experiments/plan/weights_check.py
    # use_weights_cache); '' for the user's own caches.
    weights_cache: str = ''

    def expand(self) -> List[RunSpec]:
        """Every run of the grid, in model, arm, dataset, seed order."""
        runs = []
        for model, mspec in self.models.items():
            for arm, aspec in self.arms.items():
                if aspec.get('models') and model not in aspec['models']:
                    continue
                overrides = {**self.overrides, **mspec.get('overrides', {}),
                             **aspec.get('overrides', {})}
                for dataset in self.datasets:
                    for seed in self.seeds:
                        runs.append(RunSpec(
                            grid=self.name, model=model, arm=arm,
                            dataset=dataset, seed=seed,
                            config=mspec['config'], overrides=overrides,
                            description=aspec.get('description', ''),
                            **mspec['batch']))
        return runs


def _mapping(value, where: str, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GridSpecError(f'{path}: "{where}" must be a mapping, got '
                            f'{type(value).__name__}')
    return value


def _check_keys(value: dict, allowed: set, where: str, path: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise GridSpecError(
            f'{path}: unknown key "{where}{unknown[0]}"'
            f' (allowed: {", ".join(sorted(allowed))})')


def _overrides(value, where: str, path: str) -> dict:
    value = _mapping(value, where, path)
    for key in value:
        if not isinstance(key, str) or not key:
            raise GridSpecError(f'{path}: "{where}" has a non-string key '
                                f'{key!r}')
    return value


def _positive(value, where: str, path: str) -> Optional[int]:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GridSpecError(f'{path}: "{where}" must be a positive integer, '
                            f'got {value!r}')
    return value


def _batch(value: dict, where: str, path: str, inherited: dict) -> dict:
    """The batch keys of a grid (``where`` = '') or of one model."""
    if 'gpus' in value and 'processes' in value:
        raise GridSpecError(f'{path}: "{where}gpus" and "{where}processes" '
                            f'are one setting; give "processes"')
    out = dict(inherited)
    for key, name in (('total_batch', 'total_batch'),
                      ('max_images_per_process', 'max_images_per_process'),
                      ('processes', 'processes'), ('gpus', 'processes')):
        if key in value:
            out[name] = _positive(value[key], where + key, path)
    if 'lr_scaling' in value:
        if value['lr_scaling'] not in LR_SCALING:
            raise GridSpecError(
                f'{path}: "{where}lr_scaling" must be one of '
                f'{", ".join(LR_SCALING)}, got {value["lr_scaling"]!r}')
        out['lr_scaling'] = value['lr_scaling']
    return out


def _dataset(name: str, value, path: str) -> DatasetSpec:
    where = f'datasets.{name}'
    value = _mapping(value, where, path)
    if 'synthetic' in value:
        _check_keys(value, {'synthetic'}, where + '.', path)
        return DatasetSpec(name=name, synthetic=_mapping(
            value['synthetic'], where + '.synthetic', path))
    _check_keys(value, _COCO_KEYS, where + '.', path)
    missing = sorted(_COCO_REQUIRED - set(value))
    if missing:
        raise GridSpecError(f'{path}: "{where}" needs "synthetic" or COCO '
                            f'paths; missing "{where}.{missing[0]}"')
    classes = value.get('classes')
    return DatasetSpec(
        name=name, data_root=str(value.get('data_root', '')),
        train_ann=str(value['train_ann']), train_img=str(value['train_img']),
        val_ann=str(value['val_ann']), val_img=str(value['val_img']),
        classes=tuple(classes) if classes else None)


def load_grid(path: str) -> GridSpec:
    """Parse and validate a grid file.

    Raises:
        GridSpecError: For an unreadable file, an unknown key, a wrong type
            or a missing required entry, naming the file and the key.
    """
    if not osp.isfile(path):
        raise GridSpecError(f'{path}: grid file does not exist')
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise GridSpecError(f'{path}: not valid YAML ({e})') from None
    raw = _mapping(raw, '<top level>', path)
    _check_keys(raw, _TOP_KEYS, '', path)

    name = str(raw.get('name') or osp.splitext(osp.basename(path))[0])
    batch = _batch(raw, '', path, dict(
        total_batch=None, lr_scaling='none', processes=None,
        max_images_per_process=None))
    models = {}
    for model, value in _mapping(raw.get('models'), 'models', path).items():
        if isinstance(value, str):
            value = {'config': value}
        value = _mapping(value, f'models.{model}', path)
        _check_keys(value, _MODEL_KEYS, f'models.{model}.', path)
        if 'config' not in value:
            raise GridSpecError(f'{path}: "models.{model}" is missing '
                                f'"config"')
        models[str(model)] = dict(
            config=str(value['config']),
            overrides=_overrides(value.get('overrides'),
                                 f'models.{model}.overrides', path),
            batch=_batch(value, f'models.{model}.', path, batch))
    if not models:
        raise GridSpecError(f'{path}: "models" is empty or missing')

    arms = {}
    for arm, value in _mapping(raw.get('arms', {'default': {}}), 'arms',
                               path).items():
        value = _mapping(value, f'arms.{arm}', path)
        _check_keys(value, _ARM_KEYS, f'arms.{arm}.', path)
        only = value.get('models') or []
        for model in only:
            if model not in models:
                raise GridSpecError(f'{path}: "arms.{arm}.models" names '
                                    f'unknown model "{model}"')
        arms[str(arm)] = dict(
            models=list(only),
            description=str(value.get('description') or '').strip(),
            overrides=_overrides(value.get('overrides'),
                                 f'arms.{arm}.overrides', path))

    datasets = {str(n): _dataset(str(n), v, path) for n, v in
                _mapping(raw.get('datasets'), 'datasets', path).items()}
    if not datasets:
        raise GridSpecError(f'{path}: "datasets" is empty or missing')

    seeds = raw.get('seeds', [0])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise GridSpecError(f'{path}: "seeds" must be a non-empty list of '
                            f'integers, got {seeds!r}')
    for i, seed in enumerate(seeds):
        # numpy's seed range, which mmengine's set_random_seed passes on.
        if not 0 <= seed < 2**32:
            raise GridSpecError(f'{path}: "seeds[{i}]" = {seed} is outside '
                                f'0 .. 2**32 - 1')
        if seed in seeds[:i]:
            raise GridSpecError(f'{path}: "seeds[{i}]" = {seed} repeats '
                                f'seeds[{seeds.index(seed)}]: the same run '
                                f'would be listed twice')
    tracker = raw.get('tracker', 'none')
    if tracker not in TRACKERS:
        raise GridSpecError(f'{path}: "tracker" must be one of '
                            f'{", ".join(TRACKERS)}, got {tracker!r}')
    return GridSpec(
        path=osp.abspath(path), name=name, tracker=tracker,
        weights_cache=str(raw.get('weights_cache') or ''),
        description=str(raw.get('description', '')),
        work_dir=str(raw.get('work_dir') or f'work_dirs/{name}'),
        models=models, arms=arms, datasets=datasets, seeds=list(seeds),
        overrides=_overrides(raw.get('overrides'), 'overrides', path))
