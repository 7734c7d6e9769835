"""TIDE's error breakdown (``tidecv``) computed in arrays, equal to tidecv's
bit for bit, for every size range of a run at once.

tidecv evaluates in Python dicts, one detection at a time, and repeats the
whole evaluation for each size range; its six error fixes each rebuild the
AP data of every detection. This module keeps tidecv's algorithm and its
order of operations, as :func:`analysis.sections.error_breakdown` runs it
(``_tide_one_range``: no ignore regions, no detection cap, COCOeval's AP):

- IoUs come from the same call, ``pycocotools.mask.iou`` (every detection
  of an image against every non-crowd ground truth of it), made once per
  image for all ranges: each pair's IoU does not depend on the others in
  the call;
- per image, detections in score order (ties in file order), ground truth
  in the order tidecv gets it (reversed file order); the greedy matching
  and the error tests run in numba, line for line ``TIDEExample._run`` and
  ``TIDERun._eval_image`` (``np.argmax`` is the first maximum);
- each AP is COCOeval's (``sampled_ap``, which the tidecv patch
  ``error_breakdown._class_ap`` calls too) over the same points in the same
  order: a class's points sorted by score, ties in tidecv's push order,
  and classes averaged in the order tidecv's dicts hold them, so that
  every float sum is the same sum.

:func:`supported` names the inputs this path does not cover (then the
caller runs tidecv itself). The tests compare both paths with ``==``.
"""
from typing import Dict, List, Tuple

import numba
import numpy as np
from pycocotools import mask as mask_utils

from analysis.coco_eval.constants import RECALL_THRESHOLDS

ERRORS = ('Cls', 'Loc', 'Both', 'Dupe', 'Bkg', 'Miss')
# Error codes of the kernel; MATCHED is a true positive.
MATCHED, CLS, LOC, BOTH, DUPE, BKG = -1, 0, 1, 2, 3, 4


def sampled_ap(correct: np.ndarray, num_gt: int) -> Tuple[list, float]:
    """COCOeval's AP (x100) of one class's points, sorted by score.

    Args:
        correct: Whether each point is a true positive, best score first.
        num_gt: The class's ground truth count (> 0).

    Returns:
        (precision at each of ``RECALL_THRESHOLDS``, their mean x100).
    """
    tp = np.cumsum(correct).astype(float)
    fp = np.cumsum(~correct).astype(float)
    recall = tp / num_gt
    precision = np.maximum.accumulate(
        (tp / (fp + tp + np.spacing(1)))[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_THRESHOLDS, side='left')
    sampled = np.zeros(len(RECALL_THRESHOLDS))
    reached = at < len(precision)
    sampled[reached] = precision[at[reached]]
    return list(sampled), float(sampled.mean() * 100)


@numba.njit(cache=True)
def _first_max(ious, base, g_col, g0, g1, keep):
    """``np.argmax`` of a row whose entries outside ``keep`` read 0."""
    best, value = g0, 0.0
    for g in range(g0, g1):
        v = ious[base + g_col[g]] if keep[g - g0] else 0.0
        if g == g0 or v > value:
            best, value = g, v
    return best, value


@numba.njit(cache=True)
def _eval_images(d_start, g_start, d_row, g_col, iou_start, iou_width, ious,
                 d_cls, g_cls, d_score, pos_thresh, bg_thresh,
                 err, target, g_used, g_usable, g_best):
    """``TIDERun._eval_image`` on every image of one range.

    Detections and ground truths are in tidecv's order, grouped by image
    (``d_start``, ``g_start``). Writes, per detection, ``err`` (MATCHED or
    the error) and ``target`` (the matched ground truth, or that of a Loc
    or Cls error); per ground truth, ``g_used`` (matched), ``g_usable``
    (an unmatched one some Loc or Cls error could fix) and ``g_best`` (the
    detection whose fix takes it: ``BestGTMatch``).
    """
    best_score = np.full(len(g_cls), -1.0)
    for im in range(len(d_start) - 1):
        d0, d1 = d_start[im], d_start[im + 1]
        g0, g1 = g_start[im], g_start[im + 1]
        if d1 == d0:
            continue  # every ground truth missed
        if g1 == g0:
            for d in range(d0, d1):
                err[d] = BKG
            continue
        width = iou_width[im]
        keep = np.empty(g1 - g0, np.bool_)
        # TIDEExample._run: the best unmatched ground truth of the class.
        for d in range(d0, d1):
            base = iou_start[im] + d_row[d] * width
            for g in range(g0, g1):
                keep[g - g0] = d_cls[d] == g_cls[g] and not g_used[g]
            g, v = _first_max(ious, base, g_col, g0, g1, keep)
            if v >= pos_thresh:
                err[d] = MATCHED
                target[d] = g
                g_used[g] = True
        # TIDERun._eval_image: why an unmatched detection is negative.
        for d in range(d0, d1):
            if err[d] == MATCHED:
                continue
            base = iou_start[im] + d_row[d] * width
            for g in range(g0, g1):
                keep[g - g0] = d_cls[d] == g_cls[g]
            g, v = _first_max(ious, base, g_col, g0, g1, keep)
            if bg_thresh <= v <= pos_thresh:
                err[d] = LOC
            else:
                for k in range(g0, g1):
                    keep[k - g0] = d_cls[d] != g_cls[k]
                g, v = _first_max(ious, base, g_col, g0, g1, keep)
                if v >= pos_thresh:
                    err[d] = CLS
            if err[d] == LOC or err[d] == CLS:
                target[d] = g
                if not g_used[g]:
                    g_usable[g] = True
                    if best_score[g] < d_score[d]:
                        best_score[g] = d_score[d]
                        g_best[g] = d
                continue
            for g in range(g0, g1):
                keep[g - g0] = d_cls[d] == g_cls[g] and g_used[g]
            g, v = _first_max(ious, base, g_col, g0, g1, keep)
            if v >= pos_thresh:
                err[d] = DUPE
                continue
            for g in range(g0, g1):
                keep[g - g0] = True
            g, v = _first_max(ious, base, g_col, g0, g1, keep)
            err[d] = BKG if v <= bg_thresh else BOTH


def supported(gt: dict, dets: List[dict]) -> bool:
    """Whether this path covers the inputs: every annotation and detection
    on a listed image (tidecv would add the others' images in its own
    order), every score finite and above -1 (tidecv's ``BestGTMatch``
    starts at -1; NaN does not sort)."""
    images = {im['id'] for im in gt['images']}
    scores = np.array([d['score'] for d in dets], float)
    return (all(a['image_id'] in images for a in gt['annotations'])
            and all(d['image_id'] in images for d in dets)
            and bool(np.all(np.isfinite(scores) & (scores > -1))))


def _ious(gt: dict, dets: List[dict], iou_type: str, used: np.ndarray,
          d_img: np.ndarray, keep_g: List[int], g_img: np.ndarray,
          n_img: int):
    """Every used detection's IoU with every non-crowd ground truth of its
    image, through pycocotools once per image: (flat IoUs, block start and
    width per image, row per detection, column per ground truth)."""
    from tidecv import functions as tide_f
    anns = gt['annotations']
    d_of = [[] for _ in range(n_img)]
    for d in np.flatnonzero(used):
        d_of[d_img[d]].append(d)
    g_of = [[] for _ in range(n_img)]
    for k, n in enumerate(keep_g):
        g_of[g_img[k]].append(k)
    if iou_type == 'segm':
        size = {im['id']: (im['width'], im['height']) for im in gt['images']}

        def g_geom(n):
            a = anns[n]
            return tide_f.toRLE(a['segmentation'], *size[a['image_id']])
        d_key = 'segmentation'
    else:
        def g_geom(n):
            return anns[n]['bbox']
        d_key = 'bbox'
    d_row = np.zeros(len(dets), np.int64)
    g_col = np.zeros(len(keep_g), np.int64)
    start = np.zeros(n_img, np.int64)
    width = np.zeros(n_img, np.int64)
    blocks, at = [], 0
    for im in range(n_img):
        ds, gs = d_of[im], g_of[im]
        g_col[gs] = np.arange(len(gs))
        width[im] = len(gs)
        start[im] = at
        if not ds or not gs:
            continue
        d_row[ds] = np.arange(len(ds))
        block = mask_utils.iou([dets[d].get(d_key) for d in ds],
                               [g_geom(keep_g[k]) for k in gs],
                               [False] * len(gs))
        blocks.append(np.asarray(block, np.float64).reshape(-1))
        at += len(ds) * len(gs)
    ious = np.concatenate(blocks) if blocks else np.zeros(0)
    return ious, start, width, d_row, g_col


def breakdowns(gt: dict, dets: List[dict], iou_type: str,
               sizes: Dict[str, Tuple[float, float]],
               counted: Dict[str, np.ndarray], pos_thresh: float,
               bg_thresh: float = 0.1) -> Dict[str, Dict[str, float]]:
    """``error_breakdown._tide_one_range`` for every range (see there).

    Args:
        gt: A COCO annotation file's content (:func:`supported`).
        dets: COCO results.
        iou_type: ``'bbox'`` or ``'segm'``.
        sizes: Name -> ``(lo, hi)`` ground-truth area range.
        counted: Name -> the detections COCOeval counts in the range.
        pos_thresh: TIDE's IoU threshold for a true positive.
        bg_thresh: TIDE's background threshold (its default).

    Returns:
        Size name -> ``{'AP50': ..., 'Cls': ..., ...}`` (x100).
    """
    rank = {i: r for r, i in enumerate(sorted(
        im['id'] for im in gt['images']))}
    anns = gt['annotations']
    keep_g = [n for n, a in enumerate(anns) if not a.get('iscrowd')]
    codes: Dict[object, int] = {}
    g_cls = np.array([codes.setdefault(anns[n]['category_id'], len(codes))
                      for n in keep_g], np.int64)
    g_img = np.array([rank[anns[n]['image_id']] for n in keep_g], np.int64)
    d_cls = np.array([codes.setdefault(d['category_id'], len(codes))
                      for d in dets], np.int64)
    d_img = np.array([rank[d['image_id']] for d in dets], np.int64)
    d_score = np.array([d['score'] for d in dets], np.float64)
    used = np.zeros(len(dets), bool)
    for c in counted.values():
        used |= c
    ious, iou_start, iou_width, d_row, g_col = _ious(
        gt, dets, iou_type, used, d_img, keep_g, g_img, len(rank))
    out = {}
    for name, (lo, hi) in sizes.items():
        in_range = np.array([lo <= anns[n]['area'] <= hi for n in keep_g],
                            bool)
        sel_g = np.flatnonzero(in_range)
        # Ground truth as tidecv gets it: reversed file order.
        rg = sel_g[np.lexsort((-sel_g, g_img[sel_g]))]
        sel_d = np.flatnonzero(counted[name])
        rd = sel_d[np.lexsort((sel_d, -d_score[sel_d], d_img[sel_d]))]
        if not len(rg):
            out[name] = dict(AP50=float('nan'),
                             **{e: float('nan') for e in ERRORS})
            continue
        if not len(rd):
            out[name] = dict(AP50=0.0, **{e: float('nan') for e in ERRORS})
            continue
        bounds = np.arange(len(rank) + 1)
        err = np.full(len(rd), -2, np.int8)
        target = np.full(len(rd), -1, np.int64)
        g_used = np.zeros(len(rg), bool)
        g_usable = np.zeros(len(rg), bool)
        g_best = np.full(len(rg), -1, np.int64)
        _eval_images(np.searchsorted(d_img[rd], bounds),
                     np.searchsorted(g_img[rg], bounds), d_row[rd],
                     g_col[rg], iou_start, iou_width, ious, d_cls[rd],
                     g_cls[rg], d_score[rd], pos_thresh, bg_thresh, err,
                     target, g_used, g_usable, g_best)
        out[name] = _errors(err, target, g_used, g_usable, g_best,
                            d_cls[rd], d_score[rd], d_img[rd], g_cls[rg],
                            g_img[rg], len(codes))
    return out


def _first_seen(seq: np.ndarray) -> List[int]:
    """The distinct values of ``seq`` in order of first appearance."""
    if not len(seq):
        return []
    values, first = np.unique(seq, return_index=True)
    return [int(v) for v in values[np.argsort(first)]]


def _mean_ap(classes: List[int], cls: np.ndarray, correct: np.ndarray,
             num_gt: np.ndarray) -> float:
    """``error_breakdown._mean_ap``: ``cls`` and ``correct`` are the points
    in score order, ties in push order; ``classes`` in the order tidecv's
    dict holds them (the mean is a float sum in that order)."""
    by = np.argsort(cls, kind='stable')
    cls, correct = cls[by], correct[by]
    edges = np.searchsorted(cls, np.arange(len(num_gt) + 1))
    aps = [sampled_ap(correct[edges[c]:edges[c + 1]], int(num_gt[c]))[1]
           for c in classes if num_gt[c] > 0]
    return sum(aps) / len(aps) if aps else 0.0


def _errors(err, target, g_used, g_usable, g_best, cls, score, img, g_cls,
            g_img, n_cls: int) -> Dict[str, float]:
    """AP50 and dAP per error of one range from the kernel's results
    (detections in tidecv's order, ``pos``): ``TIDERun._run``'s AP, then
    ``fix_main_errors``, one ``fix_errors`` per error type."""
    pos = np.arange(len(cls))
    matched = err == MATCHED
    num_gt = np.bincount(g_cls, minlength=n_cls)
    # ClassedAPDataObject's classes: per image, its ground truth's, then
    # its detections'.
    events = np.lexsort((np.concatenate((np.arange(len(g_cls)), pos)),
                         np.repeat([0, 1], [len(g_cls), len(cls)]),
                         np.concatenate((g_img, img))))
    objs = _first_seen(np.concatenate((g_cls, cls))[events])
    by_score = np.lexsort((pos, -score))
    ap = _mean_ap(objs, cls[by_score], matched[by_score], num_gt)
    out = dict(AP50=float(ap))
    # fix_errors pushes the errors first (detection order), then the true
    # positives: among equal scores, errors come first.
    by_score = np.lexsort((pos, matched, -score))
    fixable = (err == CLS) | (err == LOC)
    t = target[fixable]
    best = np.zeros(len(cls), bool)
    best[fixable] = ~g_used[t] & (g_best[t] == pos[fixable])
    fixed_cls = cls.copy()
    fixed_cls[err == CLS] = g_cls[target[err == CLS]]
    missed = ~g_used & ~g_usable
    for code, name in enumerate(ERRORS):
        gt_pos = num_gt
        if name == 'Miss':
            keep, push_cls, correct = np.ones(len(cls), bool), cls, matched
            gt_pos = num_gt - np.bincount(g_cls[missed], minlength=n_cls)
        else:
            fixed = (err == code) & best
            keep = (err != code) | fixed
            push_cls = np.where(fixed, fixed_cls, cls)
            correct = matched | fixed
        first = _first_seen(push_cls[keep & ~matched])
        seen = set(first)
        classes = first + [c for c in objs if c not in seen]
        p = by_score[keep[by_score]]
        new = _mean_ap(classes, push_cls[p], correct[p], gt_pos)
        out[name] = float(max(new - ap, 0))
    return out
