"""A run's per-image evaluation, cached on disk next to its detections.

A report rebuild with nothing new to evaluate should not match every run
again. :func:`load` / :func:`store` keep an :class:`ImageEval` in
``<detections>/eval-cache/<iou type>-<key>.npz``, where the key is a hash of
the detection file's and the annotation file's contents, the area ranges,
the detection cap and this format's version: editing either file (or the
evaluation settings) makes a new key, and the stale entry is removed when
the new one is written. Entries are written to a temporary file and renamed
into place, so two report builds at once each see a whole entry or none;
both write the same content.
"""
import hashlib
import json
import os
import os.path as osp
import sys
import zipfile
from typing import Dict, Optional, Tuple

import numpy as np

from analysis.image_eval import ImageEval, _AreaTable
from experiments.store import atomic_write

# 2: segm detections sized by their mask's area (as CocoMetric), not their
# box's; entries of version 1 hold box-sized mask evaluations.
FORMAT_VERSION = 2
CACHE_DIR = 'eval-cache'
_FIELDS = ('det_img', 'det_start', 'tp_img', 'tp_pos', 'tp_start', 'npig')
_hashes: Dict[Tuple[str, float, int], str] = {}


def file_hash(path: str) -> str:
    """sha1 of a file's bytes, remembered for the same path, mtime and size."""
    st = os.stat(path)
    memo = (osp.abspath(path), st.st_mtime, st.st_size)
    if memo not in _hashes:
        digest = hashlib.sha1()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 22), b''):
                digest.update(block)
        _hashes[memo] = digest.hexdigest()
    return _hashes[memo]


def cache_key(det_file: str, ann_file: str, iou_type: str,
              areas: Dict[str, Tuple[float, float]], max_dets: int) -> str:
    spec = json.dumps(dict(det=file_hash(det_file), ann=file_hash(ann_file),
                           iou_type=iou_type, areas=list(areas.items()),
                           max_dets=max_dets, version=FORMAT_VERSION))
    return hashlib.sha1(spec.encode()).hexdigest()[:16]


def _path(det_file: str, iou_type: str, key: str) -> str:
    return osp.join(osp.dirname(det_file), CACHE_DIR, f'{iou_type}-{key}.npz')


def load(det_file: str, ann_file: str, iou_type: str,
         areas: Dict[str, Tuple[float, float]],
         max_dets: int = 100) -> Optional[ImageEval]:
    """The cached evaluation, or None (absent, stale or unreadable)."""
    path = _path(det_file, iou_type, cache_key(det_file, ann_file, iou_type,
                                               areas, max_dets))
    if not osp.isfile(path):
        return None
    try:
        with np.load(path) as z:
            names = [str(n) for n in z['area_names']]
            tables = [_AreaTable(**{f: z[f'{a}.{f}'] for f in _FIELDS})
                      for a in range(len(names))]
            return ImageEval([int(i) for i in z['img_ids']],
                             [int(c) for c in z['cat_ids']],
                             {n: tuple(r) for n, r in
                              zip(names, z['area_ranges'].tolist())},
                             tables)
    except (OSError, ValueError, KeyError, EOFError,
            zipfile.BadZipFile) as e:
        print(f'warning: {path}: unreadable evaluation cache ({e}); '
              f'evaluating again', file=sys.stderr)
        return None


def store(ev: ImageEval, det_file: str, ann_file: str, iou_type: str,
          max_dets: int = 100) -> Optional[str]:
    """Write ``ev`` atomically; remove this run's stale entries of the type.

    Returns:
        The entry's path, or None when the detections dir is not writable
        (a warning says so; the report goes on without the cache).
    """
    key = cache_key(det_file, ann_file, iou_type, ev.areas, max_dets)
    path = _path(det_file, iou_type, key)
    arrays = dict(img_ids=np.asarray(ev.img_ids, np.int64),
                  cat_ids=np.asarray(ev.cat_ids, np.int64),
                  area_names=np.asarray(ev.area_names),
                  area_ranges=np.asarray(list(ev.areas.values()),
                                         np.float64))
    for a, table in enumerate(ev.tables):
        for f in _FIELDS:
            arrays[f'{a}.{f}'] = getattr(table, f)
    try:
        os.makedirs(osp.dirname(path), exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)
        for name in os.listdir(osp.dirname(path)):
            if name.startswith(f'{iou_type}-') and name != osp.basename(path):
                try:
                    os.remove(osp.join(osp.dirname(path), name))
                except FileNotFoundError:
                    pass  # another build removed it first
    except OSError as e:
        print(f'warning: cannot cache the evaluation of {det_file} '
              f'({e.strerror}: {e.filename}); it is evaluated again next '
              f'time', file=sys.stderr)
        return None
    return path
