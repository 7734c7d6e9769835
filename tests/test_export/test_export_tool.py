"""tools/export_onnx.py and measure_cost.py --onnxruntime on a trained run."""
import json
import os
import os.path as osp
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from analysis.coco_eval.run_eval import image_eval_for_run
from analysis.sections.cost import arm_cost_rows
from experiments import measure_cost, run_grid
from experiments.cost.onnx_cost import onnx_path
from experiments.store import PROJECT_ROOT, project_path
from experiments.store import ORT_COST, read_json, read_results_csv
from helpers import TINY_BATCH, load_script, tiny_dataset_entry
from mmdet_plugins.export.parity import TOLERANCES


export_onnx = load_script('tools/export_onnx.py', 'export_onnx_tool')

RETINAMASK = 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py'
RETINANET = ('configs/retinamask/'
             'retinanet_r18-tiny_fpn_builtin_retinamask-recipe.py')
# Long enough for the tiny RetinaMask to find some objects (AP > 0), at a
# score threshold of 0.01: over the default 0.05 it had one detection on the
# 4 images at one thread on an AMD EPYC, and mask AP 0 (a parity of 0 with
# 0); at 0.01 it has 400 to agree on, whatever the machine's arithmetic.
TRAIN = {'train_cfg.max_iters': 60,
         'default_hooks.checkpoint.interval': 60,
         'model.test_cfg.score_thr': 0.01}


@pytest.fixture(scope='module')
def trained(tiny_builtin, tmp_path_factory):
    """A RetinaMask trained 60 iterations, exported and checked by the
    tool, then timed in PyTorch and onnxruntime; beside it its box-only
    arm (RetinaNet), which has no export."""
    tmp = tmp_path_factory.mktemp('export')
    grid = tmp / 'grid.yaml'
    grid.write_text(yaml.safe_dump(dict(
        **TINY_BATCH,
        name='export', work_dir=str(tmp / 'work'),
        models={'retinamask': RETINAMASK},
        arms={'default': {}, 'box_only': {'overrides': {
            # Only its latency is read: a few iterations suffice.
            'train_cfg.max_iters': 4,
            'default_hooks.checkpoint.interval': 4,
            'model.mask_roi_extractor': None, 'model.mask_head': None,
            'val_evaluator.metric': ['bbox'],
            'test_evaluator.metric': ['bbox']}}},
        datasets={'tiny': tiny_dataset_entry(tiny_builtin)}, seeds=[0],
        overrides=TRAIN)))
    assert run_grid.main([str(grid)]) == 0
    table = read_results_csv(str(tmp / 'work' / 'results.csv'))
    row = table.set_index('arm').loc['default']
    run_dir = row.work_dir
    # Where measure_cost --onnxruntime keeps a run's export, which it then
    # times without exporting again (one export of 20-30 s less); spelt
    # with a '..' as a user may type it, and by the command line, whose
    # output test_the_export_prints_no_noise_and_plain_paths reads.
    out = onnx_path(run_dir)
    done = subprocess.run(
        [sys.executable, 'tools/export_onnx.py',
         osp.join(run_dir, 'config.py'), osp.join(run_dir, 'iter_60.pth'),
         '--out', osp.join(run_dir, 'onnx', '..', 'onnx', 'model.onnx')],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    exported_at = os.stat(out).st_mtime_ns
    # Threads given, as for any timing to compare: the device a timing is
    # skipped on names them, and this worker's torch has run other files.
    assert measure_cost.main([str(grid), '--images', '4', '--warmup', '1',
                              '--flops-images', '1', '--rounds', '2',
                              '--threads', '1', '--onnxruntime']) == 0
    return dict(grid=str(grid), work=str(tmp / 'work'), run_dir=run_dir,
                row=row, out=out, export=done, exported_at=exported_at)


@pytest.mark.slow
def test_onnxruntime_ap_equals_the_runs_ap(trained):
    assert trained['export'].returncode == 0, trained['export'].stderr
    report = json.load(open(osp.splitext(trained['out'])[0]
                            + '.parity.json'))
    summary = report['summary']
    assert report['within_tolerance'] and report['problems'] == []
    assert summary['images'] == 4 and summary['detections'] > 0
    assert summary['images_same_detections'] == 4
    # PyTorch's AP here is the run's own: the detections the run saved at
    # its evaluation, through the same evaluator.
    row, run_dir = trained['row'], trained['run_dir']
    ann = report['ann_file']
    for iou_type, column in (('bbox', 'box_AP'), ('segm', 'mask_AP')):
        saved = image_eval_for_run(osp.join(run_dir, 'detections'), ann,
                                   iou_type, use_cache=False).ap()
        assert summary[f'torch_{iou_type}_AP'] == pytest.approx(saved,
                                                                abs=1e-9)
        # CocoMetric rounds to 3 decimals.
        assert saved == pytest.approx(row[column], abs=5e-4)
        assert abs(summary[f'onnx_{iou_type}_AP'] - saved) <= \
            TOLERANCES[f'{iou_type}_AP_abs']
    assert summary['torch_bbox_AP'] > 0 and summary['torch_segm_AP'] > 0
    for key in ('max_box_abs', 'max_score_abs', 'max_mask_score_abs',
                'max_mask_pixel_diff'):
        assert summary[key] <= TOLERANCES[key]
    # The export runs without this project: its runner is beside it.
    folder = osp.dirname(trained['out'])
    assert sorted(os.listdir(folder)) == [
        'model.json', 'model.onnx', 'model.parity.json', 'onnx_inference.py']


@pytest.mark.slow
def test_the_export_prints_no_noise_and_plain_paths(trained):
    done = trained['export']
    assert done.returncode == 0, done.stderr
    assert 'torchvision is not installed' not in done.stderr
    assert 'FutureWarning' not in done.stderr, done.stderr
    plain = osp.splitext(trained['out'])[0]
    [line] = [line for line in done.stdout.splitlines()
              if 'exported in' in line]
    assert line.startswith(f'{plain}.onnx: RetinaMask exported in '), line
    assert line.endswith(f'; {plain}.json and onnx_inference.py beside it')
    assert '/../' not in done.stdout


@pytest.mark.slow
def test_onnxruntime_latency_is_a_column_set_of_its_own(trained):
    cost = read_json(osp.join(trained['run_dir'], ORT_COST))
    assert cost['provider'] == 'CPUExecutionProvider'
    assert cost['runtime'].startswith('onnxruntime ')
    assert cost['rounds'] == 2 and len(cost['per_round_ms']) == 2
    assert len(cost['per_image_ms']) == 4
    # It timed the tool's export of the run's last checkpoint, newer than
    # the checkpoint, as it was: not exported again.
    assert trained['out'] == osp.join(trained['run_dir'], 'onnx',
                                      'model.onnx')
    assert os.stat(trained['out']).st_mtime_ns == trained['exported_at']
    df = read_results_csv(osp.join(trained['work'], 'results.csv'))
    row = df.set_index('arm').loc['default']
    assert row.ort_latency_ms == pytest.approx(cost['latency_ms'])
    assert row.ort_latency_device == row.latency_device
    assert row.latency_ms > 0 and row.ort_latency_ms > 0
    rows = arm_cost_rows(df.assign(grid='export'), n_resamples=20)
    assert sorted((r['arm'], r['runtime']) for r in rows) == [
        ('box_only', 'pytorch'), ('default', 'onnxruntime'),
        ('default', 'pytorch')]
    assert all(r['_lat'] is not None for r in rows)
    # The box-only arm: timed in PyTorch, its lack of an export recorded,
    # so the next --onnxruntime call skips it.
    box_only = df.set_index('arm').loc['box_only']
    assert box_only.latency_ms > 0 and pd.isna(box_only.ort_latency_ms)
    cost = read_json(osp.join(box_only.work_dir, 'cost.json'))
    assert 'box-only' in cost['onnx_unsupported']
    assert not osp.exists(osp.join(box_only.work_dir, ORT_COST))
    assert measure_cost.main([trained['grid'], '--images', '4',
                              '--warmup', '1', '--rounds', '2',
                              '--threads', '1', '--onnxruntime']) == 0
    assert read_json(osp.join(box_only.work_dir, 'cost.json'))[
        'measured_at'] == cost['measured_at']


def test_tool_refuses_a_box_only_model(tmp_path, capsys):
    import torch

    from mmdet_plugins.export.exporter import load_detector
    model, _ = load_detector(project_path(RETINANET), None)
    checkpoint = str(tmp_path / 'w.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    assert export_onnx.main([project_path(RETINANET), checkpoint, '--out',
                             str(tmp_path / 'x.onnx')]) == 2
    err = capsys.readouterr().err
    assert 'box-only' in err and 'RetinaMask' in err
    assert export_onnx.main([project_path(RETINANET), 'missing.pth',
                             '--out', str(tmp_path / 'x.onnx')]) == 2
    assert 'missing.pth: no such checkpoint' in capsys.readouterr().err
