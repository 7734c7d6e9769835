import json
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap

import pytest
import yaml
from helpers import TINY_BATCH, TINY_MASK_RCNN, tiny_dataset_entry, write_grid
from helpers import TINY_OVERRIDES as TINY

from experiments import run_grid
from experiments.store import project_path, read_attempts, read_results_csv


def _results(work_dir):
    return read_results_csv(osp.join(work_dir, 'results.csv'))


@pytest.fixture(scope='module')
def finished_grid(tiny_builtin, tmp_path_factory):
    """One tiny Mask R-CNN run trained and evaluated by run_grid."""
    tmp = tmp_path_factory.mktemp('grid')
    work_dir = tmp / 'work'
    grid = write_grid(tmp / 'grid.yaml', work_dir, tiny_builtin,
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
def test_evaluate_only_arm_evaluates_a_checkpoint_without_training(
        finished_grid, tiny_builtin, tmp_path):
    """An arm with ``evaluate_only`` and ``load_from`` (a converted,
    weights-only checkpoint) gives a row with no training and the APs of
    the run whose weights it loads."""
    import torch
    _, _, work_dir = finished_grid
    trained = _results(work_dir).iloc[0]
    saved = torch.load(osp.join(trained.work_dir, 'iter_2.pth'),
                       map_location='cpu', weights_only=False)
    checkpoint = tmp_path / 'released.pth'
    torch.save(dict(state_dict=saved['state_dict'], meta={}), checkpoint)
    eval_dir = tmp_path / 'work'
    grid = write_grid(tmp_path / 'grid.yaml', eval_dir, tiny_builtin, {
        'released': {'overrides': {'evaluate_only': True,
                                   'load_from': str(checkpoint)}}})
    assert run_grid.main([grid]) == 0
    row = _results(str(eval_dir)).iloc[0]
    assert row.status == 'finished' and row.iterations == 0
    assert row.weights == f'evaluated: {checkpoint}'
    assert trained.weights == 'from scratch'
    for column in ('box_AP', 'box_AP50', 'mask_AP', 'mask_APs'):
        assert row[column] == pytest.approx(trained[column], abs=1e-9,
                                            nan_ok=True)
    assert not any(name.startswith('iter_')
                   for name in os.listdir(row.work_dir))


def test_evaluate_only_without_a_checkpoint_is_named(tiny_builtin, tmp_path,
                                                     capsys):
    grid = write_grid(tmp_path / 'grid.yaml', tmp_path / 'work',
                       tiny_builtin, {'released': {'overrides': {
                           'evaluate_only': True,
                           'load_from': 'checkpoints/missing.pth'}}})
    assert run_grid.main([grid, '--dry-run']) != 0
    assert 'load_from "checkpoints/missing.pth" does not exist' in \
        capsys.readouterr().err


def test_evaluate_only_with_another_models_checkpoint_is_refused(
        tiny_builtin, tmp_path, capsys):
    """A RetinaMask checkpoint given to a Mask R-CNN arm: mmengine's
    load_from would skip every key that does not fit and evaluate a
    half-random model; planning names the keys instead."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(project_path(
        'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py'))
    checkpoint = tmp_path / 'retinamask.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(),
                    meta={}), checkpoint)
    grid = write_grid(tmp_path / 'grid.yaml', tmp_path / 'work',
                      tiny_builtin, {'released': {'overrides': {
                          'evaluate_only': True,
                          'load_from': str(checkpoint)}}})
    assert run_grid.main([grid, '--dry-run']) == 2
    err = capsys.readouterr().err
    assert f'checkpoint {checkpoint} does not fit' in err
    assert 'missing key(s) (' in err and 'unexpected key(s) (' in err
    assert 'allow_partial_checkpoint: true' in err


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
    grid = write_grid(tmp / 'bad.yaml', work_dir, tiny_builtin, {
        'default': {},
        'typo': {'overrides': {'model.backbon.depth': 34}},
        'unbuildable': {'overrides': {'model.backbone.depth': 7}},
        # A new last key and a type outside the model would start a child
        # that fails after queueing, naming neither.
        'loop_typo': {'overrides': {'train_cfg.max_iter': 20}},
        'optimizer_typo': {'overrides': {
            'optim_wrapper.optimizer.type': 'SGDD'}}})
    before = os.stat(osp.join(_results(work_dir).iloc[0].work_dir,
                              'FINISHED.json')).st_mtime_ns
    assert run_grid.main([grid]) == 2
    err = capsys.readouterr().err
    assert grid in err
    assert 'override "model.backbon.depth": "model.backbon" does not exist' \
        in err
    assert 'run mask_rcnn/unbuildable/tiny/seed0' in err
    assert 'model does not build' in err and 'invalid depth 7' in err
    assert 'run mask_rcnn/loop_typo/tiny/seed0' in err
    assert '"train_cfg.max_iter": ResumableIterBasedTrainLoop takes no ' \
        'argument ' \
        '"max_iter" (it takes max_iters,' in err
    assert '"optim_wrapper.optimizer.type" = "SGDD" is not a registered ' \
        'type' in err
    # The finished run is untouched and still the only row.
    df = _results(work_dir)
    assert len(df) == 1 and df.iloc[0].status == 'finished'
    assert os.stat(osp.join(df.iloc[0].work_dir,
                            'FINISHED.json')).st_mtime_ns == before


def test_a_refused_grid_leaves_no_empty_work_dir(tiny_builtin, tmp_path,
                                                 capsys):
    work_dir = tmp_path / 'new' / 'work'
    grid = write_grid(tmp_path / 'bad.yaml', work_dir, tiny_builtin, {
        'typo': {'overrides': {'model.backbon.depth': 34}}})
    assert run_grid.main([grid]) == 2
    assert 'model.backbon' in capsys.readouterr().err
    assert not work_dir.exists()


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
    grid = write_grid(tmp_path / 'g.yaml', work_dir, tiny_builtin, {
        # A zero std makes every input inf: the first loss is NaN.
        'nan': {'overrides': {'model.data_preprocessor.std': [0, 0, 0]}},
        # A value only the transform itself rejects, in the child (an
        # unknown type would be refused at planning, config_check.py).
        'crash': {'overrides': {
            'train_dataloader.dataset.pipeline.3.prob': 2.0}},
        'ok': {}})
    assert run_grid.main([grid]) == 1
    df = _results(str(work_dir)).set_index('arm')
    assert df.loc['ok', 'status'] == 'finished'
    assert df.loc['nan', 'status'] == 'failed'
    assert 'FloatingPointError during train' in df.loc['nan', 'error']
    assert 'non-finite loss at iteration 1' in df.loc['nan', 'error']
    assert df.loc['crash', 'status'] == 'failed'
    assert 'AssertionError' in df.loc['crash', 'error']
    assert 'assert 0 <= prob <= 1' in df.loc['crash', 'log_tail']
    # Failed runs are skipped until asked for again, and the grid says it
    # is incomplete: a user's script must be able to tell.
    assert run_grid.main([grid]) == 1
    assert run_grid.main([grid, '--retry-failed', '--only', 'arm=crash']) \
        == 1


@pytest.mark.slow
def test_real_coco_dataset_plugs_in_by_path(coco128, tmp_path):
    work_dir = tmp_path / 'work'
    grid = tmp_path / 'g.yaml'
    grid.write_text(yaml.safe_dump(dict(
        **TINY_BATCH,
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
        **TINY_BATCH,
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


@pytest.mark.slow
def test_runs_execute_concurrently_on_cpu_slots(tiny_builtin, tmp_path,
                                                 capsys):
    work_dir = tmp_path / 'work'
    spec = dict(seeds=[0, 1], overrides={**TINY, 'train_cfg.max_iters': 6})
    grid = write_grid(tmp_path / 'g.yaml', work_dir, tiny_builtin,
                       {'default': {}}, **spec)
    assert run_grid.main([grid, '--slots', '2', '--tick', '1']) == 0
    df = _results(str(work_dir))
    assert len(df) == 2 and (df.status == 'finished').all()
    slots, spans = set(), []
    for run_dir in df.work_dir:
        log = open(osp.join(run_dir, 'run.log')).read()
        slots.add(log.split('on slot(s) ')[1].split()[0])
        launch, start = read_attempts(run_dir)[:2]
        assert launch['event'] == 'launch'
        assert start['event'] == 'start' and start['iter'] == 0
        assert start['attempt'] == launch['attempt']
        spans.append(os.stat(osp.join(run_dir, 'run.json')).st_mtime)
    # One run per slot, started together rather than one after the other.
    assert slots == {'cpu0', 'cpu1'}
    assert abs(spans[0] - spans[1]) < min(df.wall_time_s)
    assert (df.gpus == 0).all() and (df.peak_rss_mb > 100).all()
    out = capsys.readouterr().out
    assert 'done 2/2 | running 0 | failed 0 | queued 0' in out


@pytest.mark.slow
def test_slurm_path_through_submitit_local_executor(tiny_builtin, tmp_path,
                                                    capsys):
    work_dir = tmp_path / 'work'
    grid = write_grid(tmp_path / 'g.yaml', work_dir, tiny_builtin, {
        'ok': {}, 'nan': {'overrides': {
            'model.data_preprocessor.std': [0, 0, 0]}}})
    args = [grid, '--executor', 'submitit-local', '--tick', '1']
    assert run_grid.main(args) == 1
    df = _results(str(work_dir)).set_index('arm')
    assert df.loc['ok', 'status'] == 'finished'
    assert df.loc['nan', 'status'] == 'failed'
    assert 'non-finite loss' in df.loc['nan', 'error']
    for run_dir in df.work_dir:
        job = json.load(open(osp.join(run_dir, 'slurm_job.json')))
        assert job['cluster'] == 'local' and job['job_id']
    out = capsys.readouterr().out
    assert out.count('submitted as job') == 2
    # Nothing is submitted again: finished and failed runs are skipped, and
    # the exit status says the grid still has a failed run.
    assert run_grid.main(args) == 1
    captured = capsys.readouterr()
    assert 'submitted as job' not in captured.out
    assert 'finished earlier, skipped' in captured.out
    assert 'failed earlier, skipped' in captured.out
    assert 'grid incomplete: 1 failed (mask_rcnn/nan/tiny/seed0' in \
        captured.err


def test_slurm_job_requeues_itself_and_stops_its_child(tmp_path):
    from experiments.slurm.job import SlurmRun
    job = SlurmRun(str(tmp_path / "run"), processes=1, retry_failed=False,
                   signal_retries=3)
    child = job._proc = subprocess.Popen(
        [sys.executable, '-c', 'import time; time.sleep(60)'],
        start_new_session=True)
    again = job.checkpoint()
    assert child.poll() == -signal.SIGTERM and job._proc is None
    assert isinstance(again.function, SlurmRun)
    assert again.function.run_dir == job.run_dir and again.function is not job
    assert again.function.signal_retries == 3
