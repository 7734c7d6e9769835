"""PyTorch against onnxruntime on a test split, detection by detection.

Both start from the same test-pipeline output (the resized image the data
loader yields): PyTorch runs the model's ``test_step`` (mmdet's own
preprocessing, decoding, NMS and mask pasting), onnxruntime runs the export
through :class:`~mmdet_plugins.export.onnx_inference.OnnxDetector`. Per
image the two detection lists are compared in score order: same number,
same classes, and the largest differences of boxes (original-image pixels),
scores and mask scores, and of the binary masks (pixels that differ over
pixels in either mask). Both lists are also returned as COCO results, so
that AP can be computed for each through the same evaluator.
"""
from typing import Dict, List, Optional

import numpy as np
import torch

# What "equal" means between PyTorch and onnxruntime. Boxes in
# original-image pixels; masks as pixels that differ over pixels in either
# mask (the mask probabilities are thresholded at 0.5, so a probability a
# rounding error away from it flips a pixel); AP as absolute fractions.
TOLERANCES = dict(max_box_abs=1e-2, max_score_abs=1e-4,
                  max_mask_score_abs=1e-4, max_mask_pixel_diff=1e-2,
                  bbox_AP_abs=1e-3, segm_AP_abs=1e-3)


def within_tolerance(summary: dict) -> List[str]:
    """What in a :func:`compare_on_split` summary (with the AP keys the
    export tool adds) is outside :data:`TOLERANCES`; empty when nothing."""
    problems = []
    if summary['images_same_detections'] != summary['images']:
        problems.append(
            f'{summary["images"] - summary["images_same_detections"]} of '
            f'{summary["images"]} images have different detection lists '
            f'(count or classes)')
    for key in ('max_box_abs', 'max_score_abs', 'max_mask_score_abs',
                'max_mask_pixel_diff'):
        if not summary[key] <= TOLERANCES[key]:
            problems.append(f'{key} = {summary[key]:.3g} > '
                            f'{TOLERANCES[key]}')
    for iou_type in ('bbox', 'segm'):
        key = f'torch_{iou_type}_AP'
        if key not in summary:
            continue
        diff = abs(summary[key] - summary[f'onnx_{iou_type}_AP'])
        if not diff <= TOLERANCES[f'{iou_type}_AP_abs']:
            problems.append(f'{iou_type} AP differs by {diff:.4f} > '
                            f'{TOLERANCES[f"{iou_type}_AP_abs"]}')
    return problems


def torch_detections(sample) -> Dict[str, np.ndarray]:
    """A ``DetDataSample``'s predictions as numpy arrays."""
    pred = sample.pred_instances
    scores = pred.scores.cpu().numpy()
    return dict(boxes=pred.bboxes.cpu().numpy(), scores=scores,
                labels=pred.labels.cpu().numpy(),
                masks=pred.masks.cpu().numpy().astype(bool),
                mask_scores=(pred.mask_scores.cpu().numpy()
                             if 'mask_scores' in pred else scores))


def coco_results(img_id: int, det: Dict[str, np.ndarray],
                 cat_ids: List[int]) -> tuple:
    """``(bbox results, segm results)`` as mmdet's ``CocoMetric`` writes
    them (segm scored by ``mask_scores``)."""
    from pycocotools import mask as mask_util
    boxes, segms = [], []
    for box, score, label, mask, mask_score in zip(
            det['boxes'], det['scores'], det['labels'], det['masks'],
            det['mask_scores']):
        x0, y0, x1, y1 = (float(v) for v in box)
        category = cat_ids[int(label)]
        boxes.append(dict(image_id=img_id, category_id=category,
                          bbox=[x0, y0, x1 - x0, y1 - y0],
                          score=float(score)))
        rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode()
        segms.append(dict(image_id=img_id, category_id=category,
                          segmentation=rle, score=float(mask_score)))
    return boxes, segms


def compare_detections(ref: Dict[str, np.ndarray],
                       got: Dict[str, np.ndarray]) -> dict:
    """Differences of two score-ordered detection lists of one image.

    The numeric differences cover the common prefix whose classes agree;
    ``same_detections`` says whether the lists have equal length and
    classes.
    """
    n = min(len(ref['scores']), len(got['scores']))
    agree = n
    mismatch = np.flatnonzero(ref['labels'][:n] != got['labels'][:n])
    if len(mismatch):
        agree = int(mismatch[0])
    out = dict(torch_detections=len(ref['scores']),
               onnx_detections=len(got['scores']),
               same_detections=bool(len(ref['scores']) == len(got['scores'])
                                    and agree == n),
               box_abs=0.0, score_abs=0.0, mask_score_abs=0.0,
               mask_pixel_diff=0.0)
    if agree == 0:
        return out
    k = slice(0, agree)
    out['box_abs'] = float(np.abs(ref['boxes'][k] - got['boxes'][k]).max())
    out['score_abs'] = float(np.abs(ref['scores'][k]
                                    - got['scores'][k]).max())
    out['mask_score_abs'] = float(np.abs(ref['mask_scores'][k]
                                         - got['mask_scores'][k]).max())
    a, b = ref['masks'][k], got['masks'][k]
    differ = (a ^ b).reshape(agree, -1).sum(1)
    either = np.maximum((a | b).reshape(agree, -1).sum(1), 1)
    out['mask_pixel_diff'] = float((differ / either).max())
    return out


def run_both(model: torch.nn.Module, data: dict, detector) -> tuple:
    """``(img_id, PyTorch detections, detector's detections)`` of one
    data-loader batch of one image."""
    with torch.no_grad():
        sample = model.test_step(data)[0]
    meta = sample.metainfo
    resized = data['inputs'][0].permute(1, 2, 0).numpy()
    got = detector.from_resized(
        np.ascontiguousarray(resized),
        np.asarray(meta['scale_factor'], dtype=np.float32),
        tuple(meta['ori_shape'][:2]))
    return int(meta['img_id']), torch_detections(sample), got


def compare_on_split(model: torch.nn.Module, loader, detector,
                     max_images: Optional[int] = None) -> dict:
    """Run both on the first ``max_images`` test images (all if None).

    Returns:
        ``images`` (per-image :func:`compare_detections` records with
        ``img_id``), ``summary`` (largest differences over images, images
        whose detection lists agree) and ``coco`` (``torch_bbox``,
        ``torch_segm``, ``onnx_bbox``, ``onnx_segm`` result lists).
    """
    cat_ids = list(loader.dataset.cat_ids)
    images = []
    coco = {k: [] for k in ('torch_bbox', 'torch_segm', 'onnx_bbox',
                            'onnx_segm')}
    for i, data in enumerate(loader):
        if max_images is not None and i >= max_images:
            break
        img_id, ref, got = run_both(model, data, detector)
        images.append(dict(img_id=img_id, **compare_detections(ref, got)))
        for who, det in (('torch', ref), ('onnx', got)):
            boxes, segms = coco_results(img_id, det, cat_ids)
            coco[f'{who}_bbox'] += boxes
            coco[f'{who}_segm'] += segms
    if not images:
        raise ValueError('the test split has no images to compare on')
    summary = dict(
        images=len(images),
        images_same_detections=sum(r['same_detections'] for r in images),
        detections=sum(r['torch_detections'] for r in images),
        **{f'max_{k}': max(r[k] for r in images)
           for k in ('box_abs', 'score_abs', 'mask_score_abs',
                     'mask_pixel_diff')})
    return dict(images=images, summary=summary, coco=coco)
