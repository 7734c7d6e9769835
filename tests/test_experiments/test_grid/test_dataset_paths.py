"""A dataset's paths resolve once, the same way for the planning check, the
dataloaders and the evaluator (issue 39, item 4).

An absolute ``val_ann`` with ``data_root`` set passed planning and trained
the whole schedule, then failed at test: the evaluator's ``ann_file`` was
``data_root`` + the path as strings.
"""
import os.path as osp
import shutil

import pytest
from helpers import run_grid_cli, tiny_dataset_entry, write_grid

from experiments.data.coco_check import CocoFormatError
from experiments.data.prepare import prepare_dataset
from experiments.grid.run_config import resolve_config
from experiments.grid.spec import DatasetSpec, RunSpec
from experiments.store import project_path

CONFIG = 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py'
LOADERS = {'train_dataloader': 'train', 'val_dataloader': 'val',
           'test_dataloader': 'val'}


def _subset(tiny_builtin, tmp_path, split: str) -> str:
    """The split's annotation file copied outside ``data_root``."""
    path = tmp_path / 'subsets' / f'{split}6.json'
    path.parent.mkdir(exist_ok=True)
    shutil.copy(osp.join(tiny_builtin, 'annotations',
                         f'instances_{split}.json'), path)
    return str(path)


def _resolve(entry: dict):
    dataset = prepare_dataset(DatasetSpec(name='tiny', **entry),
                              'g.yaml', verbose=False)
    run = RunSpec(grid='g', model='m', arm='a', dataset='tiny', seed=0,
                  config=CONFIG, overrides={})
    return resolve_config(run, dataset, 'g.yaml')


def _evaluators(cfg):
    for name in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg[name]
        yield from (evaluators if isinstance(evaluators, list)
                    else [evaluators])


@pytest.mark.parametrize('split', ['val', 'train'])
def test_absolute_annotation_path_is_the_file_every_reader_opens(
        tiny_builtin, tmp_path, split):
    from mmdet.registry import DATASETS, METRICS
    from mmdet.utils import register_all_modules
    register_all_modules()
    subset = _subset(tiny_builtin, tmp_path, split)
    cfg = _resolve(dict(tiny_dataset_entry(tiny_builtin),
                        **{f'{split}_ann': subset}))
    for loader, loader_split in LOADERS.items():
        # The dataset as mmengine builds it (it joins data_root itself).
        ds = DATASETS.build(dict(cfg[loader].dataset, lazy_init=True))
        want = subset if loader_split == split else project_path(osp.join(
            tiny_builtin, f'annotations/instances_{loader_split}.json'))
        assert project_path(ds.ann_file) == want, loader
        assert osp.isdir(project_path(ds.data_prefix['img'])), loader
    for ev in _evaluators(cfg):
        val_file = project_path(osp.join(cfg.val_dataloader.dataset.data_root,
                                         cfg.val_dataloader.dataset.ann_file))
        assert project_path(ev.ann_file) == val_file
        assert osp.isfile(ev.ann_file)
        # CocoMetric reads its ann_file when built: the FileNotFoundError of
        # the issue, after the whole schedule had trained.
        METRICS.build(ev)


@pytest.mark.parametrize('field', ['train_ann', 'val_ann', 'train_img',
                                   'val_img'])
def test_a_missing_dataset_file_is_named_by_its_grid_field(
        tiny_builtin, tmp_path, field):
    missing = str(tmp_path / 'elsewhere' / 'val6.json')
    entry = dict(tiny_dataset_entry(tiny_builtin), **{field: missing})
    with pytest.raises(CocoFormatError) as e:
        prepare_dataset(DatasetSpec(name='tiny', **entry), 'g.yaml',
                        verbose=False)
    assert str(e.value) == (f'g.yaml: datasets.tiny.{field} {missing} does '
                            f'not exist')


def test_planning_refuses_a_missing_absolute_val_ann(tiny_builtin,
                                                     tmp_path):
    missing = str(tmp_path / 'subsets' / 'val6.json')
    grid = write_grid(tmp_path / 'g.yaml', tmp_path / 'work', tiny_builtin,
                      {'default': {}}, datasets={'tiny': dict(
                          tiny_dataset_entry(tiny_builtin),
                          val_ann=missing)})
    done = run_grid_cli(grid, '--dry-run')
    assert done.returncode == 2, done.stdout + done.stderr
    problems = [line for line in done.stderr.splitlines()
                if 'datasets.tiny' in line]
    assert problems == [f'  - {grid}: datasets.tiny.val_ann {missing} does '
                        f'not exist'], done.stderr
    assert not osp.exists(tmp_path / 'work')
