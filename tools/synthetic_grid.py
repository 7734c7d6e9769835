"""A COCO-val-sized grid of finished runs on disk, as the runner leaves it.

    python tools/synthetic_grid.py OUT --images 5000

Used by ``tools/benchmark_report.py``. The ground truth is coco128-seg
(``/work/shared/datasets/coco128-seg``, real polygons) tiled to ``--images``
images with the image and annotation ids renumbered; 1 % of the objects of
32² px or more become crowd regions (uncompressed RLE, as COCO's). Each run
(3 models x 2 arms x 2 seeds) detects every object with a probability and a
localisation error that depend on its model, arm and seed (the box and the
polygon moved and scaled together, encoded as COCO's compressed RLE), adds
duplicates, wrong classes and false positives, and keeps at most 100
detections per image. The run dirs are written through
:mod:`experiments.store` as the runner writes them: ``run.json``,
``config.py``, ``detections/val.{bbox,segm}.json``, ``FINISHED.json`` (its
APs from this project's evaluation, equal to pycocotools'), then
``results.csv`` and ``grid_runs.json`` by ``write_results``.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List

import numpy as np
import pycocotools.mask as mask_utils

from analysis.coco_eval.image_eval import evaluate_images
from analysis.coco_eval.run_eval import load_ground_truth
from experiments.store import (DETECTIONS, FINISHED, RUN_META, atomic_write,
                               atomic_write_json, coco_metrics_to_row,
                               detections_file, run_dir_name, write_results)

COCO128 = '/work/shared/datasets/coco128-seg'
# One grid whose name the verdicts know: W3 compares the first model's
# arms (mask APs), so the verdict section has an interval to compute.
GRID = 'centermask_table1'
DATASET = 'coco_synthetic'
MODELS = ('centermask_r50_1x', 'mask_rcnn_r50_1x', 'retinamask_r50_1x')
ARMS = {'centermask_r50_1x': ('mask_eq1', 'mask_eq2'),
        'mask_rcnn_r50_1x': ('default', 'large_mask'),
        'retinamask_r50_1x': ('default', 'self_adjusting')}
SEEDS = (0, 1)
MAX_DETS = 100
_SPEC_VERSION = 1


def tile_ground_truth(src: dict, n_images: int, seed: int = 0) -> dict:
    """``src`` (a COCO annotation file's content) repeated to ``n_images``
    images, ids renumbered; about 1 % of objects of 32² px or more made
    crowd regions with uncompressed RLE."""
    rng = np.random.default_rng(seed)
    by_image: Dict[int, List[dict]] = {}
    for ann in src['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    images, anns = [], []
    for k in range(n_images):
        im = src['images'][k % len(src['images'])]
        images.append(dict(im, id=k + 1))
        for ann in by_image.get(im['id'], []):
            new = dict(ann, id=len(anns) + 1, image_id=k + 1)
            if ann['area'] >= 32 ** 2 and rng.random() < 0.01:
                new['iscrowd'] = 1
                new['segmentation'] = _uncompressed_rle(
                    ann['segmentation'], im['height'], im['width'])
            anns.append(new)
    return dict(images=images, annotations=anns,
                categories=src['categories'])


def _uncompressed_rle(polygons: list, h: int, w: int) -> dict:
    mask = mask_utils.decode(mask_utils.merge(
        mask_utils.frPyObjects(polygons, h, w))).ravel(order='F')
    change = np.flatnonzero(np.diff(mask)) + 1
    bounds = np.concatenate([[0], change, [mask.size]])
    counts = np.diff(bounds).tolist()
    if mask[0]:
        counts = [0] + counts
    return dict(counts=counts, size=[h, w])


def run_quality(model: int, arm: int, seed: int) -> dict:
    """Detection rate, localisation noise and false positives of a run:
    better with the model's index and the second arm, a little different
    per seed."""
    rng = np.random.default_rng(1000 * model + 100 * arm + seed)
    return dict(keep=0.72 + 0.05 * model + 0.02 * arm
                + rng.normal(0, 0.005),
                shift=0.09 - 0.015 * model - 0.006 * arm
                + rng.normal(0, 0.002),
                n_fp=18 - 2 * model, dupe=0.08, wrong_class=0.05)


def _det(rng, image_id: int, cat: int, polys: list, box: list,
         transform, score: float, h: int, w: int) -> tuple:
    cx, cy, s, dx, dy = transform
    polys = [[(c - (cx if i % 2 == 0 else cy)) * s
              + (cx + dx if i % 2 == 0 else cy + dy)
              for i, c in enumerate(p)] for p in polys]
    x, y, bw, bh = box
    bbox = [round((x - cx) * s + cx + dx, 2), round((y - cy) * s + cy + dy, 2),
            round(bw * s, 2), round(bh * s, 2)]
    rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
    rle['counts'] = rle['counts'].decode()
    score = round(float(score), 5)
    return (dict(image_id=image_id, category_id=cat, bbox=bbox, score=score),
            dict(image_id=image_id, category_id=cat, segmentation=rle,
                 score=score))


def run_detections(gt: dict, quality: dict, seed: int) -> tuple:
    """(box results, mask results) of one run on ``gt``."""
    rng = np.random.default_rng(seed)
    cat_ids = [c['id'] for c in gt['categories']]
    by_image: Dict[int, List[dict]] = {}
    for ann in gt['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    boxes, masks = [], []
    for im in gt['images']:
        h, w = im['height'], im['width']
        found = []
        for ann in by_image.get(im['id'], []):
            x, y, bw, bh = ann['bbox']
            cx, cy = x + bw / 2, y + bh / 2
            if ann['iscrowd']:
                polys = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
                if rng.random() < 0.5:
                    found.append(_det(rng, im['id'], ann['category_id'],
                                      polys, ann['bbox'], (cx, cy, 1, 0, 0),
                                      rng.uniform(0.2, 0.9), h, w))
                continue
            if rng.random() > quality['keep']:
                continue
            copies = 2 if rng.random() < quality['dupe'] else 1
            for c in range(copies):
                dx, dy = rng.normal(0, quality['shift'], 2) * [bw, bh]
                s = float(np.exp(rng.normal(0, quality['shift'])))
                cat = ann['category_id']
                if rng.random() < quality['wrong_class']:
                    cat = int(rng.choice(cat_ids))
                score = rng.uniform(0.3, 1.0) * (0.6 if c else 1.0)
                found.append(_det(rng, im['id'], cat, ann['segmentation'],
                                  ann['bbox'], (cx, cy, s, dx, dy), score,
                                  h, w))
        for _ in range(rng.poisson(quality['n_fp'])):
            side = float(np.exp(rng.uniform(np.log(8), np.log(300))))
            bw, bh = side * np.exp(rng.normal(0, 0.3, 2))
            x, y = rng.uniform(0, max(1, w - bw)), rng.uniform(0, max(1,
                                                                  h - bh))
            t = np.linspace(0, 2 * np.pi, 9)[:-1]
            poly = np.stack([x + bw / 2 * (1 + np.cos(t)),
                             y + bh / 2 * (1 + np.sin(t))], 1).ravel()
            found.append(_det(rng, im['id'], int(rng.choice(cat_ids)),
                              [poly.tolist()], [x, y, bw, bh],
                              (x + bw / 2, y + bh / 2, 1, 0, 0),
                              rng.uniform(0.01, 0.6), h, w))
        found.sort(key=lambda d: -d[0]['score'])
        for box, mask in found[:MAX_DETS]:
            boxes.append(box)
            masks.append(mask)
    return boxes, masks


def _coco_metrics(coco_gt, dets: list, iou_type: str) -> dict:
    ev = evaluate_images(coco_gt, dets, iou_type)
    full = ev.summary()
    out = {'mAP': full['AP'], 'mAP_50': full['AP50'],
           'mAP_75': full['AP75']}
    for area, key in (('small', 'mAP_s'), ('medium', 'mAP_m'),
                      ('large', 'mAP_l')):
        out[key] = ev.ap(area=area)
    return {f'coco/{iou_type}_{k}': v for k, v in out.items()}


def write_run(work_dir: str, ann_file: str, gt: dict, coco_gt, model: int,
              arm: int, seed: int) -> str:
    """One finished run dir; returns its path."""
    name, arm_name = MODELS[model], ARMS[MODELS[model]][arm]
    run_id = f'{model}{arm}{seed}{len(gt["images"]):06d}'
    run_dir = osp.join(work_dir, run_dir_name(name, arm_name, DATASET, seed,
                                              run_id))
    det_dir = osp.join(run_dir, DETECTIONS)
    os.makedirs(det_dir, exist_ok=True)
    img_dir = osp.join(COCO128, 'images', 'train2017')
    meta = dict(run_id=run_id, grid=GRID, model=name, arm=arm_name,
                dataset=DATASET, seed=seed, config='synthetic',
                val_ann=ann_file, val_img=img_dir,
                val_images=len(gt['images']),
                val_instances=len(gt['annotations']))
    atomic_write_json(osp.join(run_dir, RUN_META), meta)
    # What the qualitative section reads of the config: the image folder.
    config = (f'test_dataloader = dict(dataset=dict(data_root={img_dir!r}, '
              f'data_prefix=dict(img=""), ann_file={ann_file!r}))\n')
    atomic_write(osp.join(run_dir, 'config.py'), lambda f: f.write(config))
    boxes, masks = run_detections(
        gt, run_quality(model, arm, seed), 7919 * model + 97 * arm + seed)
    metrics = {}
    for iou_type, dets in (('bbox', boxes), ('segm', masks)):
        path = detections_file(det_dir, iou_type)
        atomic_write(path, lambda f, d=dets: json.dump(d, f))
        metrics.update(_coco_metrics(coco_gt, dets, iou_type))
    row = dict(meta, **coco_metrics_to_row(metrics), status='finished',
               params=30e6 + 1e6 * model, iterations=90000,
               wall_time_s=36000.0, gpus=8, work_dir=osp.abspath(run_dir),
               detections=osp.abspath(det_dir), error='', log_tail='')
    atomic_write_json(osp.join(run_dir, FINISHED), row)
    return run_dir


def write_grid(out: str, n_images: int, log=print) -> str:
    """The grid under ``out`` (reused when it was written with the same
    spec); returns its ``results.csv``."""
    spec = dict(images=n_images, version=_SPEC_VERSION)
    spec_path = osp.join(out, 'spec.json')
    results = osp.join(out, 'work', 'results.csv')
    if osp.isfile(spec_path) and osp.isfile(results):
        with open(spec_path) as f:
            if json.load(f) == spec:
                log(f'reusing the grid in {out}')
                return results
    os.makedirs(out, exist_ok=True)
    with open(osp.join(COCO128, 'annotations', 'instances_train2017.json')) \
            as f:
        gt = tile_ground_truth(json.load(f), n_images)
    ann_file = osp.abspath(osp.join(out, 'instances_val.json'))
    atomic_write_json(ann_file, gt)
    coco_gt = load_ground_truth(ann_file)
    work_dir = osp.join(out, 'work')
    run_dirs = []
    for model in range(len(MODELS)):
        for arm in range(2):
            for seed in SEEDS:
                run_dirs.append(write_run(work_dir, ann_file, gt, coco_gt,
                                          model, arm, seed))
                log(f'  wrote {osp.basename(run_dirs[-1])}')
    path = write_results(work_dir, run_dirs)
    atomic_write_json(spec_path, spec)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out')
    parser.add_argument('--images', type=int, default=5000)
    args = parser.parse_args(argv)
    print(write_grid(args.out, args.images))
    return 0


if __name__ == '__main__':
    sys.exit(main())
