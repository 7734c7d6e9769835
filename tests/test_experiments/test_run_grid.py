import json
import os
import os.path as osp
import textwrap

import pytest
import yaml

from experiments import run_grid
from experiments.run_store import read_results_csv
from helpers import TINY_MASK_RCNN, tiny_dataset_entry

# A few iterations at batch 2: enough to train, checkpoint and evaluate.
TINY = {'train_cfg.max_iters': 2, 'train_dataloader.batch_size': 2,
        'default_hooks.checkpoint.interval': 2}


def _write_grid(path, work_dir, dataset_root, arms):
    spec = dict(
        name='t', work_dir=str(work_dir),
        models={'mask_rcnn': TINY_MASK_RCNN},
        arms=arms,
        datasets={'tiny': tiny_dataset_entry(dataset_root)},
        seeds=[0], overrides=TINY)
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _results(work_dir):
    return read_results_csv(osp.join(work_dir, 'results.csv'))


@pytest.fixture(scope='module')
def finished_grid(tiny_builtin, tmp_path_factory):
    """One tiny Mask R-CNN run trained and evaluated by run_grid."""
    tmp = tmp_path_factory.mktemp('grid')
    work_dir = tmp / 'work'
    grid = _write_grid(tmp / 'grid.yaml', work_dir, tiny_builtin,
                       {'default': {}})
    assert run_grid.main([grid]) == 0
    return tmp, grid, str(work_dir)


@pytest.mark.slow
def test_run_trains_evaluates_and_records_a_row(finished_grid):
    _, _, work_dir = finished_grid
    df = _results(work_dir)
    assert len(df) == 1
    row = df.iloc[0]
    assert row.status == 'finished' and row.iterations == 2
    assert (row.model, row.arm, row.dataset, row.seed) == (
        'mask_rcnn', 'default', 'tiny', 0)
    assert row.params > 100_000 and row.wall_time_s > 0
    for task in ('box', 'mask'):
        assert 0 <= row[f'{task}_AP'] <= 1
    run_dir = row.work_dir
    assert osp.basename(run_dir).endswith(row.run_id)
    finished = json.load(open(osp.join(run_dir, 'FINISHED.json')))
    assert finished['run_id'] == row.run_id
    # Raw detections are kept for later re-evaluation.
    for kind in ('bbox', 'segm'):
        dets = json.load(open(osp.join(run_dir, 'detections',
                                       f'val.{kind}.json')))
        assert isinstance(dets, list)
        assert all({'image_id', 'category_id', 'score'} <= set(d)
                   for d in dets)
    assert osp.isfile(osp.join(run_dir, 'iter_2.pth'))
    # Evaluated once (by runner.test()), not also by a final validation.
    log = open(osp.join(run_dir, 'run.log')).read()
    assert log.count('Evaluate annotation type *bbox*') == 1


@pytest.mark.slow
def test_second_invocation_skips_finished_run(finished_grid, capsys):
    _, grid, work_dir = finished_grid
    run_dir = _results(work_dir).iloc[0].work_dir
    sentinel = osp.join(run_dir, 'FINISHED.json')
    before = os.stat(sentinel).st_mtime_ns
    assert run_grid.main([grid]) == 0
    out = capsys.readouterr().out
    assert 'finished earlier, skipped' in out and '0 finished' in out
    assert os.stat(sentinel).st_mtime_ns == before
    assert len(_results(work_dir)) == 1


@pytest.mark.slow
def test_bad_override_is_named_and_nothing_runs(finished_grid, tiny_builtin,
                                               capsys):
    tmp, _, work_dir = finished_grid
    grid = _write_grid(tmp / 'bad.yaml', work_dir, tiny_builtin, {
        'default': {},
        'typo': {'overrides': {'model.backbon.depth': 34}},
        'unbuildable': {'overrides': {'model.backbone.depth': 7}}})
    before = os.stat(osp.join(_results(work_dir).iloc[0].work_dir,
                              'FINISHED.json')).st_mtime_ns
    assert run_grid.main([grid]) == 2
    err = capsys.readouterr().err
    assert grid in err
    assert 'override "model.backbon.depth": "model.backbon" does not exist' \
        in err
    assert 'run mask_rcnn/unbuildable/tiny/seed0' in err
    assert 'model does not build' in err and 'invalid depth 7' in err
    # The finished run is untouched and still the only row.
    df = _results(work_dir)
    assert len(df) == 1 and df.iloc[0].status == 'finished'
    assert os.stat(osp.join(df.iloc[0].work_dir,
                            'FINISHED.json')).st_mtime_ns == before


def test_missing_dataset_path_is_named(tmp_path, capsys):
    grid = tmp_path / 'g.yaml'
    grid.write_text(textwrap.dedent(f"""
        models: {{m: {TINY_MASK_RCNN}}}
        datasets:
          coco: {{data_root: {tmp_path}/nowhere, train_ann: a.json,
                  train_img: t/, val_ann: a.json, val_img: v/}}
        """))
    assert run_grid.main([str(grid)]) == 2
    err = capsys.readouterr().err
    assert 'datasets.coco.data_root' in err and 'nowhere' in err


def test_unknown_grid_key_is_named(tmp_path, capsys):
    grid = tmp_path / 'g.yaml'
    grid.write_text('models: {m: x.py}\ndatasets: {d: {synthetic: {}}}\n'
                    'seed: [1]\n')
    assert run_grid.main([str(grid)]) == 2
    assert 'unknown key "seed"' in capsys.readouterr().err


@pytest.mark.slow
def test_failing_runs_fail_alone(tiny_builtin, tmp_path):
    work_dir = tmp_path / 'work'
    grid = _write_grid(tmp_path / 'g.yaml', work_dir, tiny_builtin, {
        # A zero std makes every input inf: the first loss is NaN.
        'nan': {'overrides': {'model.data_preprocessor.std': [0, 0, 0]}},
        'crash': {'overrides': {
            'train_dataloader.dataset.pipeline.0.type': 'NoSuchTransform'}},
        'ok': {}})
    assert run_grid.main([grid]) == 1
    df = _results(str(work_dir)).set_index('arm')
    assert df.loc['ok', 'status'] == 'finished'
    assert df.loc['nan', 'status'] == 'failed'
    assert 'FloatingPointError during train' in df.loc['nan', 'error']
    assert 'non-finite loss at iteration 1' in df.loc['nan', 'error']
    assert df.loc['crash', 'status'] == 'failed'
    assert 'NoSuchTransform' in df.loc['crash', 'error']
    assert 'NoSuchTransform' in df.loc['crash', 'log_tail']
    # Failed runs are skipped until asked for again.
    assert run_grid.main([grid]) == 0
    assert run_grid.main([grid, '--retry-failed', '--only', 'arm=crash']) \
        == 1


@pytest.mark.slow
def test_real_coco_dataset_plugs_in_by_path(coco128, tmp_path):
    work_dir = tmp_path / 'work'
    grid = tmp_path / 'g.yaml'
    grid.write_text(yaml.safe_dump(dict(
        work_dir=str(work_dir), models={'mask_rcnn': TINY_MASK_RCNN},
        datasets={'coco128': dict(
            data_root=coco128,
            train_ann='annotations/instances_train2017.json',
            train_img='images/train2017/',
            val_ann='annotations/instances_train2017.json',
            val_img='images/train2017/')},
        overrides=TINY)))
    assert run_grid.main([str(grid)]) == 0
    row = read_results_csv(osp.join(work_dir, 'results.csv')).iloc[0]
    assert row.status == 'finished' and row.val_images == 128
    assert row.val_instances == 929
    cfg = open(osp.join(row.work_dir, 'config.py')).read()
    assert 'num_classes=80' in cfg and "'person'" in cfg


@pytest.mark.slow
def test_box_only_model_reports_box_ap_only(tiny_builtin, tmp_path):
    work_dir = tmp_path / 'work'
    grid = tmp_path / 'g.yaml'
    grid.write_text(yaml.safe_dump(dict(
        work_dir=str(work_dir),
        models={'retinanet': 'configs/retinamask/'
                'retinanet_r18-tiny_fpn_builtin_retinamask-recipe.py'},
        datasets={'tiny': tiny_dataset_entry(tiny_builtin)},
        # Two iterations from the focal-loss prior score below 0.05.
        overrides={**TINY, 'model.test_cfg.score_thr': 0.0})))
    assert run_grid.main([str(grid)]) == 0
    row = read_results_csv(osp.join(work_dir, 'results.csv')).iloc[0]
    assert row.status == 'finished' and 0 <= row.box_AP <= 1
    assert row.mask_AP != row.mask_AP  # NaN: no masks, no segm metric
