"""``run_grid.py --cfg-options KEY=VALUE ...``: try a change without editing
a grid.

The options are read as MMDetection's tools read them (mmengine's
``DictAction``: ``model.roi_head.bbox_head.loss_cls.loss_weight=2``,
``optim_wrapper.optimizer.lr=0.01``, lists as ``a=1,2`` or ``a=[1,2]``) and
apply to every selected run after the grid's overrides. Each run records
them in ``run.json`` (``cfg_options``, beside ``overrides``); they change the
resolved config, so the run id and the run dir differ from the run without
them.

Every key is checked against every selected run's config (with the grid's
overrides) before anything runs; a key that does not fit is refused in one
line naming it: a path the config does not have, an argument the type does
not take, a new key one typo away from an existing one, or a value the
harness sets itself (the placement, the dataset, the seed, the work dir).
"""
import argparse
import dataclasses
import difflib
from typing import Any, Dict, List, Optional

from mmengine.config import Config, DictAction

from experiments.grid.config_check import argument_problem
from experiments.grid.run_config import (
    PLACEMENT_KEYS,
    ConfigBuildError,
    apply_overrides,
    load_run_config,
    register_types,
    walk_to_parent,
)
from experiments.grid.spec import GridSpecError, RunSpec

# Keys the harness sets after the overrides (run_config.resolve_run): an
# option there would change nothing.
_HARNESS_SET = {
    'randomness': 'the grid\'s seeds set it',
    'work_dir': 'the runner sets each run\'s dir (--work-dir sets the '
                'grid\'s)',
}
_DATASET_KEYS = ('data_root', 'ann_file', 'data_prefix', 'metainfo')


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction``, with a usage error instead of a traceback
    for an item that is not ``KEY=VALUE``."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            key, eq, value = item.partition('=')
            balanced = value.count('(') == value.count(')') and \
                value.count('[') == value.count(']')
            if not (key and eq and balanced):
                parser.error(f'{option_string} {item!r}: give KEY=VALUE, '
                             f'e.g. train_cfg.max_iters=50')
        super().__call__(parser, namespace, values, option_string)


def add_cfg_options_argument(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options KEY=VALUE [KEY=VALUE ...]`` (into ``cfg_options``)."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction, default={},
        metavar='KEY=VALUE',
        help='override settings of every selected run\'s config, after the '
        'grid\'s overrides (mmengine DictAction syntax, as MMDetection\'s '
        'tools take it: train_cfg.max_iters=50 optim_wrapper.optimizer.'
        'lr=0.01); recorded in run.json and part of the run id')


def _harness_sets(key: str) -> Optional[str]:
    parts = key.split('.')
    if any(key == k or key.startswith(k + '.') for k in PLACEMENT_KEYS):
        return ('the run\'s placement sets it; give --processes-per-run, '
                '--max-images-per-process or the grid\'s total_batch / '
                'lr_scaling instead')
    if parts[0] in _HARNESS_SET:
        return _HARNESS_SET[parts[0]]
    if parts[0] == 'model' and 'num_classes' in parts:
        return 'set from the grid\'s dataset (its classes)'
    if parts[0].endswith(('_dataloader', '_evaluator')) and \
            any(p in _DATASET_KEYS for p in parts):
        return 'the grid\'s datasets set it'
    return None


def key_problem(cfg: Config, key: str) -> Optional[str]:
    """Why option ``key`` does not fit ``cfg``, or None.

    The path up to the last key must exist; the last key may be new when
    the type it is given to takes it as an argument (or, for a type
    without a known signature, when no existing key is one typo from it).
    """
    try:
        parent = walk_to_parent(cfg.to_dict(), key)
    except KeyError as e:
        # A misspelt path is named as such, unless the harness adds it.
        return _harness_sets(e.args[0]) or \
            f'"{e.args[0]}" does not exist in the config'
    harness = _harness_sets(key)
    if harness:
        return harness
    where, _, last = key.rpartition('.')
    if isinstance(parent, (list, tuple)):
        if last.isdigit() and int(last) < len(parent):
            return None
        return f'"{where}" is a list of {len(parent)}; "{last}" is no index'
    if not isinstance(parent, dict):
        return f'"{where}" is {parent!r}, not a mapping'
    if last in parent:
        return None
    if isinstance(parent.get('type'), str):
        register_types(cfg)
        problem = argument_problem(where, parent, last)
        if problem:
            return problem
    close = difflib.get_close_matches(last, [str(k) for k in parent], n=1,
                                      cutoff=0.8)
    if close:
        name = f'{where}.{close[0]}' if where else close[0]
        return (f'"{last}" is not in the config; did you mean "{name}"? (a '
                f'grid\'s overrides can add a new key this close to one)')
    return None


def cfg_option_problems(grid_path: str, runs: List[RunSpec],
                        options: Dict[str, Any]) -> List[str]:
    """One line per option key that does not fit some selected run.

    A run whose config or grid overrides do not load is left to the
    planning check, which names it.
    """
    bad: Dict[str, tuple] = {}
    seen: Dict[tuple, Dict[str, Optional[str]]] = {}
    for run in runs:
        signature = (run.config, repr(sorted(run.overrides.items())))
        if signature not in seen:
            try:
                cfg = load_run_config(run, grid_path)
                apply_overrides(cfg, run.overrides, grid_path)
            except (ConfigBuildError, GridSpecError):
                cfg = None
            seen[signature] = {
                key: None if cfg is None else key_problem(cfg, key)
                for key in options}
        for key, problem in seen[signature].items():
            if problem:
                bad.setdefault(key, (problem, []))[1].append(run.label)
    lines = []
    for key, (problem, labels) in bad.items():
        some = '' if len(labels) == len(runs) else (
            f' (in {len(labels)} of the {len(runs)} selected runs, e.g. '
            f'{labels[0]}; --only selects runs)')
        lines.append(f'--cfg-options "{key}": {problem}{some}')
    return lines


def with_cfg_options(grid_path: str, runs: List[RunSpec],
                     options: Dict[str, Any]) -> List[RunSpec]:
    """The runs with ``options`` to apply after their overrides.

    Raises:
        GridSpecError: One line naming each key that does not fit.
    """
    if not options:
        return runs
    problems = cfg_option_problems(grid_path, runs, options)
    if problems:
        raise GridSpecError('; '.join(problems) + '; nothing was run')
    return [dataclasses.replace(r, cfg_options=dict(options)) for r in runs]
