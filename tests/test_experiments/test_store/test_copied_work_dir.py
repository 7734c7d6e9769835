"""A copied or moved work dir is read where it is (issue 39, item 3).

``FINISHED.json`` and ``results.csv`` held absolute paths: the report on a
copy evaluated the original's detections and wrote its evaluation cache
there; with the original moved away it said "No finished run with saved
detections" although the copy's detections were intact.
"""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from experiments.store import (
    COLUMNS,
    FINISHED,
    RESULTS,
    atomic_write_json,
    collect_rows,
    read_results_csv,
    write_results,
)

NAME = 'mask_rcnn__default__tiny__seed0__abc123'


def _detections(ann_file: str) -> dict:
    """The ground truth as CocoMetric's results (score 1): AP 100."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    coco = COCO(ann_file)
    bbox, segm = [], []
    for ann in coco.dataset['annotations']:
        rle = coco.annToRLE(ann)
        rle['counts'] = rle['counts'].decode()
        common = dict(image_id=ann['image_id'],
                      category_id=ann['category_id'], score=1.0,
                      bbox=[float(v) for v in ann['bbox']])
        bbox.append(common)
        segm.append(dict(common, segmentation=rle,
                         area=float(mask_utils.area(rle))))
    return dict(bbox=bbox, segm=segm)


def _finished_run(work_dir: str, data_root: str) -> str:
    """A run dir as run_grid leaves it: run.json, config.py, detections and
    FINISHED.json with the absolute paths the runner writes."""
    run_dir = osp.join(work_dir, NAME)
    os.makedirs(osp.join(run_dir, 'detections'))
    ann = osp.join(data_root, 'annotations', 'instances_val.json')
    meta = dict(run_id='abc123', grid='t', model='mask_rcnn', arm='default',
                dataset='tiny', seed=0, val_ann=ann)
    atomic_write_json(osp.join(run_dir, 'run.json'), meta)
    with open(osp.join(run_dir, 'config.py'), 'w') as f:
        f.write(f'test_dataloader = dict(dataset=dict(data_root='
                f'{data_root + "/"!r}, ann_file="annotations/'
                f'instances_val.json", data_prefix=dict(img="val/")))\n')
    for iou_type, results in _detections(ann).items():
        with open(osp.join(run_dir, 'detections',
                           f'val.{iou_type}.json'), 'w') as f:
            json.dump(results, f)
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(meta, status='finished', params=1e6, iterations=2,
               wall_time_s=1.0, val_images=4, val_instances=9,
               weights='from scratch', error='', work_dir=run_dir,
               detections=osp.join(run_dir, 'detections'))
    for task in ('box', 'mask'):
        for m in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl'):
            row[f'{task}_{m}'] = 1.0
    row.pop('val_ann')
    atomic_write_json(osp.join(run_dir, FINISHED), row)
    return run_dir


def _write_table(work_dir: str, run_dir: str, table: str) -> None:
    if table == 'runner':
        write_results(work_dir, [run_dir])
    else:
        # A table written before issue 39: absolute paths.
        collect_rows([run_dir]).assign(
            work_dir=run_dir, detections=osp.join(run_dir, 'detections')
        ).to_csv(osp.join(work_dir, RESULTS), index=False)


def _tree(root: str) -> dict:
    return {osp.relpath(osp.join(d, f), root):
            os.stat(osp.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files}


def _report(results: str) -> str:
    from reports.generate_report import main
    assert main(['--results', results, '--no-other-grids',
                 '--resamples', '10']) == 0
    with open(osp.join(osp.dirname(results), 'report', 'report.md')) as f:
        return f.read()


@pytest.fixture(params=['runner', 'absolute'])
def copied(request, tiny_builtin, tmp_path):
    """(original work dir, copy): a finished run, its table written by
    the runner or by the code before issue 39, copied elsewhere."""
    original = str(tmp_path / 'work_dirs' / 't')
    run_dir = _finished_run(original, tiny_builtin)
    _write_table(original, run_dir, request.param)
    copy = str(tmp_path / 'elsewhere' / 't')
    shutil.copytree(original, copy)
    return original, copy


def test_table_of_a_copy_names_the_copy_runs(copied):
    original, copy = copied
    [row] = read_results_csv(osp.join(copy, RESULTS)).itertuples()
    assert row.work_dir == osp.join(copy, NAME)
    assert row.detections == osp.join(copy, NAME, 'detections')
    shutil.rmtree(original)
    write_results(copy)  # e.g. measure_cost.py adding its columns
    [row] = read_results_csv(osp.join(copy, RESULTS)).itertuples()
    assert row.work_dir == osp.join(copy, NAME)
    assert row.detections == osp.join(copy, NAME, 'detections')


def test_report_of_a_copy_reads_and_writes_only_the_copy(copied):
    original, copy = copied
    before = _tree(original)
    md = _report(osp.join(copy, RESULTS))
    assert _tree(original) == before, 'the report wrote into the original'
    assert 'No finished run with saved detections' not in md
    assert os.listdir(osp.join(copy, NAME, 'detections', 'eval-cache'))


def test_report_of_a_moved_work_dir_reads_its_detections(copied):
    original, moved = copied
    shutil.rmtree(original)
    md = _report(osp.join(moved, RESULTS))
    assert 'No finished run with saved detections' not in md
    assert os.listdir(osp.join(moved, NAME, 'detections', 'eval-cache'))
    assert not osp.exists(original)
