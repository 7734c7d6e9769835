"""Mutate every numeric leaf of every COCO config and see which tests notice.

    python tools/mutation_sweep.py                    # all 20 COCO configs
    python tools/mutation_sweep.py CONFIG... --json sweep.json

For each config, every int / float of the merged ``model``, ``train_cfg``,
``test_cfg``, ``optim_wrapper``, ``param_scheduler``, ``train_dataloader``,
``test_dataloader`` and ``paper_recipe`` (lists and tuples included: scales,
strides, milestones) is changed alone (x 2; 0 -> 1 or 0.5) and the pinning
checks run in this process on the mutated config:

- ``tables``: the official-values tables (``configs/official/*.yaml``,
  ``experiments/grid/official_values.py``);
- ``recipe_tests``: the pinning tests that take a config
  (``tests/test_configs_official_recipe.py``: optimizer groups on the tiny
  models, mask positive cap, Table 5 scales and schedules, RetinaMask's
  recipe; ``tests/test_experiments/test_grid/test_batch_recipe.py``: the
  declared recipe), each given the mutated config in place of the file.

A leaf is *caught* when a check fails. The tool prints the counts and every
leaf that stayed green; ``--json`` also lists, per config, the leaves that
only the tables catch (those the recipe tests alone leave green). Not in
CI (about three minutes on 2 cores); the counts of the last run are in
``docs/fidelity.md``.
"""
import argparse
import copy
import glob
import importlib.util
import json
import logging
import os.path as osp
import sys
from typing import Callable, Dict, List, Tuple

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if PROJECT not in sys.path:
    sys.path.insert(0, PROJECT)

RECIPE_TESTS = 'tests/test_configs_official_recipe.py'
BATCH_TESTS = 'tests/test_experiments/test_grid/test_batch_recipe.py'


def mutate(value):
    """The one change made to a leaf: x 2 (0 -> 1 for ints, 0.5 for
    floats)."""
    if isinstance(value, int):
        return value * 2 if value else 1
    return value * 2 if value else 0.5


def replaced(node, path: Tuple, value):
    """``node`` with the leaf at ``path`` replaced, copied along the path
    only (tuples stay tuples: some tests compare them as such)."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, key: replaced(node[key], rest, value)}
    items = list(node)
    items[key] = replaced(items[key], rest, value)
    return type(node)(items)


def _load(rel: str):
    spec = importlib.util.spec_from_file_location(
        rel.replace('/', '_')[:-3], osp.join(PROJECT, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recipe_checks(config: str) -> List[Tuple[str, Tuple[str, ...],
                                             Callable]]:
    """(name, sections it reads, check(cfg)) of the existing pinning tests
    that apply to ``config``; a check raises when its test would fail."""
    from experiments.grid import official_values as ov
    rec, batch = _load(RECIPE_TESTS), _load(BATCH_TESTS)
    checks = []

    def with_cfg(module, attr, cfg, fn):
        # The tests read their config through module-level loaders; give
        # them the mutated one for this config only.
        original = getattr(module, attr)
        if attr == '_cfg':
            patched = lambda path: cfg if path == config else original(path)  # noqa: E731,E501
        else:
            patched = type('PatchedConfig', (), {'fromfile': staticmethod(
                lambda path, *a, **k: copy.deepcopy(cfg) if osp.samefile(
                    path, osp.join(PROJECT, config)) else original.fromfile(
                        path, *a, **k))})
        setattr(module, attr, patched)
        try:
            fn()
        finally:
            setattr(module, attr, original)

    claims = dict(rec.CLAIMS)
    if config in claims:
        models = {}

        def optimizer(cfg):
            if not models:
                models.update({(k, f): rec._tiny_model(
                    f'configs/{k}/{k}_r18-tiny_fpn_builtin.py', f)
                    for k in ('centermask', 'retinamask')
                    for f in (True, False)})
            with_cfg(rec, '_cfg', cfg, lambda: rec.
                     test_optimizer_gives_each_parameter_the_official_lr_and_decay(  # noqa: E501
                         config, claims[config], models))
        checks.append(('optimizer groups', ('optim_wrapper', 'model'),
                       optimizer))
    if config in rec.CM_COCO:
        checks.append(('mask positive cap', ('model', ), lambda cfg: with_cfg(
            rec, '_cfg', cfg,
            lambda: rec.test_mask_positive_cap_is_the_claimed_codebases(
                config))))
    if config in rec.TABLE5_SOLVER:
        checks.append(('Table 5 schedule', ov.SECTIONS, lambda cfg: with_cfg(
            rec, '_cfg', cfg,
            lambda: rec.test_table5_configs_train_the_official_schedule(
                config))))
        arm = {'centermask': 'centermask_r50_2x', 'retinamask':
               'retinamask_r50_2x', 'mask_rcnn': 'mask_rcnn_r50_2x'}[
                   config.split('/')[1]]
        checks.append(('Table 5 scales', ('train_dataloader', ),
                       lambda cfg: with_cfg(
                           rec, '_cfg', cfg, lambda: rec.
                           test_table5_arms_train_at_the_official_scales(arm))))
    if config in (rec.RM_1X, rec.RN_RM):
        checks.append(('RetinaMask recipe', ov.SECTIONS, lambda cfg: with_cfg(
            rec, '_cfg', cfg,
            lambda: rec.test_retinamask_configs_pin_rms_recipe(config))))
    if config in batch.OFFICIAL:
        checks.append(('declared recipe', ov.SECTIONS, lambda cfg: with_cfg(
            batch, 'Config', cfg, lambda: batch.
            test_every_coco_config_declares_and_trains_the_official_recipe(
                config))))
    return checks


def _fails(check: Callable, cfg) -> bool:
    try:
        check(cfg)
    except Exception:  # noqa: BLE001 -- an error is a red test too
        return True
    return False


def sweep(config: str) -> Dict:
    """Counts and the green leaves of one config."""
    from experiments.grid import official_values as ov
    from mmengine.config import Config
    base = ov.as_dict(ov.load_config(config))
    rows = ov.load_rows(ov.table_path(config))
    checks = recipe_checks(config)
    clean = Config(copy.deepcopy(base))
    assert all(r['ok'] for r in ov.compare(base, rows)), config
    assert not [n for n, _, c in checks if _fails(c, clean)], config
    out = dict(config=config, leaves=0, tables=0, recipe_tests=0, green=[],
               green_without_tables=[])
    for path, value in list(ov.numeric_leaves(base)):
        cfg = replaced(base, path, mutate(value))
        by_tables = not all(r['ok'] for r in ov.compare(cfg, rows))
        wrapped = Config(cfg)
        by_tests = any(_fails(check, wrapped) for _, sections, check in checks
                       if path[0] in sections)
        out['leaves'] += 1
        out['tables'] += by_tables
        out['recipe_tests'] += by_tests
        name = '.'.join(map(str, path))
        if not by_tests:
            out['green_without_tables'].append(name)
        if not (by_tables or by_tests):
            out['green'].append(name)
    return out


def main() -> int:
    # The optimizer check builds optim wrappers: mmengine logs every group.
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*')
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args()
    configs = args.configs or sorted(
        osp.relpath(p, PROJECT) for p in glob.glob(
            osp.join(PROJECT, 'configs', '*', '*_coco*.py')))
    results = []
    for config in configs:
        r = sweep(config)
        results.append(r)
        print(f'{config}: {r["leaves"]} leaves, caught by the tables '
              f'{r["tables"]}, by the recipe tests {r["recipe_tests"]}, '
              f'green {len(r["green"])} {r["green"]}', flush=True)
    total = {k: sum(r[k] for r in results)
             for k in ('leaves', 'tables', 'recipe_tests')}
    green = sum(len(r['green']) for r in results)
    print(f'all: {total["leaves"]} leaves mutated in {len(results)} configs;'
          f' caught by the tables {total["tables"]}, by the recipe tests '
          f'{total["recipe_tests"]}; green {green}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 1 if green else 0


if __name__ == '__main__':
    sys.exit(main())
