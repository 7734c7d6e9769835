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
:class:`~analysis.coco_eval.area_table.AreaTable` says why weights are exact.
"""
import contextlib
import io
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.coco_eval.area_table import AreaTable
from analysis.coco_eval.constants import COCO_AREAS, IOU_THRESHOLDS, MAX_DETS
from analysis.coco_eval.detections import coco_results
from analysis.coco_eval.engine import fast_engine_available, fast_match
from experiments.store import warn

# Messages already warned about in this process (each is said once).
WARNED = set()


class ImageEval:
    """Per-image COCO matching of one result set, ready to re-accumulate.

    Build with :func:`evaluate_images`.
    """

    def __init__(self, img_ids: List[int], cat_ids: List[int],
                 areas: Dict[str, Tuple[float, float]],
                 tables: List[AreaTable]) -> None:
        self.img_ids = img_ids
        self.cat_ids = cat_ids
        self.areas = areas
        self.area_names = list(areas)
        self.tables = tables
        # Its eval-cache entry (set by analysis.coco_eval.eval_cache), next
        # to which its resampled APs are kept; None when not cached.
        self.cache_path: Optional[str] = None

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


def _mean_valid(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else float('nan')


def evaluate_images(coco_gt, detections: List[dict], iou_type: str,
                    areas: Optional[Dict[str, Tuple[float, float]]] = None,
                    max_dets: int = MAX_DETS,
                    engine: str = 'auto') -> ImageEval:
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
        engine: ``'fast'`` (:mod:`analysis.coco_eval.fast_match`, compiled),
            ``'pycocotools'`` (``COCOeval.evaluate()``, the reference), or
            ``'auto'``: fast when numba is installed, else pycocotools with
            a warning. ``COCO_ENGINE=pycocotools`` in the environment
            forces the reference.
    """
    areas = dict(areas or COCO_AREAS)
    img_ids = sorted(coco_gt.getImgIds())
    cat_ids = sorted(coco_gt.getCatIds())
    if choose_engine(engine) == 'fast':
        index = fast_match.PairIndex(coco_gt, detections, iou_type, img_ids,
                                     cat_ids, max_dets)
        tables = [AreaTable(**t) for t in fast_match.area_tables(
            index, areas, len(cat_ids), len(img_ids))]
        return ImageEval(img_ids, cat_ids, areas, tables)
    with contextlib.redirect_stdout(io.StringIO()):
        # Mask detections are sized by their mask area, as CocoMetric does.
        coco_dt = coco_gt.loadRes(coco_results(detections, iou_type)) \
            if detections else None
        if coco_dt is None:
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
        tables.append(AreaTable.build(segments, num_k, npig))
    return ImageEval(img_ids, cat_ids, areas, tables)


def choose_engine(engine: str) -> str:
    """``'fast'`` or ``'pycocotools'`` for an ``engine`` argument of
    :func:`evaluate_images` (``'auto'`` reads ``COCO_ENGINE``, then takes
    fast when numba is installed, else pycocotools with a warning)."""
    if engine == 'auto':
        engine = os.environ.get('COCO_ENGINE', 'auto')
    if engine == 'auto':
        engine = 'fast' if fast_engine_available() else 'pycocotools'
        if engine == 'pycocotools':
            warn_once('numba is not installed: per-image COCO matching '
                      'falls back to pycocotools (about 8x slower)')
    if engine == 'fast' and fast_match is None:
        raise ImportError('the fast engine needs numba, which is not '
                          'installed')
    if engine not in ('fast', 'pycocotools'):
        raise ValueError(f'engine must be auto, fast or pycocotools, got '
                         f'{engine!r}')
    return engine


def warn_once(message: str) -> None:
    if message not in WARNED:
        WARNED.add(message)
        warn(message)


def weights_for(ev: ImageEval, img_ids: Sequence[int]) -> np.ndarray:
    """0/1 image weights selecting ``img_ids`` (a subset of the set)."""
    index = {i: n for n, i in enumerate(ev.img_ids)}
    w = np.zeros(ev.num_images)
    for i in img_ids:
        w[index[i]] += 1
    return w
