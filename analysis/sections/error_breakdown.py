"""Where AP is lost, per arm: TIDE's error breakdown for box and mask.

TIDE (Bolya et al., ECCV 2020; the ``tidecv`` package) fixes one error type
at a time and reports the AP50 it would gain (dAP): classification (Cls),
localisation (Loc), both (Both), duplicate (Dupe), background (Bkg) and
missed ground truth (Miss). Its mask mode reads the RLE masks our runs
save.

TIDE has no size ranges; a range here follows ``COCOeval``'s rule, so that
a range's AP50 is COCO's AP50 for that range: TIDE gets the ground truth
whose area falls in the range (not crowd regions) and the detections that
COCOeval counts at IoU 0.5 for the range
(:func:`analysis.coco_eval.counted.counted_detections`: a detection matched
to a ground truth outside the range is left out, and an unmatched one only
when its own area is outside the range). A correct mask a little smaller
than 96² on a large object is a hit of the large range, not a miss. Areas
are COCO's: a ground truth's annotation ``area``, a box detection's
``w * h``, a mask detection's mask area (never its box's, as mmdet's
``CocoMetric``); ranges include both ends.

TIDE's AP differs from COCOeval's in two ways, both removed while TIDE
runs (:func:`_coco_ap`): TIDE averages in, as 0, classes that have
detections and no ground truth (COCOeval leaves them out), and it samples
recall at ``x / 100``, ten of which are a little lower than COCOeval's
``np.linspace(0, 1, 101)`` (0.35, 0.41, ..., 0.95: a recall of exactly
0.7 reaches TIDE's 0.7 and not COCO's). Two matching differences are
removed too: TIDE caps detections at 100 per image, COCOeval per image and
category (COCO's cap is applied first and TIDE's lifted); of equally good
ground truths TIDE takes the first, COCOeval the last (TIDE gets them in
reverse). A range's AP50 equals COCOeval's to float rounding (1e-13).

tidecv evaluates in Python, one range at a time;
:mod:`analysis.sections.tide_fast` computes the same numbers, bit for bit,
in arrays for every range at once (IoUs once per image), and is what runs
(``tide_breakdowns(..., engine='tidecv')`` runs tidecv itself, as the tests
do to compare them).

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
from analysis.coco_eval.constants import COCO_AREAS, RECALL_THRESHOLDS
from analysis.coco_eval.counted import coco_from_dict, counted_detections
from analysis.coco_eval.detections import load_detections
from analysis.coco_eval.run_eval import note_damaged
from analysis.parallel import map_runs
from analysis.report import Section, save_figure
from analysis.sections import tide_fast
from analysis.sections.provenance import caption, gt_json
from experiments.store import (DETECTIONS, TASKS, detections_file,
                               evaluation_gt_file)

ERRORS = tide_fast.ERRORS
# TIDE's IoU threshold for a true positive (its default): AP50.
TIDE_IOU = 0.5
# 2: ranges include both ends (COCOeval's); mask areas in chunks.
# 3: ranges follow COCOeval's ignore rule; COCO's AP (classes, recall).
VERSION = 3


def tide_breakdowns(gt: dict, dets: List[dict], iou_type: str,
                    sizes: Dict[str, Tuple[float, float]] = COCO_AREAS,
                    engine: str = 'fast') -> Dict[str, Dict[str, float]]:
    """AP50 and TIDE's dAP per main error type, per size range.

    Args:
        gt: A COCO annotation file's content.
        dets: COCO results (``bbox``, and RLE ``segmentation`` for segm).
        iou_type: ``'bbox'`` or ``'segm'``.
        sizes: Name -> ``(lo, hi)`` object area range, px^2.
        engine: ``'fast'`` (:mod:`analysis.sections.tide_fast`, the same
            numbers, bit for bit; tidecv where it does not cover the
            inputs) or ``'tidecv'`` (tidecv itself, once per range).

    Returns:
        Size name -> ``{'AP50': ..., 'Cls': ..., ...}`` (x100); a range's
        AP50 is COCOeval's AP50 for that area range.
    """
    counted = counted_detections(coco_from_dict(gt), dets, iou_type, sizes,
                                 iou_threshold=TIDE_IOU)
    if engine == 'fast' and tide_fast.supported(gt, dets):
        return tide_fast.breakdowns(gt, dets, iou_type, sizes, counted,
                                    TIDE_IOU)
    from tidecv import functions as tide_f
    images = {im['id']: im for im in gt['images']}
    # Converted once, for every range.
    gt_masks = [tide_f.toRLE(a['segmentation'], images[a['image_id']]['width'],
                             images[a['image_id']]['height'])
                for a in gt['annotations']]
    return {name: _tide_one_range(
                gt, gt_masks, [d for d, c in zip(dets, counted[name]) if c],
                iou_type, bounds)
            for name, bounds in sizes.items()}


def _tide_one_range(gt: dict, gt_masks: list, dets: List[dict],
                    iou_type: str, size: Tuple[float, float]
                    ) -> Dict[str, float]:
    """TIDE on one range: its ground truth, and ``dets``, the detections
    COCOeval counts there (already cut at COCO's per-category cap)."""
    from tidecv import TIDE
    from tidecv.data import Data
    lo, hi = size
    # TIDE caps detections per image at the ground truth's max_dets.
    truth, preds = Data('gt', max_dets=len(dets) + 1), Data('dets')
    # Images in COCOeval's order (score ties across images).
    for im in sorted(gt['images'], key=lambda im: im['id']):
        truth.add_image(im['id'], im['file_name'])
    for cat in gt['categories']:
        truth.add_class(cat['id'], cat['name'])
    # Reversed: of equally good ground truths TIDE takes the first,
    # COCOeval the last in file order.
    for ann, mask in reversed(list(zip(gt['annotations'], gt_masks))):
        if not ann.get('iscrowd') and lo <= ann['area'] <= hi:
            truth.add_ground_truth(ann['image_id'], ann['category_id'],
                                   ann['bbox'], mask)
    for det in dets:
        # Box mode needs the box; mask mode reads only the mask (segm
        # results need not carry a bbox).
        preds.add_detection(det['image_id'], det['category_id'],
                            det['score'], det.get('bbox'),
                            det.get('segmentation'))
    if not truth.annotations:
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
        tide = TIDE(pos_threshold=TIDE_IOU)
    mode = TIDE.MASK if iou_type == 'segm' else TIDE.BOX
    with contextlib.redirect_stdout(io.StringIO()), _coco_ap():
        run = tide.evaluate(truth, preds, mode=mode, name='run')
        errors = tide.get_main_errors()['run']
    return dict(AP50=float(run.ap), **{e: float(errors[e]) for e in ERRORS})


def _class_ap(self) -> float:
    """``APDataObject.get_ap`` as COCOeval's accumulate computes AP (x100):
    recall thresholds ``np.linspace(0, 1, 101)`` (TIDE's ``x / 100`` are
    lower at ten of them), precision ``tp / (tp + fp + eps)``."""
    if self.num_gt_positives <= 0:
        return 0.0
    # Score descending, ties in the order pushed (stable, as TIDE's).
    points = sorted(self.data_points.values(), key=lambda p: -p[0])
    correct = np.array([bool(p[1]) for p in points], bool)
    sampled, ap = tide_fast.sampled_ap(correct, self.num_gt_positives)
    self.curve = (RECALL_THRESHOLDS, sampled)
    return ap


def _mean_ap(self) -> float:
    """``ClassedAPDataObject.get_mAP`` as COCOeval's mean: over the classes
    with ground truth (TIDE's averages in, as 0, classes that only have
    detections); 0 when none has any (every ground truth fixed away)."""
    aps = [o.get_ap() for o in self.objs.values() if o.num_gt_positives > 0]
    return sum(aps) / len(aps) if aps else 0.0


@contextlib.contextmanager
def _coco_ap():
    """TIDE's AP computed as COCOeval's, while inside."""
    from tidecv.ap import APDataObject, ClassedAPDataObject
    saved = APDataObject.get_ap, ClassedAPDataObject.get_mAP
    APDataObject.get_ap, ClassedAPDataObject.get_mAP = _class_ap, _mean_ap
    try:
        yield
    finally:
        APDataObject.get_ap, ClassedAPDataObject.get_mAP = saved


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


def _uncached(detections_dir: str, ann_file: str) -> bool:
    """Does a task of the run lack its TIDE cache entry?"""
    return any(
        osp.isfile(det_file) and not osp.isfile(eval_cache.rows_path(
            det_file, ann_file, f'tide-{iou_type}', VERSION))
        for det_file, iou_type in ((detections_file(detections_dir, t), t)
                                   for t, _ in TASKS))


def breakdown_or_error(detections_dir: str, ann_file: str
                       ) -> Tuple[Optional[pd.DataFrame], Optional[str]]:
    """(:func:`run_breakdown`, None), or (None, why the run's files do not
    read): what a worker process returns."""
    try:
        return run_breakdown(detections_dir, ann_file), None
    except (ValueError, OSError) as e:
        return None, str(e)


def _arm(r) -> str:
    return f'{r.model}/{r.arm}'


def breakdown_table(df: pd.DataFrame,
                    damaged: Optional[Dict[str, str]] = None
                    ) -> pd.DataFrame:
    """Every finished run's breakdown, one row per run, task and size.

    A run whose detections do not read is left out and recorded in
    ``damaged`` (run label -> message), with a warning.
    """
    runs = []
    for r in df[df.status == 'finished'].itertuples():
        if not isinstance(r.work_dir, str):
            continue
        det_dir = osp.join(r.work_dir, DETECTIONS)
        ann = evaluation_gt_file(r.work_dir)
        if ann and osp.isdir(det_dir):
            runs.append((r, det_dir, ann))
    # The runs TIDE has not seen yet, on every core, each run whole.
    missing = []
    for _, det_dir, ann in runs:
        try:
            if _uncached(det_dir, ann) and (det_dir, ann) not in missing:
                missing.append((det_dir, ann))
        except OSError:
            pass  # named below, as the serial path names it
    computed = dict(zip(missing, map_runs(breakdown_or_error, missing)))
    frames = []
    for r, det_dir, ann in runs:
        b, error = computed.get((det_dir, ann)) or breakdown_or_error(
            det_dir, ann)
        if error is not None:
            note_damaged(damaged if damaged is not None else {}, r, error)
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
        'Miss missed ground truth. AP50 is COCO\'s: a size range (COCO '
        'areas: small <= 32², medium 32²-96², a mask detection sized by '
        'its mask, as CocoMetric does) keeps the ground truth whose area '
        'falls in it and the detections COCOeval counts there, so a '
        'range\'s AP50 is COCOeval\'s AP50 for the range: a detection of '
        'an object of the range counts whatever its own area, one matched '
        'to an object of another range is left out, and an unmatched one '
        'counts when its own area falls in the range. A cell '
        'is the mean over seeds with [min, max] when there are several; '
        'TIDE is not bootstrapped (read differences against the intervals '
        'of the bootstrap section). ' + caption(df))
    columns = ['AP50', *ERRORS]
    summary = table.groupby(['task', 'size', 'dataset', 'arm'],
                            sort=False)[columns].agg(_mean_spread)
    summary.insert(0, 'seeds', table.groupby(
        ['task', 'size', 'dataset', 'arm'], sort=False).seed.nunique())
    section.add_table(summary.reset_index(),
                      'Per task, size range and arm: AP50 and the dAP50 of '
                      'each error type (x100), mean over seeds with '
                      '[min, max].')
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
