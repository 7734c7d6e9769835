import pytest
from helpers import tiny_dataset_entry

from experiments.data.prepare import prepare_dataset
from experiments.grid.run_config import config_hash, resolve_config
from experiments.grid.spec import DatasetSpec, GridSpecError, RunSpec

CONFIG = ('configs/retinamask/'
          'retinanet_r18-tiny_fpn_builtin_retinamask-recipe.py')


def _run(overrides, seed=0):
    return RunSpec(grid='g', model='m', arm='a', dataset='tiny', seed=seed,
                   config=CONFIG, overrides=overrides)


@pytest.fixture
def dataset(tiny_builtin):
    return prepare_dataset(DatasetSpec(name='tiny',
                                       **tiny_dataset_entry(tiny_builtin)),
                           verbose=False)


def test_overrides_dataset_and_seed_are_applied(dataset):
    overrides = {'model.bbox_head.loss_bbox': {
        '_delete_': True, 'type': 'SmoothL1Loss', 'beta': 1.0},
        'train_cfg.max_iters': 7}
    first = resolve_config(_run(overrides), dataset, 'g.yaml')
    # The shared overrides mapping is not consumed by the first run.
    second = resolve_config(_run(overrides), dataset, 'g.yaml')
    assert first.model.bbox_head.loss_bbox == dict(type='SmoothL1Loss',
                                                   beta=1.0)
    assert config_hash(first) == config_hash(second)
    assert first.train_cfg.max_iters == 7
    assert first.model.bbox_head.num_classes == 2
    assert first.train_dataloader.dataset.metainfo.classes == (
        'ellipse', 'rectangle')
    assert first.test_evaluator.ann_file.endswith(
        'annotations/instances_val.json')
    assert first.randomness.seed == 0
    other_seed = resolve_config(_run(overrides, seed=1), dataset, 'g.yaml')
    assert config_hash(other_seed) != config_hash(first)


def test_null_override_and_misspelt_path(dataset):
    cfg = resolve_config(
        _run({'model.train_cfg.assigner.low_quality_thr': None}), dataset,
        'g.yaml')
    assert cfg.model.train_cfg.assigner.low_quality_thr is None
    with pytest.raises(GridSpecError, match='"model.train_cfg.asigner"'):
        resolve_config(_run({'model.train_cfg.asigner.x': 1}), dataset,
                       'g.yaml')


@pytest.mark.parametrize('overrides, message', [
    # "twenty" once crashed the runner after it had rewritten results.csv to
    # its header; -5 "finished" with no AP.
    ({'train_cfg.max_iters': 'twenty'},
     "train_cfg.max_iters must be a positive integer, got 'twenty'"),
    ({'train_cfg.max_iters': -5},
     'train_cfg.max_iters must be a positive integer, got -5'),
    ({'train_cfg.max_iters': 0}, 'train_cfg.max_iters must be'),
    ({'train_cfg.max_iters': 2.5}, 'train_cfg.max_iters must be'),
    ({'train_cfg.val_interval': -1}, 'train_cfg.val_interval must be'),
    # Images per process are the placement's (total_batch in the grid).
    ({'train_dataloader.batch_size': 0},
     '"train_dataloader.batch_size": the run\'s placement sets it'),
    ({'default_hooks.checkpoint.interval': 'often'},
     "default_hooks.checkpoint.interval must be a positive integer"),
    ({'optim_wrapper.optimizer.lr': -0.01},
     'optim_wrapper.optimizer.lr must be a positive finite number'),
    ({'param_scheduler.0.milestones': [8, 'eleven']},
     'param_scheduler.0.milestones must be a list of integers >= 0'),
    ({'param_scheduler.0.end': -10}, 'param_scheduler.0.end must be'),
])
def test_bad_schedule_values_are_named_with_their_key(dataset, overrides,
                                                      message):
    with pytest.raises(GridSpecError) as info:
        resolve_config(_run(overrides), dataset, 'g.yaml')
    assert message in str(info.value)
    assert 'g.yaml: run m/a/tiny/seed0' in str(info.value)
