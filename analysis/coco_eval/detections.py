"""Saved COCO results: read and checked, as pycocotools receives them, and
their mask areas."""
import json
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from experiments.store import finite_numbers

# pycocotools' ``mask.area`` (2.0.x, ``_mask.pyx``) makes a scratch array
# ``np.array((n, ), dtype=np.uint8)`` before its result; NumPy 2 refuses any
# n >= 256 there (``OverflowError: Python integer 256 out of bounds for
# uint8``), so it is called on at most this many RLEs at a time.
_AREA_CHUNK = 255


def mask_areas(rles: Sequence[dict]) -> np.ndarray:
    """Pixel areas of compressed RLE masks (float64), any number of them."""
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
