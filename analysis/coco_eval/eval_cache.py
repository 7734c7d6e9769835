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

Other evaluations of a run (TIDE's breakdown) keep JSON rows there too,
through :func:`load_rows` / :func:`store_rows`, keyed by the same two
files' contents and the caller's version.
"""
import dataclasses
import hashlib
import json
import os
import os.path as osp
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from analysis.coco_eval.area_table import AreaTable
from analysis.coco_eval.constants import MAX_DETS
from analysis.coco_eval.image_eval import ImageEval
from experiments.store import atomic_write, atomic_write_json, warn

# 2: segm detections sized by their mask's area (as CocoMetric), not their
# box's; entries of version 1 hold box-sized mask evaluations.
FORMAT_VERSION = 2
CACHE_DIR = 'eval-cache'
_FIELDS = tuple(f.name for f in dataclasses.fields(AreaTable))
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


def forget_file_hashes() -> None:
    """Hash every file again on its next use (a benchmark, a test)."""
    _hashes.clear()


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
         max_dets: int = MAX_DETS) -> Optional[ImageEval]:
    """The cached evaluation, or None (absent, stale or unreadable)."""
    path = _path(det_file, iou_type, cache_key(det_file, ann_file, iou_type,
                                               areas, max_dets))
    if not osp.isfile(path):
        return None
    try:
        with np.load(path) as z:
            names = [str(n) for n in z['area_names']]
            tables = [AreaTable(**{f: z[f'{a}.{f}'] for f in _FIELDS})
                      for a in range(len(names))]
            ev = ImageEval([int(i) for i in z['img_ids']],
                           [int(c) for c in z['cat_ids']],
                           {n: tuple(r) for n, r in
                            zip(names, z['area_ranges'].tolist())},
                           tables)
        ev.cache_path = path
        return ev
    except (OSError, ValueError, KeyError, EOFError,
            zipfile.BadZipFile) as e:
        warn(f'{path}: unreadable evaluation cache ({e}); evaluating '
             f'again')
        return None


def store(ev: ImageEval, det_file: str, ann_file: str, iou_type: str,
          max_dets: int = MAX_DETS) -> Optional[str]:
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
        warn(f'cannot cache the evaluation of {det_file} ({e.strerror}: '
             f'{e.filename}); it is evaluated again next time')
        return None
    ev.cache_path = path
    return path


def rows_path(det_file: str, ann_file: str, kind: str, version: int) -> str:
    """``<detections>/eval-cache/<kind>-<det hash>-<ann hash>-v<version>
    .json``: one entry per content of the two files."""
    key = f'{file_hash(det_file)[:12]}-{file_hash(ann_file)[:12]}' \
          f'-v{version}'
    return osp.join(osp.dirname(det_file), CACHE_DIR, f'{kind}-{key}.json')


def load_rows(det_file: str, ann_file: str, kind: str, version: int,
              what: str) -> Optional[List[dict]]:
    """The cached rows, or None: absent, or damaged (a warning names the
    ``what`` cache; the caller computes them again and stores them over
    it)."""
    path = rows_path(det_file, ann_file, kind, version)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            rows = json.load(f)['rows']
        if not isinstance(rows, list):
            raise TypeError(f'"rows" is a {type(rows).__name__}, not a list')
        return rows
    except (ValueError, KeyError, TypeError) as e:
        warn(f'{path}: damaged {what} cache ({type(e).__name__}: {e}); '
             f'computing it again')
        return None


def store_rows(rows: List[dict], det_file: str, ann_file: str, kind: str,
               version: int) -> str:
    """Write ``rows`` atomically; return the entry's path.

    Raises:
        OSError: The detections dir is not writable.
    """
    path = rows_path(det_file, ann_file, kind, version)
    os.makedirs(osp.dirname(path), exist_ok=True)
    atomic_write_json(path, dict(rows=rows))
    return path
