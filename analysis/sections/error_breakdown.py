"""Where AP is lost, per arm: TIDE's error breakdown for box and mask.

TIDE (Bolya et al., ECCV 2020; the ``tidecv`` package) fixes one error type
at a time and reports the AP50 it would gain (dAP): classification (Cls),
localisation (Loc), both (Both), duplicate (Dupe), background (Bkg) and
missed ground truth (Miss). Its mask mode reads the RLE masks our runs
save. TIDE has no size ranges; here a range keeps the ground truth whose
area falls in it (the rest become ignore regions, as COCO ignores them) and
the detections whose area falls in it, so "Eq. 2 finds small objects that
Eq. 1 misses" reads as a smaller small-object Miss. Areas are COCO's: a
ground truth's annotation ``area``, a box detection's ``w * h``, a mask
detection's mask area (never its box's, as mmdet's ``CocoMetric``), and
ranges include both ends, as ``COCOeval``'s.

Each run's breakdown is cached in ``<detections>/eval-cache/tide-*.json``,
keyed by the detection and annotation files' contents.
"""
import contextlib
import io
import os.path as osp
from typing import Dict, List, Optional, Tuple

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.coco_eval import eval_cache
from analysis.coco_eval.constants import COCO_AREAS
from analysis.coco_eval.detections import load_detections, mask_areas
from analysis.coco_eval.run_eval import note_damaged
from analysis.report import Section, save_figure
from analysis.sections.provenance import caption, gt_json
from experiments.store import (DETECTIONS, TASKS, detections_file,
                               evaluation_gt_file)

ERRORS = ('Cls', 'Loc', 'Both', 'Dupe', 'Bkg', 'Miss')
# 2: ranges include both ends (COCOeval's); mask areas in chunks.
VERSION = 2


def _det_areas(dets: List[dict], iou_type: str) -> np.ndarray:
    """COCO's detection areas: mask area for segm (a ``bbox`` there is not
    used), ``w * h`` for bbox."""
    if iou_type == 'segm':
        return mask_areas([d['segmentation'] for d in dets])
    return np.array([float(d['bbox'][2] * d['bbox'][3]) for d in dets])


def tide_breakdowns(gt: dict, dets: List[dict], iou_type: str,
                    sizes: Dict[str, Tuple[float, float]] = COCO_AREAS
                    ) -> Dict[str, Dict[str, float]]:
    """AP50 and TIDE's dAP per main error type, per size range.

    Args:
        gt: A COCO annotation file's content.
        dets: COCO results (``bbox``, and RLE ``segmentation`` for segm).
        iou_type: ``'bbox'`` or ``'segm'``.
        sizes: Name -> ``(lo, hi)`` object area range, px^2.

    Returns:
        Size name -> ``{'AP50': ..., 'Cls': ..., ...}`` (x100).
    """
    from tidecv import functions as tide_f
    images = {im['id']: im for im in gt['images']}
    # Converted once, for every range.
    gt_masks = [tide_f.toRLE(a['segmentation'], images[a['image_id']]['width'],
                             images[a['image_id']]['height'])
                for a in gt['annotations']]
    det_areas = _det_areas(dets, iou_type)
    return {name: _tide_one_range(gt, gt_masks, dets, det_areas, iou_type,
                                  bounds)
            for name, bounds in sizes.items()}


def _tide_one_range(gt: dict, gt_masks: list, dets: List[dict],
                    det_areas: List[float], iou_type: str,
                    size: Tuple[float, float]) -> Dict[str, float]:
    from tidecv import TIDE
    from tidecv.data import Data
    lo, hi = size
    truth, preds = Data('gt'), Data('dets')
    for im in gt['images']:
        truth.add_image(im['id'], im['file_name'])
    for cat in gt['categories']:
        truth.add_class(cat['id'], cat['name'])
    for ann, mask in zip(gt['annotations'], gt_masks):
        inside = lo <= ann['area'] <= hi
        if ann.get('iscrowd') or not inside:
            truth.add_ignore_region(ann['image_id'], ann['category_id'],
                                    ann['bbox'], mask)
        else:
            truth.add_ground_truth(ann['image_id'], ann['category_id'],
                                   ann['bbox'], mask)
    for det, area in zip(dets, det_areas):
        if lo <= area <= hi:
            # Box mode needs the box; mask mode reads only the mask (segm
            # results need not carry a bbox).
            preds.add_detection(det['image_id'], det['category_id'],
                                det['score'], det.get('bbox'),
                                det.get('segmentation'))
    if not any(not a['ignore'] for a in truth.annotations):
        # No ground truth in the range: AP and its errors are undefined
        # (TIDE itself divides by zero).
        return dict(AP50=float('nan'), **{e: float('nan') for e in ERRORS})
    if not preds.annotations:
        # Nothing detected: AP50 is 0; what fixing an error would gain is
        # undefined (TIDE divides by zero).
        return dict(AP50=0.0, **{e: float('nan') for e in ERRORS})
    # TIDE's constructor calls seaborn.set(), which restyles every later
    # figure of the process: only a run whose TIDE cache was missing would
    # draw its report in seaborn's style. Its settings stay inside here.
    with matplotlib.rc_context():
        tide = TIDE()
    mode = TIDE.MASK if iou_type == 'segm' else TIDE.BOX
    with contextlib.redirect_stdout(io.StringIO()):
        run = tide.evaluate(truth, preds, mode=mode, name='run')
        errors = tide.get_main_errors()['run']
    return dict(AP50=float(run.ap), **{e: float(errors[e]) for e in ERRORS})


def run_breakdown(detections_dir: str, ann_file: str) -> pd.DataFrame:
    """One row per (task, size range): AP50 and dAP per error, cached
    (:func:`analysis.coco_eval.eval_cache.load_rows`)."""
    rows = []
    for iou_type, task in TASKS:
        det_file = detections_file(detections_dir, iou_type)
        if not osp.isfile(det_file):
            continue
        cached = eval_cache.load_rows(det_file, ann_file, f'tide-{iou_type}',
                                      VERSION, 'TIDE')
        if cached is not None:
            rows += cached
            continue
        found = [dict(task=task, size=name, **errors)
                 for name, errors in tide_breakdowns(
                     gt_json(ann_file), load_detections(det_file),
                     iou_type).items()]
        eval_cache.store_rows(found, det_file, ann_file, f'tide-{iou_type}',
                              VERSION)
        rows += found
    return pd.DataFrame(rows)


def _arm(r) -> str:
    return f'{r.model}/{r.arm}'


def breakdown_table(df: pd.DataFrame,
                    damaged: Optional[Dict[str, str]] = None
                    ) -> pd.DataFrame:
    """Every finished run's breakdown, one row per run, task and size.

    A run whose detections do not read is left out and recorded in
    ``damaged`` (run label -> message), with a warning.
    """
    frames = []
    for r in df[df.status == 'finished'].itertuples():
        if not isinstance(r.work_dir, str):
            continue
        det_dir = osp.join(r.work_dir, DETECTIONS)
        ann = evaluation_gt_file(r.work_dir)
        if not ann or not osp.isdir(det_dir):
            continue
        try:
            b = run_breakdown(det_dir, ann)
        except (ValueError, OSError) as e:
            note_damaged(damaged if damaged is not None else {}, r, str(e))
            continue
        if b.empty:
            continue
        b.insert(0, 'arm', _arm(r))
        b.insert(1, 'dataset', r.dataset)
        b.insert(2, 'seed', r.seed)
        frames.append(b)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _mean_spread(values: pd.Series) -> str:
    v = values.dropna().to_numpy(float)
    if not v.size:
        return '–'
    if v.size == 1:
        return f'{v[0]:.1f}'
    return f'{v.mean():.1f} [{v.min():.1f}, {v.max():.1f}]'


def error_breakdown_section(df: pd.DataFrame, out_dir: str,
                            damaged: Optional[Dict[str, str]] = None
                            ) -> Section:
    section = Section('Where AP is lost: TIDE error breakdown', [])
    table = breakdown_table(df, damaged)
    if table.empty:
        section.text.append('No finished run with saved detections.')
        return section
    section.text.append(
        'TIDE (tidecv) dAP: the AP50 (x100) each arm would gain if that '
        'error type were fixed -- Cls classification, Loc localisation, Both '
        'classification and localisation, Dupe duplicate, Bkg background, '
        'Miss missed ground truth. Size ranges keep the ground truth and '
        'the detections whose area falls in them (COCO areas: small <= 32², '
        'medium 32²-96², a mask detection sized by its mask, as CocoMetric '
        'does); other ground truth counts as ignore regions. A cell '
        'is the mean over seeds with [min, max] when there are several; '
        'TIDE is not bootstrapped (read differences against the intervals '
        'of the bootstrap section). ' + caption(df))
    columns = ['AP50', *ERRORS]
    summary = table.groupby(['task', 'size', 'dataset', 'arm'],
                            sort=False)[columns].agg(_mean_spread)
    summary.insert(0, 'seeds', table.groupby(
        ['task', 'size', 'dataset', 'arm'], sort=False).seed.nunique())
    section.tables.append(summary.reset_index())
    section.figures.append(_plot(table, out_dir))
    return section


def _plot(table: pd.DataFrame, out_dir: str) -> str:
    means = table.groupby(['task', 'size', 'arm'], sort=False)[
        list(ERRORS)].mean()
    arms = list(dict.fromkeys(table.arm))
    tasks = list(dict.fromkeys(table.task))
    fig, axes = plt.subplots(len(tasks), len(COCO_AREAS), squeeze=False,
                             figsize=(3.2 * len(COCO_AREAS), 2.6 * len(tasks)),
                             sharey=True)
    width = 0.8 / len(arms)
    x = np.arange(len(ERRORS))
    for i, task in enumerate(tasks):
        for j, size in enumerate(COCO_AREAS):
            ax = axes[i][j]
            for k, arm in enumerate(arms):
                if (task, size, arm) not in means.index:
                    continue
                ax.bar(x + (k - (len(arms) - 1) / 2) * width,
                       means.loc[(task, size, arm)].to_numpy(float), width,
                       label=arm)
            ax.set_xticks(x, ERRORS, fontsize=7)
            ax.set_title(f'{task}, {size}', fontsize=9)
            ax.grid(axis='y', alpha=0.3)
            if j == 0:
                ax.set_ylabel('dAP50 (x100)')
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, osp.join(out_dir, 'tide_errors.png'))
