"""COCO's precision for a block of image weights at once, and each run's AP
on every bootstrap resample, computed once per report.

A report asks for the same resamples of the same run many times: the
bootstrap section (AP), the per-category section (AP per category), every
verdict and the grid-power section (AP of a size range). Each used to
re-accumulate per resample (one compiled call per resample and run, a
thread start each, and one pass over every detection). Here:

- :func:`precision_block` accumulates a block of resamples in one call:
  per (category, IoU threshold) segment the weighted counts of every
  resample advance together (the weights stored image-major, so one
  detection adds one contiguous row), and the scan stops at the segment's
  last true positive (what follows never reaches a recall threshold). The
  counts are sums of integer weights, exact in float64 whatever the order,
  and precision, its envelope and the recall thresholds are the same
  operations as :func:`analysis.coco_eval.fast_match.precision_kernel`'s:
  each resample's table is the same bits as one call per resample
  (``tests/test_analysis/test_coco_eval/test_resampled.py``).
- :func:`resampled_stats` keeps, per run, area range and resampling, the AP
  of each resample (and per category for all areas), computed from those
  tables with the very numpy reductions the per-resample code used; in
  memory, and on disk next to the run's eval-cache entry
  (``resampled-<entry>-<resampling>.npz``: the arrays as computed, so a
  cached report reads the same numbers back).
"""
import hashlib
import os
import os.path as osp
import weakref
import zipfile
from typing import Dict, Optional

import numpy as np

from analysis.coco_eval.constants import IOU_THRESHOLDS, RECALL_THRESHOLDS
from analysis.coco_eval.draws import resample_counts
from analysis.coco_eval.engine import precision_kernel
from experiments.store import atomic_write, warn

try:
    import numba
except ImportError:  # numba missing: one call per resample instead
    numba = None

# ImageEval -> {(area, n_images, n_resamples, seed): {'ap': ..., ...}}.
_STATS: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def _envelope_and_thresholds(prec, rec, lo, n_tp, m, recall_thresholds,
                             out_row):
    """Precision envelope from the back, then the first point reaching
    each recall threshold: ``fast_match.precision_kernel``'s last steps."""
    for i in range(lo + n_tp - 2, lo - 1, -1):
        if prec[i + 1, m] > prec[i, m]:
            prec[i, m] = prec[i + 1, m]
    i = 0
    for r in range(len(recall_thresholds)):
        while i < n_tp and rec[lo + i, m] < recall_thresholds[r]:
            i += 1
        if i == n_tp:
            break
        out_row[r] = prec[lo + i, m]


def _segments(wt, acc, det_img, det_start, tp_img, tp_pos, tp_start,
              npig_w, k, num_t, shared, recall_thresholds, out):
    """Every IoU threshold's segment of category ``k``. With ``shared``
    the thresholds' detection sequences are the same images in the same
    order (no detection's ignore flag depends on the threshold): one pass
    gives every threshold's weighted detection counts. Else one pass per
    threshold."""
    num_m = wt.shape[1]
    eps = np.spacing(1.0)
    s0 = k * num_t
    t0, t1 = tp_start[s0], tp_start[s0 + num_t]
    for m in range(num_m):
        fill = -1.0 if npig_w[k, m] <= 0 else 0.0
        for s in range(s0, s0 + num_t):
            for r in range(len(recall_thresholds)):
                out[m, s, r] = fill
    if t1 == t0:
        return
    prec = np.empty((t1 - t0, num_m))
    rec = np.empty((t1 - t0, num_m))
    q = np.empty(num_t, np.int64)
    for t in range(num_t if not shared else 1):
        # Without sharing, pass t scans segment t; with it, pass 0 scans
        # the common sequence for every threshold.
        first, last = (t, t) if not shared else (0, num_t - 1)
        det_n = np.zeros_like(acc)
        tp_n = np.zeros((num_t, num_m), acc.dtype)
        end = -1
        for u in range(first, last + 1):
            q[u] = tp_start[s0 + u]
            if tp_start[s0 + u + 1] > q[u]:
                end = max(end, tp_pos[tp_start[s0 + u + 1] - 1]
                          - det_start[s0 + u])
        base = det_start[s0 + first]
        for rel in range(end + 1):
            row = wt[det_img[base + rel]]
            for m in range(num_m):
                det_n[m] += row[m]
            for u in range(first, last + 1):
                s = s0 + u
                if q[u] < tp_start[s + 1] and \
                        tp_pos[q[u]] - det_start[s] == rel:
                    tp_row = wt[tp_img[q[u]]]
                    i = q[u] - t0
                    for m in range(num_m):
                        tp_n[u, m] += tp_row[m]
                        prec[i, m] = tp_n[u, m] / (det_n[m] + eps)
                        # (numba raises on a 0 division; without ground
                        # truth the resample's value is -1 anyway.)
                        rec[i, m] = (tp_n[u, m] / npig_w[k, m]
                                     if npig_w[k, m] > 0 else 0.0)
                    q[u] += 1
    for u in range(num_t):
        s = s0 + u
        lo, n_tp = tp_start[s] - t0, tp_start[s + 1] - tp_start[s]
        if n_tp == 0:
            continue
        for m in range(num_m):
            if npig_w[k, m] > 0:
                _envelope_and_thresholds(prec, rec, lo, n_tp, m,
                                         recall_thresholds, out[m, s])


def _precision_block(wt, acc, det_img, det_start, tp_img, tp_pos,
                     tp_start, npig_w, num_t, shared, recall_thresholds,
                     out):
    """Interpolated precision (M, K*T, R) for M image weightings.

    ``wt`` is (images, M): every resample's weight of an image in one
    row. ``acc`` (M,) gives the counts' type. ``npig_w`` is (K, M);
    ``shared[k]``: category k's thresholds share one detection sequence.
    """
    for k in numba.prange(len(shared)):
        _segments(wt, acc, det_img, det_start, tp_img, tp_pos, tp_start,
                  npig_w, k, num_t, shared[k], recall_thresholds, out)


def _gt_counts(k_of, i_of, v_of, wt, out):
    """Not-ignored ground truths per category on each weighting: ``npig @
    counts.T`` from npig's nonzero entries (exact integer sums either
    way; a dense product spent more on BLAS threads than on the sums)."""
    for n in range(len(k_of)):
        row = wt[i_of[n]]
        for m in range(wt.shape[1]):
            out[k_of[n], m] += v_of[n] * row[m]


if numba is not None:
    _gt_counts = numba.njit(cache=True)(_gt_counts)
    _envelope_and_thresholds = numba.njit(cache=True)(
        _envelope_and_thresholds)
    _segments = numba.njit(cache=True)(_segments)
    _precision_block = numba.njit(cache=True, parallel=True)(
        _precision_block)


def _shared_sequences(table) -> np.ndarray:
    """Per category: do its thresholds' segments hold the same images in
    the same order? (Remembered on the table.)"""
    shared = getattr(table, '_shared', None)
    if shared is None:
        num_t = len(IOU_THRESHOLDS)
        starts = table.det_start
        shared = np.ones(table.npig.shape[0], bool)
        for k in range(len(shared)):
            first = table.det_img[starts[k * num_t]:starts[k * num_t + 1]]
            for t in range(1, num_t):
                s = k * num_t + t
                if not np.array_equal(
                        first, table.det_img[starts[s]:starts[s + 1]]):
                    shared[k] = False
                    break
        table._shared = shared
    return shared


def precision_block(table, counts: np.ndarray,
                    out: Optional[np.ndarray] = None) -> np.ndarray:
    """Precision tables of an :class:`~analysis.coco_eval.area_table.
    AreaTable` for each row of ``counts`` (M x images); ``out``, when of
    the right shape, is written over and returned (a block is tens of MB).

    Returns:
        (M, K*T, R), C-ordered: ``out[m].reshape(K, T, R).transpose(1, 2,
        0)`` is ``table.precision(counts[m])``, bit for bit.
    """
    counts = np.asarray(counts, np.float64)
    num_t, num_r = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    num_k = table.npig.shape[0]
    if numba is None or precision_kernel() is None:
        return np.stack([table.precision(w).transpose(2, 0, 1).reshape(
            num_k * num_t, num_r) for w in counts])
    wt, acc = np.ascontiguousarray(counts.T), np.zeros(len(counts))
    if (counts.size and counts.max() < 256 and counts.min() >= 0
            and np.array_equal(counts, np.floor(counts))):
        # Draw counts: a byte each (the weights of a block stay in cache),
        # summed as integers, which are the float sums exactly.
        wt, acc = wt.astype(np.uint8), np.zeros(len(counts), np.int64)
        # npig @ counts.T, as AreaTable.precision's product per resample.
        k_of, i_of = np.nonzero(table.npig)
        npig_w = np.zeros((num_k, len(counts)))
        _gt_counts(k_of, i_of, table.npig[k_of, i_of], wt, npig_w)
    else:
        npig_w = np.ascontiguousarray(table.npig @ counts.T)
    if out is None or out.shape != (len(counts), num_k * num_t, num_r):
        out = np.empty((len(counts), num_k * num_t, num_r))
    _precision_block(wt, acc, table.det_img, table.det_start, table.tp_img,
                     table.tp_pos, table.tp_start, npig_w, num_t,
                     _shared_sequences(table), RECALL_THRESHOLDS, out)
    return out


def as_tkr(flat: np.ndarray, num_k: int) -> np.ndarray:
    """One resample's (K*T, R) table as ``ImageEval.precision`` gives it:
    (T, R, K), the same strides."""
    return flat.reshape(num_k, len(IOU_THRESHOLDS), -1).transpose(1, 2, 0)


def mean_valid(p: np.ndarray) -> float:
    """Mean over the entries with ground truth (COCO's AP); NaN if none."""
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else float('nan')


def category_ap(p: np.ndarray) -> np.ndarray:
    """AP of each category from a (T, R, K) table; NaN without ground
    truth."""
    valid = p > -1
    counts = valid.sum(axis=(0, 1))
    sums = np.where(valid, p, 0.0).sum(axis=(0, 1))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _fast_mean_valid(p: np.ndarray) -> float:
    """:func:`mean_valid` of a table from the kernel, cheaper: -1 marks a
    whole category, so the valid entries are the valid categories' columns,
    in the same (T, R, K) order, summed by the same 1-D mean."""
    valid = p[0, 0] > -1
    if valid.all():
        return float(np.ascontiguousarray(p).ravel().mean())
    if not valid.any():
        return float('nan')
    return float(np.ascontiguousarray(p[:, :, valid]).ravel().mean())


def _fast_category_ap(p: np.ndarray) -> np.ndarray:
    """:func:`category_ap` of a table from the kernel, cheaper (the same
    sums over (T, R) per category; a valid category has T * R entries)."""
    valid = p[0, 0] > -1
    with np.errstate(invalid='ignore'):
        return np.where(valid, p.sum(axis=(0, 1)) / (p.shape[0] * p.shape[1]),
                        np.nan)


def resampled_stats(ev, area: str, n_resamples: int, seed: int = 0
                    ) -> Dict[str, np.ndarray]:
    """AP of ``ev`` in ``area`` on each image resample, remembered.

    Returns:
        ``ap``: (n_resamples,) mean over IoU thresholds; for
        ``area == 'all'`` also
        ``per_category``: (n_resamples, K). The resamples are
        :func:`~analysis.coco_eval.draws.resample_counts`' with these
        arguments.
    """
    key = (area, ev.num_images, n_resamples, seed)
    memo = _STATS.setdefault(ev, {})
    path = _disk_path(ev, key)
    if key not in memo and path:
        memo[key] = _load(path, ('ap', 'per_category') if area == 'all'
                          else ('ap',))
        if memo[key] is None:
            del memo[key]
    if key not in memo:
        table = ev.tables[ev.area_names.index(area)]
        num_k = table.npig.shape[0]
        ap, per_cat, block = [], [], None
        for counts in resample_counts(ev.num_images, n_resamples, seed):
            block = precision_block(table, counts, block)
            for flat in block:
                p = as_tkr(flat, num_k)
                ap.append(_fast_mean_valid(p))
                if area == 'all':
                    per_cat.append(_fast_category_ap(p))
        memo[key] = dict(ap=np.asarray(ap))
        if area == 'all':
            memo[key]['per_category'] = np.asarray(per_cat)
        if path:
            _store(path, memo[key])
    return memo[key]


_DISK_VERSION = 1  # with numpy's version (its draws), in the file's name


def _disk_path(ev, key: tuple) -> Optional[str]:
    """Where ``ev``'s ``key`` is kept; None without an eval-cache entry."""
    entry = getattr(ev, 'cache_path', None)
    if not entry:
        return None
    spec = repr((key, np.__version__, _DISK_VERSION))
    tag = hashlib.sha1(spec.encode()).hexdigest()[:12]
    stem = osp.splitext(osp.basename(entry))[0]
    return osp.join(osp.dirname(entry), f'resampled-{stem}-{tag}.npz')


def _load(path: str, names) -> Optional[Dict[str, np.ndarray]]:
    if not osp.isfile(path):
        return None
    try:
        with np.load(path) as z:
            out = {k: z[k] for k in names}
    except (OSError, ValueError, KeyError, EOFError,
            zipfile.BadZipFile) as e:
        warn(f'{path}: unreadable resampled APs ({e}); computing them again')
        return None
    return out


def _store(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """Write ``arrays``; remove the task's entries of other evaluations."""
    directory, name = osp.split(path)
    stem = name[:name.rindex('-')]
    task = stem[:stem.index('-', len('resampled-')) + 1]
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)
        for other in os.listdir(directory):
            if other.startswith(task) and not other.startswith(stem + '-'):
                try:
                    os.remove(osp.join(directory, other))
                except FileNotFoundError:
                    pass  # another build removed it first
    except OSError as e:
        warn(f'cannot keep {path} ({e.strerror}); computed again next time')


def forget(ev: Optional[object] = None) -> None:
    """Drop the remembered resamples (of ``ev``, or of every run)."""
    if ev is None:
        _STATS.clear()
    else:
        _STATS.pop(ev, None)


def _images_subtable(table, keep_image: np.ndarray):
    """``table`` with only the detections of the images in ``keep_image``
    (a boolean per image). Under weights that are 0 on every other image
    its precision is the same: a left-out detection adds 0 to every count,
    and a left-out true positive repeats the last recall with a precision
    no higher than the last kept one's, which changes no threshold's
    value."""
    from analysis.coco_eval.area_table import AreaTable
    keep = keep_image[table.det_img]
    cum = np.concatenate([[0], np.cumsum(keep)])
    tp_keep = keep_image[table.tp_img]
    tp_cum = np.concatenate([[0], np.cumsum(tp_keep)])
    return AreaTable(table.det_img[keep], cum[table.det_start],
                     table.tp_img[tp_keep], cum[table.tp_pos[tp_keep]],
                     tp_cum[table.tp_start], table.npig)


def per_image_ap(ev, img_ids, area: str = 'all',
                 chunk: int = 100) -> np.ndarray:
    """AP of each image alone (weight 1 on it, 0 elsewhere), in
    ``img_ids`` order; NaN for an image without ground truth. The same
    numbers as ``ev.ap(one_hot)`` per image; kept on disk as the
    resamples are."""
    ids = np.asarray(img_ids, np.int64)
    path = _disk_path(ev, ('per_image', area, ev.num_images, hashlib.sha1(
        ids.tobytes()).hexdigest()))
    kept = _load(path, ('ap',)) if path else None
    if kept is not None and kept['ap'].shape == ids.shape:
        return kept['ap']
    out = _per_image_ap(ev, img_ids, area, chunk)
    if path:
        _store(path, dict(ap=out))
    return out


def _per_image_ap(ev, img_ids, area: str, chunk: int) -> np.ndarray:
    index = {i: n for n, i in enumerate(ev.img_ids)}
    table = ev.tables[ev.area_names.index(area)]
    num_k = table.npig.shape[0]
    out = np.full(len(img_ids), np.nan)
    for lo in range(0, len(img_ids), chunk):
        rows = [index[i] for i in img_ids[lo:lo + chunk]]
        counts = np.zeros((len(rows), ev.num_images))
        counts[np.arange(len(rows)), rows] = 1.0
        keep = np.zeros(ev.num_images, bool)
        keep[rows] = True
        block = precision_block(_images_subtable(table, keep), counts)
        out[lo:lo + len(rows)] = [mean_valid(as_tkr(flat, num_k))
                                  for flat in block]
    return out
