"""The run-directory contract: what run.json records and how analysis
reads a run's evaluation data back (experiments/store/)."""
import json
import os.path as osp

from helpers import TINY_MASK_RCNN, write_grid

from experiments.grid.spec import load_grid
from experiments.runner.grid_runs import plan
from experiments.runner.launch import prepare_run_dir
from experiments.store import (RUN_META, detections_file,
                               detections_prefix, evaluation_gt_file,
                               read_run_meta, run_label, schedule_length)


def test_run_json_records_data_paths_arm_description_and_overrides(
        tiny_builtin, tmp_path):
    arms = {'eq2': dict(description='Eq. 2 level mapping',
                        overrides={'model.roi_head.mask_roi_extractor'
                                   '.finest_scale': 28})}
    grid = load_grid(write_grid(tmp_path / 'g.yaml', tmp_path / 'wd',
                                tiny_builtin, arms))
    planned, problems = plan(grid, grid.expand(), str(tmp_path / 'wd'))
    assert problems == [] and len(planned) == 1
    prepare_run_dir(planned[0], grid)
    run_dir = planned[0].run_dir

    with open(osp.join(run_dir, RUN_META)) as f:
        meta = json.load(f)
    assert meta['arm_description'] == 'Eq. 2 level mapping'
    # The arm's override and the grid's (TINY_OVERRIDES), as the run got them.
    assert meta['overrides'][
        'model.roi_head.mask_roi_extractor.finest_scale'] == 28
    assert meta['overrides']['train_cfg.max_iters'] == 2
    val_ann = osp.join(tiny_builtin, 'annotations', 'instances_val.json')
    assert osp.samefile(meta['val_ann'], val_ann)
    assert osp.samefile(meta['train_img'], osp.join(tiny_builtin, 'train'))
    assert meta['config'] == TINY_MASK_RCNN

    # Analysis finds the ground truth from run.json, not by parsing
    # config.py: with the config gone it still answers.
    (tmp_path / 'wd' / osp.basename(run_dir) / 'config.py').unlink()
    assert osp.samefile(evaluation_gt_file(run_dir), val_ann)
    assert read_run_meta(run_dir)['seed'] == 0


def test_a_run_dir_without_recorded_paths_reads_its_config(tiny_builtin,
                                                           tmp_path):
    """Run dirs written before run.json recorded ``val_ann``."""
    grid = load_grid(write_grid(tmp_path / 'g.yaml', tmp_path / 'wd',
                                tiny_builtin, {'default': {}}))
    planned, _ = plan(grid, grid.expand(), str(tmp_path / 'wd'))
    meta = prepare_run_dir(planned[0], grid)
    run_dir = planned[0].run_dir
    del meta['val_ann']
    with open(osp.join(run_dir, RUN_META), 'w') as f:
        json.dump(meta, f)
    val_ann = osp.join(tiny_builtin, 'annotations', 'instances_val.json')
    assert osp.samefile(evaluation_gt_file(run_dir), val_ann)


def test_the_names_every_module_shares():
    # CocoMetric writes ``<outfile_prefix>.{bbox,segm}.json``.
    prefix = detections_prefix('/w/run')
    assert detections_file(osp.dirname(prefix), 'segm') == \
        prefix + '.segm.json' == '/w/run/detections/val.segm.json'
    assert run_label('centermask', 'sam', 'coco', 2.0) == \
        'centermask/sam/coco/seed2'


def test_schedule_length_counts_epochs_at_the_placed_batch():
    from mmengine.config import Config
    by_iters = Config(dict(train_cfg=dict(max_iters=90)))
    assert schedule_length(by_iters, train_images=1000) == 90
    by_epochs = Config(dict(
        train_cfg=dict(max_epochs=2),
        train_dataloader=dict(batch_size=2),
        placement=dict(processes=4, images_per_process=2)))
    # 1000 images at 4 x 2 per iteration: 125 iterations per epoch.
    assert schedule_length(by_epochs, train_images=1000) == 250
