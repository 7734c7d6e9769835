"""COCO per-image matching in compiled code, equal to pycocotools'
``evaluate()``.

pycocotools matches in Python: for each image, category and area range, a
loop over IoU thresholds x detections x ground truths. This module runs the
same greedy algorithm, line for line (``COCOeval.evaluateImg``), in numba
over every (image, category, area) at once. IoUs come from the same formula:
boxes through a numba copy of ``maskApi.c``'s ``bbIou`` (the same double
operations, so the same bits), masks through pycocotools' own C
``maskUtils.iou``, called once per (image, category) that has both
detections and ground truth.

What is kept equal to pycocotools, because it changes results:
- detection order: score descending, ties in file order (``mergesort``),
  cut at ``max_dets`` per image and category;
- ground-truth order: not-ignored first, ties in file order;
- a crowd region may match several detections and loses to any not-ignored
  ground truth; an unmatched detection outside the area range is ignored;
- a detection's area is its box's ``w * h`` for bbox results and its
  mask's area for segm results, whether or not they carry a ``bbox``: mmdet's
  ``CocoMetric`` drops ``bbox`` from segm results before ``loadRes`` (which
  would otherwise take the box's area), so small/medium/large mask AP sizes
  mask detections by their masks; a ground truth's area is its
  annotation's ``area``.

:mod:`analysis.coco_eval.image_eval` keeps pycocotools as the reference
engine; the tests compare the two on synthetic, built-in and coco128-seg
sets, crowd regions included.
"""
from typing import Dict, List, Tuple

import numba
import numpy as np
from pycocotools import mask as mask_utils

from analysis.coco_eval.constants import IOU_THRESHOLDS
from analysis.coco_eval.detections import mask_areas


@numba.njit(cache=True)
def _box_iou(d_box, g_box, g_crowd, out):
    # maskApi.c bbIou: o[g*m+d] with m detections; here out[d, g].
    m, n = d_box.shape[0], g_box.shape[0]
    for g in range(n):
        ga = g_box[g, 2] * g_box[g, 3]
        for d in range(m):
            da = d_box[d, 2] * d_box[d, 3]
            out[d, g] = 0.0
            w = min(d_box[d, 2] + d_box[d, 0], g_box[g, 2] + g_box[g, 0]) \
                - max(d_box[d, 0], g_box[g, 0])
            if w <= 0:
                continue
            h = min(d_box[d, 3] + d_box[d, 1], g_box[g, 3] + g_box[g, 1]) \
                - max(d_box[d, 1], g_box[g, 1])
            if h <= 0:
                continue
            i = w * h
            u = da if g_crowd[g] else da + ga - i
            out[d, g] = i / u


@numba.njit(cache=True)
def _all_box_ious(d_start, g_start, d_box, g_box, g_crowd, iou_start,
                  ious):
    for p in range(len(d_start) - 1):
        d0, d1 = d_start[p], d_start[p + 1]
        g0, g1 = g_start[p], g_start[p + 1]
        if d1 == d0 or g1 == g0:
            continue
        block = np.empty((d1 - d0, g1 - g0))
        _box_iou(d_box[d0:d1], g_box[g0:g1], g_crowd[g0:g1], block)
        ious[iou_start[p]:iou_start[p] + block.size] = block.ravel()


@numba.njit(cache=True)
def _match(d_start, g_start, iou_start, ious, d_area, g_area, g_crowd,
           g_id, lo, hi, thresholds, matched, d_ignored, npig):
    """COCOeval.evaluateImg for every pair; results by detection index.

    A ground truth is ignored when it is a crowd region (``_prepare``:
    ``gt['ignore'] = gt['iscrowd']``) or its area is outside [lo, hi].
    """
    num_t = len(thresholds)
    for p in range(len(d_start) - 1):
        d0, d1 = d_start[p], d_start[p + 1]
        g0, g1 = g_start[p], g_start[p + 1]
        nd, ng = d1 - d0, g1 - g0
        gt_ig = np.empty(ng, np.bool_)
        count = 0
        for g in range(ng):
            a = g_area[g0 + g]
            gt_ig[g] = g_crowd[g0 + g] or a < lo or a > hi
            if not gt_ig[g]:
                count += 1
        npig[p] = count
        # Not-ignored ground truth first, ties in file order (mergesort).
        order = np.empty(ng, np.int64)
        k = 0
        for want in (False, True):
            for g in range(ng):
                if gt_ig[g] == want:
                    order[k] = g
                    k += 1
        gt_taken = np.zeros((num_t, ng), np.bool_)
        for t in range(num_t):
            for d in range(nd):
                best = min(thresholds[t], 1 - 1e-10)
                m = -1
                for j in range(ng):
                    g = order[j]
                    if gt_taken[t, j] and not g_crowd[g0 + g]:
                        continue
                    if m > -1 and not gt_ig[order[m]] and gt_ig[g]:
                        break
                    iou = ious[iou_start[p] + d * ng + g]
                    if iou < best:
                        continue
                    best = iou
                    m = j
                if m == -1:
                    a = d_area[d0 + d]
                    d_ignored[t, d0 + d] = a < lo or a > hi
                    continue
                d_ignored[t, d0 + d] = gt_ig[order[m]]
                # dtMatches holds the GT id: an id of 0 reads as unmatched.
                matched[t, d0 + d] = g_id[g0 + order[m]] != 0
                gt_taken[t, m] = True


class PairIndex:
    """Detections and ground truths grouped by (category, image).

    Pairs are ordered category-major, then by image, as ``evalImgs``.
    Detections of a pair are in score order (ties in file order) and cut at
    ``max_dets`` (``d_index``: their indices in the detections given);
    ground truths in file order.
    """

    def __init__(self, coco_gt, detections: List[dict], iou_type: str,
                 img_ids: List[int], cat_ids: List[int], max_dets: int):
        img_index = {i: n for n, i in enumerate(img_ids)}
        cat_index = {c: n for n, c in enumerate(cat_ids)}
        num_i = len(img_ids)
        gts = [a for i in img_ids for a in coco_gt.imgToAnns.get(i, [])
               if a['category_id'] in cat_index]
        unknown = {d['image_id'] for d in detections} - set(img_index)
        if unknown:
            raise ValueError(f'detections name image ids that are not in '
                             f'the ground truth: {sorted(unknown)[:5]}')
        known = [n for n, d in enumerate(detections)
                 if d['category_id'] in cat_index]
        dets = [detections[n] for n in known]
        g_pair = np.array([cat_index[a['category_id']] * num_i
                           + img_index[a['image_id']] for a in gts],
                          np.int64)
        d_pair = np.array([cat_index[d['category_id']] * num_i
                           + img_index[d['image_id']] for d in dets],
                          np.int64)
        d_score = np.array([d['score'] for d in dets], np.float64)
        # Pair, then score descending, then file order.
        d_order = np.lexsort((np.arange(len(dets)), -d_score, d_pair))
        d_pair, d_score = d_pair[d_order], d_score[d_order]
        rank = np.arange(len(d_pair)) - np.searchsorted(d_pair, d_pair)
        keep = rank < max_dets
        d_order, d_pair, d_score = d_order[keep], d_pair[keep], d_score[keep]
        # Each kept detection's index in ``detections``.
        self.d_index = np.asarray(known, np.int64)[d_order]
        g_order = np.argsort(g_pair, kind='stable')
        g_pair = g_pair[g_order]
        num_p = len(cat_ids) * num_i
        self.num_pairs = num_p
        self.d_start = np.searchsorted(d_pair, np.arange(num_p + 1))
        self.g_start = np.searchsorted(g_pair, np.arange(num_p + 1))
        self.d_pair, self.d_score = d_pair, d_score
        self.d_img = d_pair % num_i
        self.d_cat = d_pair // num_i
        dets = [dets[i] for i in d_order]
        gts = [gts[i] for i in g_order]
        self.g_area = np.array([a['area'] for a in gts], np.float64)
        self.g_id = np.array([a['id'] for a in gts], np.int64)
        self.g_crowd = np.array([bool(a.get('iscrowd', 0)) for a in gts],
                                np.bool_)
        sizes = (self.d_start[1:] - self.d_start[:-1]) * (
            self.g_start[1:] - self.g_start[:-1])
        self.iou_start = np.concatenate([[0], np.cumsum(sizes)])
        self.ious = np.zeros(int(self.iou_start[-1]))
        if iou_type not in ('bbox', 'segm'):
            raise ValueError(f'iou_type must be bbox or segm, got '
                             f'{iou_type!r}')
        # A box result's area is its box's; a mask result's its mask's, as
        # CocoMetric evaluates segm results (bbox dropped before loadRes).
        if iou_type == 'bbox':
            d_box = np.array([d['bbox'] for d in dets],
                             np.float64).reshape(-1, 4)
            self.d_area = d_box[:, 2] * d_box[:, 3]
        else:
            self.d_area = mask_areas([d['segmentation'] for d in dets])
        if iou_type == 'bbox':
            g_box = np.array([a['bbox'] for a in gts],
                             np.float64).reshape(-1, 4)
            _all_box_ious(self.d_start, self.g_start, d_box, g_box,
                          self.g_crowd, self.iou_start, self.ious)
        else:
            d_rle = [d['segmentation'] for d in dets]
            g_rle = [coco_gt.annToRLE(a) for a in gts]
            for p in np.flatnonzero(sizes):
                d0, d1 = self.d_start[p], self.d_start[p + 1]
                g0, g1 = self.g_start[p], self.g_start[p + 1]
                block = mask_utils.iou(d_rle[d0:d1], g_rle[g0:g1],
                                       [int(c) for c in
                                        self.g_crowd[g0:g1]])
                self.ious[self.iou_start[p]:self.iou_start[p + 1]] = \
                    np.asarray(block, np.float64).ravel()

    def match(self, area: Tuple[float, float]
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(matched (T, D), ignored (T, D), not-ignored GT per pair)."""
        num_d = len(self.d_pair)
        matched = np.zeros((len(IOU_THRESHOLDS), num_d), np.bool_)
        ignored = np.zeros((len(IOU_THRESHOLDS), num_d), np.bool_)
        npig = np.zeros(self.num_pairs, np.int64)
        _match(self.d_start, self.g_start, self.iou_start, self.ious,
               self.d_area, self.g_area, self.g_crowd, self.g_id,
               float(area[0]), float(area[1]), IOU_THRESHOLDS, matched,
               ignored, npig)
        return matched, ignored, npig


def area_tables(index: PairIndex, areas: Dict[str, Tuple[float, float]],
                num_k: int, num_i: int) -> List[dict]:
    """For each area range, the fields of an
    :class:`~analysis.coco_eval.area_table.AreaTable`, in accumulate's order.

    ``COCOeval.accumulate`` concatenates, per category, each image's
    detections (image order, score order within) and sorts them by score
    with mergesort: category, then score descending, then image, then rank
    in the image.
    """
    num_t = len(IOU_THRESHOLDS)
    rank = np.arange(len(index.d_pair)) - index.d_start[index.d_pair]
    order = np.lexsort((rank, index.d_img, -index.d_score, index.d_cat))
    d_cat, d_img = index.d_cat[order], index.d_img[order]
    out = []
    for lo_hi in areas.values():
        matched, ignored, npig = index.match(lo_hi)
        matched, ignored = matched[:, order], ignored[:, order]
        keep = ~ignored
        # Segment s = k * T + t, score order within.
        seg = (d_cat[None, :] * num_t + np.arange(num_t)[:, None])[keep]
        img = np.broadcast_to(d_img, keep.shape)[keep]
        hit = matched[keep]
        by_seg = np.argsort(seg, kind='stable')
        seg, img, hit = seg[by_seg], img[by_seg], hit[by_seg]
        det_start = np.searchsorted(seg, np.arange(num_k * num_t + 1))
        tp_pos = np.flatnonzero(hit)
        tp_start = np.searchsorted(seg[tp_pos], np.arange(num_k * num_t + 1))
        out.append(dict(det_img=img.astype(np.int64), det_start=det_start,
                        tp_img=img[tp_pos].astype(np.int64), tp_pos=tp_pos,
                        tp_start=tp_start,
                        npig=npig.reshape(num_k, num_i).astype(np.float64)))
    return out


@numba.njit(cache=True, parallel=True)
def precision_kernel(w, det_img, det_start, tp_img, tp_pos, tp_start,
                     npig_w, num_t, recall_thresholds, out):
    """Interpolated precision (K*T, R) for image weights ``w``.

    The loop form of ``AreaTable``'s weighted accumulate: per segment,
    weighted detection and TP counts at each TP, the precision envelope
    from the back, then the first TP reaching each recall threshold.
    """
    num_s = len(det_start) - 1
    num_r = len(recall_thresholds)
    eps = np.spacing(1.0)
    for s in numba.prange(num_s):
        n_gt = npig_w[s // num_t]
        if n_gt <= 0:
            for r in range(num_r):
                out[s, r] = -1.0
            continue
        q0, q1 = tp_start[s], tp_start[s + 1]
        for r in range(num_r):
            out[s, r] = 0.0
        if q1 == q0:
            continue
        prec = np.empty(q1 - q0)
        rec = np.empty(q1 - q0)
        det_n = 0.0
        tp_n = 0.0
        q = q0
        for j in range(det_start[s], det_start[s + 1]):
            det_n += w[det_img[j]]
            if q < q1 and tp_pos[q] == j:
                tp_n += w[tp_img[q]]
                prec[q - q0] = tp_n / (det_n + eps)
                rec[q - q0] = tp_n / n_gt
                q += 1
        for i in range(q1 - q0 - 2, -1, -1):
            if prec[i + 1] > prec[i]:
                prec[i] = prec[i + 1]
        i = 0
        for r in range(num_r):
            while i < q1 - q0 and rec[i] < recall_thresholds[r]:
                i += 1
            if i == q1 - q0:
                break
            out[s, r] = prec[i]
