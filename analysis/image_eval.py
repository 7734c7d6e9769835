"""COCO matching once per image, then AP for any subset or resample of images.

pycocotools' ``COCOeval.evaluate()`` does the expensive part -- matching the
detections of each image to its ground truth, per category, IoU threshold and
area range. :func:`evaluate_images` runs it once and keeps, for each area
range and category, every detection in the global score order that
``COCOeval.accumulate()`` uses, with its image, its match per IoU threshold
and whether it is ignored, plus the number of non-ignored ground truths per
image. :meth:`ImageEval.precision` then recomputes accumulate's precision
table for *image weights* -- 1 for every image is the full set and equals
pycocotools to float precision; integer counts are a bootstrap resample (an
image drawn twice counts twice); 0/1 is a subset.

Why weights are exact: a resampled image's detections are copies with equal
scores, adjacent in the order. COCO's interpolated precision at a recall
threshold is the maximum precision at or after the first detection reaching
that recall. Within a run of copies of one true positive, precision rises
(or stays) and recall steps up, so every threshold falling inside the run
gets the run's last value; copies of a false positive never raise the
maximum. Only the last copy matters: its counts are the weighted cumulative
sums. And because the maximum after a position is always reached at a true
positive, the computation only needs the true positives' positions.
"""
import contextlib
import dataclasses
import io
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from experiments.store import finite_numbers

# COCOeval's defaults.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
COCO_AREAS = {'all': (0.0, 1e10), 'small': (0.0, 32.0 ** 2),
              'medium': (32.0 ** 2, 96.0 ** 2), 'large': (96.0 ** 2, 1e10)}


def log_area_bins(n: int = 8, lo: float = 8.0 ** 2,
                  hi: float = 512.0 ** 2) -> Dict[str, Tuple[float, float]]:
    """``n`` object-area bins, log-spaced between ``lo`` and ``hi`` (px²).

    The first bin starts at 0 and the last ends at 1e10, so every object
    falls in exactly one bin. Names give the side of an equal-area square,
    e.g. ``16-23px``; the last is ``304px+``.
    """
    edges = np.geomspace(lo, hi, n + 1)
    edges[0], edges[-1] = 0.0, 1e10
    bins = {}
    for a, b in zip(edges[:-1], edges[1:]):
        left = '0' if a == 0 else f'{np.sqrt(a):.0f}'
        name = (f'{left}px+' if b >= 1e10 else
                f'{left}-{np.sqrt(b):.0f}px')
        bins[name] = (float(a), float(b))
    return bins


@dataclasses.dataclass
class _AreaTable:
    """Every (category, IoU threshold) segment of one area range, flattened.

    Segment ``s = k * T + t``. ``det_img`` holds the image of each
    non-ignored detection in score order, segment after segment
    (``det_start`` offsets, one past the end last); ``tp_img`` and
    ``tp_pos`` (global index into ``det_img``) the true positives among
    them (``tp_start`` offsets); ``npig`` (categories x images) the
    non-ignored ground truths.
    """

    det_img: np.ndarray
    det_start: np.ndarray
    tp_img: np.ndarray
    tp_pos: np.ndarray
    tp_start: np.ndarray
    npig: np.ndarray

    @classmethod
    def build(cls, segments: Dict[Tuple[int, int], Tuple[list, list]],
              num_k: int, npig: np.ndarray) -> '_AreaTable':
        num_t = len(IOU_THRESHOLDS)
        det_img, tp_img, tp_pos = [], [], []
        det_start, tp_start = [0], [0]
        offset = 0
        for k in range(num_k):
            dets, tps = segments.get(k, ([np.zeros(0, np.int64)] * num_t,
                                         [np.zeros(0, np.int64)] * num_t))
            for t in range(num_t):
                det_img.append(dets[t])
                tp_img.append(dets[t][tps[t]])
                tp_pos.append(tps[t] + offset)
                offset += len(dets[t])
                det_start.append(offset)
                tp_start.append(tp_start[-1] + len(tps[t]))
        return cls(np.concatenate(det_img), np.asarray(det_start),
                   np.concatenate(tp_img), np.concatenate(tp_pos),
                   np.asarray(tp_start), npig)

    def precision(self, w: np.ndarray) -> np.ndarray:
        """Interpolated precision (T, R, K) for image weights ``w``."""
        num_t, num_r = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
        num_k = self.npig.shape[0]
        npig = self.npig @ w
        kernel = _precision_kernel()
        if kernel is not None:
            out = np.empty((num_k * num_t, num_r))
            kernel(w, self.det_img, self.det_start, self.tp_img, self.tp_pos,
                   self.tp_start, npig, num_t, RECALL_THRESHOLDS, out)
            return out.reshape(num_k, num_t, num_r).transpose(1, 2, 0)
        return self._precision_numpy(w, npig)

    def _precision_numpy(self, w: np.ndarray, npig: np.ndarray) -> np.ndarray:
        num_t, num_r = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
        num_k = self.npig.shape[0]
        out = np.zeros((num_k * num_t, num_r))
        if self.tp_img.size:
            # Weighted counts up to each TP, per segment: global cumulative
            # sums minus the sum before the segment starts.
            det_cum = np.concatenate([[0.0], np.cumsum(w[self.det_img])])
            tp_cum = np.concatenate([[0.0], np.cumsum(w[self.tp_img])])
            seg = np.repeat(np.arange(num_k * num_t), np.diff(self.tp_start))
            tp_n = tp_cum[1:] - tp_cum[self.tp_start[seg]]
            det_n = det_cum[self.tp_pos + 1] - det_cum[self.det_start[seg]]
            prec = tp_n / (det_n + np.spacing(1))
            # Maximum precision at or after each TP, within its segment: an
            # offset growing towards the front keeps segments apart.
            lift = 2.0 * (num_k * num_t - seg)
            env = np.maximum.accumulate((prec + lift)[::-1])[::-1] - lift
            npig_tp = npig[seg // num_t]
            recall = np.divide(tp_n, npig_tp, out=np.zeros_like(tp_n),
                               where=npig_tp > 0)
            for s in np.flatnonzero(np.diff(self.tp_start)):
                if npig[s // num_t] <= 0:
                    continue
                lo, hi = self.tp_start[s], self.tp_start[s + 1]
                q = np.searchsorted(recall[lo:hi], RECALL_THRESHOLDS,
                                    side='left')
                ok = q < hi - lo
                out[s, ok] = env[lo + q[ok]]
        out[np.repeat(npig <= 0, num_t)] = -1.0
        return out.reshape(num_k, num_t, num_r).transpose(1, 2, 0)


def _fast_match():
    """:mod:`analysis.fast_match`, or None when numba is not installed."""
    try:
        from analysis import fast_match
    except ImportError:
        return None
    return fast_match


def fast_engine_available() -> bool:
    return _fast_match() is not None


def _precision_kernel():
    """The compiled accumulate, or None (numba missing, or turned off)."""
    module = _fast_match()
    if module is None or os.environ.get('COCO_ENGINE') == 'pycocotools':
        return None
    return module.precision_kernel


class ImageEval:
    """Per-image COCO matching of one result set, ready to re-accumulate.

    Build with :func:`evaluate_images`.
    """

    def __init__(self, img_ids: List[int], cat_ids: List[int],
                 areas: Dict[str, Tuple[float, float]],
                 tables: List[_AreaTable]) -> None:
        self.img_ids = img_ids
        self.cat_ids = cat_ids
        self.areas = areas
        self.area_names = list(areas)
        self.tables = tables

    @property
    def num_images(self) -> int:
        return len(self.img_ids)

    def precision(self, weights: Optional[np.ndarray] = None,
                  area: str = 'all') -> np.ndarray:
        """COCO's interpolated precision, shape (T, R, K); -1 without GT.

        Args:
            weights: One non-negative weight per image (``img_ids`` order);
                None means every image once.
            area: Name of an area range given to :func:`evaluate_images`.
        """
        w = (np.ones(self.num_images) if weights is None
             else np.asarray(weights, dtype=np.float64))
        return self.tables[self.area_names.index(area)].precision(w)

    def summary(self, weights: Optional[np.ndarray] = None,
                area: str = 'all') -> Dict[str, float]:
        """AP, AP50, AP75 and AP per IoU threshold for one area range.

        NaN where no category has ground truth (pycocotools prints -1).
        """
        p = self.precision(weights, area)
        out = {'AP': _mean_valid(p)}
        for t, thr in enumerate(IOU_THRESHOLDS):
            out[f'AP@{thr:.2f}'] = _mean_valid(p[t])
        out['AP50'], out['AP75'] = out['AP@0.50'], out['AP@0.75']
        return out

    def ap(self, weights: Optional[np.ndarray] = None,
           area: str = 'all') -> float:
        return _mean_valid(self.precision(weights, area))

    def gt_count(self, area: str) -> int:
        return int(self.tables[self.area_names.index(area)].npig.sum())


# pycocotools' ``mask.area`` (2.0.x, ``_mask.pyx``) makes a scratch array
# ``np.array((n, ), dtype=np.uint8)`` before its result; NumPy 2 refuses any
# n >= 256 there (``OverflowError: Python integer 256 out of bounds for
# uint8``), so it is called on at most this many RLEs at a time.
_AREA_CHUNK = 255


def mask_areas(rles: Sequence[dict]) -> np.ndarray:
    """Pixel areas of compressed RLE masks (float64), any number of them."""
    from pycocotools import mask as mask_utils
    rles = list(rles)
    out = np.zeros(len(rles), np.float64)
    for start in range(0, len(rles), _AREA_CHUNK):
        chunk = rles[start:start + _AREA_CHUNK]
        out[start:start + len(chunk)] = np.asarray(
            mask_utils.area(chunk), np.float64).reshape(-1)
    return out


def coco_results(detections: List[dict], iou_type: str) -> List[dict]:
    """Copies of ``detections`` as ``CocoMetric`` hands them to ``loadRes``.

    For segm results mmdet's ``CocoMetric`` drops ``bbox`` first: when a
    result has one, pycocotools' ``loadRes`` takes a detection's area from
    the box (``w * h``), so small/medium/large mask AP would size mask
    detections by their box. Without it ``loadRes`` uses the mask's area.
    Copies, because ``loadRes`` writes ``area``, ``id`` and ``iscrowd`` into
    the dicts it gets.
    """
    if iou_type == 'segm':
        return [{k: v for k, v in d.items() if k != 'bbox'}
                for d in detections]
    return [dict(d) for d in detections]


def _mean_valid(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else float('nan')


def evaluate_images(coco_gt, detections: List[dict], iou_type: str,
                    areas: Optional[Dict[str, Tuple[float, float]]] = None,
                    max_dets: int = 100, engine: str = 'auto') -> ImageEval:
    """Match every image's detections once and keep what AP needs.

    Args:
        coco_gt: A ``pycocotools.coco.COCO`` with the ground truth.
        detections: COCO result dicts (``bbox`` or ``segmentation``).
        iou_type: ``'bbox'`` or ``'segm'``. A segm detection is put in an
            area range by its mask's area, as mmdet's ``CocoMetric`` does
            (it drops ``bbox`` before pycocotools' ``loadRes``); a
            ``bbox`` in segm results is not used.
        areas: Area ranges (name -> (lo, hi) in px²); default COCO's four.
        max_dets: Detections per image kept, as COCOeval's last maxDets.
        engine: ``'fast'`` (:mod:`analysis.fast_match`, compiled),
            ``'pycocotools'`` (``COCOeval.evaluate()``, the reference), or
            ``'auto'``: fast when numba is installed, else pycocotools with
            a warning. ``COCO_ENGINE=pycocotools`` in the environment
            forces the reference.
    """
    areas = dict(areas or COCO_AREAS)
    img_ids = sorted(coco_gt.getImgIds())
    cat_ids = sorted(coco_gt.getCatIds())
    if engine == 'auto':
        engine = os.environ.get('COCO_ENGINE', 'auto')
    if engine == 'auto':
        engine = 'fast' if fast_engine_available() else 'pycocotools'
        if engine == 'pycocotools':
            _warn_once('numba is not installed: per-image COCO matching '
                       'falls back to pycocotools (about 8x slower)')
    if engine == 'fast':
        from analysis.fast_match import PairIndex, area_tables
        index = PairIndex(coco_gt, detections, iou_type, img_ids, cat_ids,
                          max_dets)
        tables = [_AreaTable(**t) for t in area_tables(
            index, areas, len(cat_ids), len(img_ids))]
        return ImageEval(img_ids, cat_ids, areas, tables)
    if engine != 'pycocotools':
        raise ValueError(f'engine must be auto, fast or pycocotools, got '
                         f'{engine!r}')
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        # Mask detections are sized by their mask area, as CocoMetric does.
        coco_dt = coco_gt.loadRes(coco_results(detections, iou_type)) \
            if detections else None
        if coco_dt is None:
            from pycocotools.coco import COCO
            coco_dt = COCO()
            coco_dt.dataset = dict(images=coco_gt.dataset['images'],
                                   categories=coco_gt.dataset['categories'],
                                   annotations=[])
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.params.imgIds = img_ids
        ev.params.areaRng = [list(v) for v in areas.values()]
        ev.params.areaRngLbl = list(areas)
        ev.params.maxDets = [max_dets]
        ev.evaluate()
    num_k, num_a, num_i = len(cat_ids), len(areas), len(img_ids)
    tables = []
    for a in range(num_a):
        npig = np.zeros((num_k, num_i))
        segments = {}
        for k in range(num_k):
            base = k * num_a * num_i + a * num_i
            entries = [(i, e) for i, e in
                       enumerate(ev.evalImgs[base:base + num_i])
                       if e is not None]
            for i, e in entries:
                npig[k, i] = np.count_nonzero(e['gtIgnore'] == 0)
            scores = [e['dtScores'][:max_dets] for _, e in entries]
            if not sum(len(x) for x in scores):
                continue
            img = np.concatenate([np.full(len(x), i) for (i, _), x in
                                  zip(entries, scores)]).astype(np.int64)
            order = np.argsort(-np.concatenate(scores), kind='mergesort')
            matched = np.concatenate([e['dtMatches'][:, :max_dets]
                                      for _, e in entries], axis=1)[:, order]
            ignored = np.concatenate([e['dtIgnore'][:, :max_dets]
                                      for _, e in entries], axis=1)[:, order]
            img = img[order]
            dets, tps = [], []
            for t in range(len(IOU_THRESHOLDS)):
                keep = ~ignored[t].astype(bool)
                dets.append(img[keep])
                tps.append(np.flatnonzero(matched[t][keep] > 0))
            segments[k] = (dets, tps)
        tables.append(_AreaTable.build(segments, num_k, npig))
    return ImageEval(img_ids, cat_ids, areas, tables)


_WARNED = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        print(f'warning: {message}', file=sys.stderr)


def load_detections(path: str) -> List[dict]:
    """A COCO results file written by ``CocoMetric``, with a clear error."""
    try:
        with open(path) as f:
            dets = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'{path}: detections file does not exist') \
            from None
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(dets, list):
        raise ValueError(f'{path}: expected a list of COCO results')
    name = osp.basename(path)
    required = ('bbox', ) if '.bbox.' in name else \
        ('segmentation', ) if '.segm.' in name else ()
    for i, det in enumerate(dets):
        problem = _detection_problem(det, required)
        if problem:
            raise ValueError(f'{path}: detection [{i}] {problem}')
    return dets


def _detection_problem(det, required: Tuple[str, ...]) -> Optional[str]:
    """What is wrong with one COCO result, or None.

    pycocotools accepts a NaN score (it sorts anywhere) and a negative box
    width (its area goes negative); a string score fails in numpy sorting
    with a message naming no detection.
    """
    if not isinstance(det, dict):
        return f'is a {type(det).__name__}, not an object'
    for field in ('image_id', 'category_id', 'score') + required:
        if field not in det:
            return f'has no field "{field}"'
    for field in ('image_id', 'category_id'):
        if not isinstance(det[field], int) or isinstance(det[field], bool):
            return f'field "{field}" = {det[field]!r} is not an integer id'
    if not finite_numbers([det['score']]):
        return f'field "score" = {det["score"]!r} is not a finite number'
    if 'bbox' in det:
        box = det['bbox']
        if not isinstance(box, list) or len(box) != 4 or \
                not finite_numbers(box):
            return f'field "bbox" = {box!r} is not 4 finite numbers'
        if box[2] < 0 or box[3] < 0:
            return f'field "bbox" = {box!r} has a negative width or height'
    if 'segmentation' in det:
        seg = det['segmentation']
        if not isinstance(seg, dict) or not {'size', 'counts'} <= set(seg):
            return 'field "segmentation" is not an RLE with "size" and ' \
                '"counts"'
    return None


def weights_for(ev: ImageEval, img_ids: Sequence[int]) -> np.ndarray:
    """0/1 image weights selecting ``img_ids`` (a subset of the set)."""
    index = {i: n for n, i in enumerate(ev.img_ids)}
    w = np.zeros(ev.num_images)
    for i in img_ids:
        w[index[i]] += 1
    return w


def image_eval_for_run(detections_dir: str, ann_file: str, iou_type: str,
                       areas: Optional[Dict[str, Tuple[float, float]]] = None,
                       coco_gt=None, use_cache: bool = True) -> ImageEval:
    """:func:`evaluate_images` on a run's saved ``val.<bbox|segm>.json``.

    Args:
        detections_dir: The run's ``detections/``.
        ann_file: The ground truth the run was evaluated on.
        iou_type: ``'bbox'`` or ``'segm'``.
        areas: Area ranges; default COCO's four.
        coco_gt: The loaded ground truth, or a function returning it (only
            called when the cache cannot answer), or None to load
            ``ann_file``.
        use_cache: Read and write :mod:`analysis.eval_cache`.
    """
    from pycocotools.coco import COCO
    areas = dict(areas or COCO_AREAS)
    path = osp.join(detections_dir, f'val.{iou_type}.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: detections file does not exist')
    if use_cache:
        from analysis import eval_cache
        ev = eval_cache.load(path, ann_file, iou_type, areas)
        if ev is not None:
            return ev
    if callable(coco_gt):
        coco_gt = coco_gt()
    if coco_gt is None:
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO(ann_file)
    ev = evaluate_images(coco_gt, load_detections(path), iou_type, areas)
    if use_cache:
        eval_cache.store(ev, path, ann_file, iou_type)
    return ev
