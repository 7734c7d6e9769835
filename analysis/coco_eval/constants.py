"""COCOeval's settings, in one place: IoU and recall thresholds, the
detection cap and the object-area ranges.

``COCO_AREAS`` is pycocotools' ``Params.areaRng`` (``[0, 1e5 ** 2]``,
``[0, 32 ** 2]``, ``[32 ** 2, 96 ** 2]``, ``[96 ** 2, 1e5 ** 2]``), so AP per
range reproduces ``COCOeval``'s numbers exactly; COCOeval includes both ends
of a range (an area of exactly 32² is small and medium).
"""
from typing import Dict, Optional, Tuple

import numpy as np

from experiments.store import AREA_MAX, COCO_AREAS, TASKS

# COCO_AREAS and AREA_MAX are defined in the store (the dataset statistics
# use them too) and re-exported here with COCOeval's other settings.
__all__ = ['AREA_MAX', 'COCO_AREAS', 'FINE_BINS', 'IOU_THRESHOLDS', 'MAX_DETS',
           'METRIC_AREAS', 'RECALL_THRESHOLDS', 'log_area_bins',
           'metric_task_area']

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
# Detections per image kept, as COCOeval's last maxDets.
MAX_DETS = 100
# A results-table metric's suffix -> its COCO area range.
METRIC_AREAS = {'AP': 'all', 'APs': 'small', 'APm': 'medium',
                'APl': 'large'}


def log_area_bins(n: int = 8, lo: float = 8.0 ** 2,
                  hi: float = 512.0 ** 2) -> Dict[str, Tuple[float, float]]:
    """``n`` object-area bins, log-spaced between ``lo`` and ``hi`` (px²).

    The first bin starts at 0 and the last ends at :data:`AREA_MAX`, so
    every object falls in exactly one bin. Names give the side of an
    equal-area square, e.g. ``16-23px``; the last is ``304px+``.
    """
    edges = np.geomspace(lo, hi, n + 1)
    edges[0], edges[-1] = 0.0, AREA_MAX
    bins = {}
    for a, b in zip(edges[:-1], edges[1:]):
        left = '0' if a == 0 else f'{np.sqrt(a):.0f}'
        name = (f'{left}px+' if b >= AREA_MAX else
                f'{left}-{np.sqrt(b):.0f}px')
        bins[name] = (float(a), float(b))
    return bins


# The report's fine size bins, evaluated with COCO's four for every run.
FINE_BINS = log_area_bins(8)


def metric_task_area(metric: str) -> Optional[Tuple[str, str]]:
    """``(iou_type, area)`` of an AP column (``mask_APs`` -> ``('segm',
    'small')``), or None for a metric that is not AP over a COCO range."""
    task, _, name = metric.partition('_')
    if name not in METRIC_AREAS:
        return None
    iou_type = {t: i for i, t in TASKS}.get(task)
    if iou_type is None:
        return None
    return iou_type, METRIC_AREAS[name]
