"""``run_grid.py --cfg-options KEY=VALUE``: a change on top of the grid's
overrides, recorded in run.json and part of the run id; a key that does not
fit is refused in one line before anything runs (issue 39, item 6)."""
import json
import os.path as osp
import re

import pytest
from helpers import TINY_OVERRIDES, write_grid
from mmengine.config import Config

from experiments import run_grid
from experiments.grid.cfg_options import key_problem, with_cfg_options
from experiments.grid.spec import load_grid
from experiments.runner.grid_runs import plan
from experiments.runner.launch import prepare_run_dir
from experiments.store import RUN_META


def _dry_run_dir(capsys, *args):
    capsys.readouterr()
    assert run_grid.main(list(args) + ['--dry-run']) == 0
    out = capsys.readouterr().out
    return re.search(r'(mask_rcnn__default__tiny__seed0__\w{12})',
                     out).group(1), out


def test_cfg_options_make_another_run_recorded_in_run_json(
        tiny_builtin, tmp_path, capsys):
    work_dir = tmp_path / 'work'
    grid = write_grid(tmp_path / 'grid.yaml', work_dir, tiny_builtin,
                      {'default': {}})
    plain, _ = _dry_run_dir(capsys, grid)
    option = ['--cfg-options', 'train_cfg.max_iters=3']
    changed, out = _dry_run_dir(capsys, grid, *option)
    # Another config, so another run id and run dir.
    assert changed != plain
    assert 'train_cfg.max_iters = 3 (--cfg-options)' in out
    # The same option again is the same run.
    assert _dry_run_dir(capsys, grid, *option)[0] == changed

    # What the runner writes into that run dir before training.
    spec = load_grid(grid)
    runs = with_cfg_options(spec.path, spec.expand(),
                            {'train_cfg.max_iters': 3})
    planned, problems = plan(spec, runs, str(work_dir))
    assert problems == []
    prepare_run_dir(planned[0], spec)
    assert osp.basename(planned[0].run_dir) == changed
    with open(osp.join(planned[0].run_dir, RUN_META)) as f:
        meta = json.load(f)
    # Beside the grid's overrides, which stay as the grid gives them.
    assert meta['cfg_options'] == {'train_cfg.max_iters': 3}
    assert meta['overrides'] == TINY_OVERRIDES
    cfg = Config.fromfile(osp.join(planned[0].run_dir, 'config.py'))
    assert cfg.train_cfg.max_iters == 3


@pytest.mark.parametrize('item, named', [
    ('train_cfg.max_iter=3',
     'ResumableIterBasedTrainLoop takes no argument'),
    ('model.roi_headd.bbox_head.num_classes=3',
     '"model.roi_headd" does not exist in the config'),
])
def test_a_misspelt_key_is_refused_in_one_line(tiny_builtin, tmp_path,
                                               capsys, item, named):
    work_dir = tmp_path / 'work'
    grid = write_grid(tmp_path / 'grid.yaml', work_dir, tiny_builtin,
                      {'default': {}})
    assert run_grid.main([grid, '--cfg-options', item]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    key = item.partition('=')[0]
    assert len(err) == 1, err
    assert err[0].startswith(f'error: --cfg-options "{key}": {named}')
    assert err[0].endswith('nothing was run')
    assert not work_dir.exists()


def test_a_value_the_harness_sets_is_refused_not_dropped():
    cfg = Config(dict(
        model=dict(type='X', head=dict(num_classes=80)),
        train_dataloader=dict(batch_size=2, dataset=dict(ann_file='a')),
        train_cfg=dict(max_iters=10), milestones=[1, 2]))
    assert 'set from the grid\'s dataset' in key_problem(
        cfg, 'model.head.num_classes')
    assert 'placement sets it' in key_problem(
        cfg, 'train_dataloader.batch_size')
    assert 'datasets set it' in key_problem(
        cfg, 'train_dataloader.dataset.ann_file')
    assert 'seeds set it' in key_problem(cfg, 'randomness.seed')
    assert key_problem(cfg, 'milestones.1') is None
    assert 'is no index' in key_problem(cfg, 'milestones.2')
    assert 'not a mapping' in key_problem(cfg, 'train_cfg.max_iters.x')
    # An untyped section: a new key is fine unless one typo from another.
    assert key_problem(cfg, 'train_cfg.val_interval') is None
    assert 'did you mean "train_cfg.max_iters"' in key_problem(
        cfg, 'train_cfg.max_iter')


def test_cfg_options_read_as_mmengine_reads_them():
    args = run_grid.parse_args([
        'g.yaml', '--cfg-options', 'a.b=1', 'c=0.5,2', 'd=[x,(1,2)]',
        '--cfg-options', 'e=None', 'f=true'])
    assert args.cfg_options == {'a.b': 1, 'c': [0.5, 2], 'd': ['x', (1, 2)],
                                'e': None, 'f': True}
    assert run_grid.parse_args(['g.yaml']).cfg_options == {}
    with pytest.raises(SystemExit) as e:
        run_grid.parse_args(['g.yaml', '--cfg-options', 'max_iters'])
    assert e.value.code == 2
