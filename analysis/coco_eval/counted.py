"""Which detections COCOeval counts, at one IoU threshold, per area range.

``COCOeval.evaluateImg`` decides, per image, category and area range: a
ground truth outside the range (or a crowd region) is ignored; detections,
in score order and cut at ``maxDets``, are matched against all ground
truth, ignored included, preferring a not-ignored one; a detection matched
to an ignored ground truth is ignored, and so is an unmatched detection
whose own area is outside the range. Every other detection counts, as a
true or a false positive. A tool that has no area ranges of its own (TIDE)
gives COCOeval's per-range numbers when it is handed, per range, only the
ground truth in the range and the detections counted here.
"""
import contextlib
import io
from typing import Dict, List, Tuple

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.coco_eval.constants import IOU_THRESHOLDS, MAX_DETS
from analysis.coco_eval.detections import coco_results
from analysis.coco_eval.engine import fast_match
from analysis.coco_eval.image_eval import choose_engine


def coco_from_dict(gt: dict) -> COCO:
    """A ``pycocotools.coco.COCO`` over an annotation file's content."""
    coco = COCO()
    coco.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def counted_detections(coco_gt: COCO, detections: List[dict], iou_type: str,
                       areas: Dict[str, Tuple[float, float]],
                       iou_threshold: float = 0.5,
                       max_dets: int = MAX_DETS,
                       engine: str = 'auto') -> Dict[str, np.ndarray]:
    """Per area range, whether COCOeval counts each detection.

    Args:
        coco_gt: The ground truth.
        detections: COCO results (``bbox``, or RLE ``segmentation`` for
            segm, sized by the mask as mmdet's ``CocoMetric`` does).
        iou_type: ``'bbox'`` or ``'segm'``.
        areas: Name -> ``(lo, hi)`` object area range, px², both ends in.
        iou_threshold: One of COCO's IoU thresholds.
        max_dets: Detections per image and category, COCOeval's maxDets.
        engine: As :func:`~analysis.coco_eval.image_eval.evaluate_images`'s.

    Returns:
        Area name -> one bool per detection (``detections`` order): True
        when COCOeval counts it (within ``max_dets`` of its image and
        category, of a category of the ground truth, not ignored).
    """
    out = {name: np.zeros(len(detections), bool) for name in areas}
    if not detections:
        return out
    img_ids = sorted(coco_gt.getImgIds())
    cat_ids = sorted(coco_gt.getCatIds())
    if choose_engine(engine) == 'fast':
        [t] = np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou_threshold))
        index = fast_match.PairIndex(coco_gt, detections, iou_type, img_ids,
                                     cat_ids, max_dets)
        for name, bounds in areas.items():
            _, ignored, _ = index.match(bounds)
            out[name][index.d_index] = ~ignored[t]
        return out
    with contextlib.redirect_stdout(io.StringIO()):
        # loadRes numbers the results 1, 2, ... in the order given.
        ev = COCOeval(coco_gt, coco_gt.loadRes(
            coco_results(detections, iou_type)), iou_type)
        ev.params.imgIds = img_ids
        ev.params.iouThrs = np.array([iou_threshold])
        ev.params.areaRng = [list(v) for v in areas.values()]
        ev.params.areaRngLbl = list(areas)
        ev.params.maxDets = [max_dets]
        ev.evaluate()
    names = list(areas)
    # evalImgs: category-major, then area range, then image.
    for n, e in enumerate(ev.evalImgs):
        if e is not None:
            counted = out[names[n // len(img_ids) % len(names)]]
            for det_id, ignored in zip(e['dtIds'], e['dtIgnore'][0]):
                counted[det_id - 1] = not ignored
    return out
