"""PyTorch against onnxruntime on a test split, detection by detection.

Both start from the same test-pipeline output (the resized image the data
loader yields): PyTorch runs the model's ``test_step`` (mmdet's own
preprocessing, decoding, NMS and mask pasting), onnxruntime runs the export
through :class:`~mmdet_plugins.export.onnx_inference.OnnxDetector`. Per
image the two detection lists are paired detection by detection (same
class, nearly the same box and score): detections without a partner, and
the largest differences of boxes (original-image pixels), scores and mask
scores, and of the binary masks (pixels that differ over pixels in either
mask, pooled over the pairs); and, from the mask probabilities
(:mod:`.mask_parity`), the largest difference of the M x M probabilities
and the binary flips those differences do not explain. Both lists are
also returned as COCO results, so that AP can be computed for each through
the same evaluator.
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from .mask_parity import captured_mask_probs, compare_mask_probs

# What "equal" means between PyTorch and onnxruntime. Boxes in
# original-image pixels; masks as pixels that differ over pixels in either
# mask, pooled over an image's detections (the mask probabilities are
# thresholded at 0.5, so a probability a rounding error away from it flips
# a pixel); mask scores absolute, over
# |score| where it exceeds 1 (an untrained MaskIoU head); AP as absolute
# fractions. Where the mask probabilities are compared, the M x M
# probabilities are held to 1e-3: 10x the scores', since each runtime's
# mask head pools (RoIAlign) at its own box, up to max_box_abs apart, after
# more layers than the scores pass; a wrong graph (another class's map, a
# missing sigmoid, a transposed map) is off by 1e-1 or more. The binary
# masks then may differ only where those differences explain it (no
# unexplained pixel); their raw difference is reported, not judged.
TOLERANCES = dict(max_box_abs=1e-2, max_score_abs=1e-4,
                  max_mask_score_abs=1e-4, max_mask_pixel_diff=1e-2,
                  max_mask_prob_abs=1e-3, mask_pixel_unexplained=0,
                  bbox_AP_abs=1e-3, segm_AP_abs=1e-3)


def within_tolerance(summary: dict) -> List[str]:
    """What in a :func:`compare_on_split` summary (with the AP keys the
    export tool adds) is outside :data:`TOLERANCES`; empty when nothing."""
    problems = []
    if summary['images_same_detections'] != summary['images']:
        problems.append(
            f'{summary["images"] - summary["images_same_detections"]} of '
            f'{summary["images"]} images have detections the other runtime '
            f'does not have (class, box or score)')
    # With the probabilities compared, a flip they explain is rounding at
    # the threshold; without them (an older summary) the binary masks are
    # all there is to judge.
    mask_keys = ('max_mask_prob_abs', 'mask_pixel_unexplained') \
        if 'max_mask_prob_abs' in summary else ('max_mask_pixel_diff', )
    for key in ('max_box_abs', 'max_score_abs', 'max_mask_score_abs',
                *mask_keys):
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
    them (segm scored by ``mask_scores``, with the box)."""
    from pycocotools import mask as mask_util
    boxes, segms = [], []
    for box, score, label, mask, mask_score in zip(
            det['boxes'], det['scores'], det['labels'], det['masks'],
            det['mask_scores']):
        x0, y0, x1, y1 = (float(v) for v in box)
        category = cat_ids[int(label)]
        xywh = [x0, y0, x1 - x0, y1 - y0]
        boxes.append(dict(image_id=img_id, category_id=category, bbox=xywh,
                          score=float(score)))
        rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode()
        # CocoMetric's segm results carry the box too (COCO's loadRes then
        # takes the result's area from it).
        segms.append(dict(image_id=img_id, category_id=category, bbox=xywh,
                          segmentation=rle, score=float(mask_score)))
    return boxes, segms


# Two detections are the same one when their classes agree and box and
# score are this close (100x the tolerances: the differences of matched
# pairs are then held to the tolerances themselves).
MATCH_BOX_PX, MATCH_SCORE = 1.0, 1e-2


def _match(ref: Dict[str, np.ndarray], got: Dict[str, np.ndarray]
           ) -> List[tuple]:
    """Pairs ``(i, j)`` of the same detection, ``ref`` in score order."""
    pairs, used = [], np.zeros(len(got['scores']), dtype=bool)
    for i in range(len(ref['scores'])):
        box = np.abs(got['boxes'] - ref['boxes'][i]).max(1, initial=0) \
            if len(got['scores']) else np.zeros(0)
        score = np.abs(got['scores'] - ref['scores'][i])
        ok = (~used) & (got['labels'] == ref['labels'][i]) & \
            (box <= MATCH_BOX_PX) & (score <= MATCH_SCORE)
        if ok.any():
            j = int(np.flatnonzero(ok)[np.argmin((box + score)[ok])])
            used[j] = True
            pairs.append((i, j))
    return pairs


def compare_detections(ref: Dict[str, np.ndarray],
                       got: Dict[str, np.ndarray]) -> dict:
    """Differences between two detection lists of one image.

    Detections are paired by class, box and score (:func:`_match`). A
    detection without a partner is a ``cut_tie`` when its score ties (within
    ``TOLERANCES['max_score_abs']``) the lowest score of its list: which of
    two boxes with the same score makes ``max_per_img`` is arbitrary in
    both runtimes. Any other is ``unmatched``; ``same_detections`` says
    there is none. The numeric differences cover the pairs.
    """
    pairs = _match(ref, got)
    out = dict(torch_detections=len(ref['scores']),
               onnx_detections=len(got['scores']), cut_ties=0,
               unmatched=0, reordered=sum(i != j for i, j in pairs),
               box_abs=0.0, score_abs=0.0, mask_score_abs=0.0,
               mask_pixel_diff=0.0)
    for det, mine in ((ref, {i for i, _ in pairs}),
                      (got, {j for _, j in pairs})):
        for k in set(range(len(det['scores']))) - mine:
            tie = abs(det['scores'][k] - det['scores'].min()) <= \
                TOLERANCES['max_score_abs']
            out['cut_ties' if tie else 'unmatched'] += 1
    out['same_detections'] = out['unmatched'] == 0
    out.update(compare_mask_probs(ref, got, pairs))
    if not pairs:
        return out
    a, b = (np.array(x) for x in zip(*pairs))
    out['box_abs'] = float(np.abs(ref['boxes'][a] - got['boxes'][b]).max())
    out['score_abs'] = float(np.abs(ref['scores'][a]
                                    - got['scores'][b]).max())
    # Over |score| where it exceeds 1: a MaskIoU head far from trained
    # regresses IoUs of hundreds, and float32 rounding grows with them.
    ref_ms = ref['mask_scores'][a]
    out['mask_score_abs'] = float(
        (np.abs(ref_ms - got['mask_scores'][b])
         / np.maximum(np.abs(ref_ms), 1.0)).max())
    # Pooled over the image's pairs, not the largest per mask: a mask of 3
    # pixels with one probability a rounding error from 0.5 differs by 1/3
    # (an untrained CenterMask-Lite MobileNetV2 on coco128-seg), while a
    # wrong paste or resize moves pixels of every mask.
    ma, mb = ref['masks'][a], got['masks'][b]
    differ = int((ma ^ mb).sum())
    either = int((ma | mb).sum())
    out['mask_pixel_diff'] = differ / either if either else 0.0
    return out


def detect_batch(detector, data: dict, return_probs: bool = False
                 ) -> Tuple[int, Dict[str, np.ndarray]]:
    """``(img_id, detections)`` of an ``OnnxDetector`` on one data-loader
    batch of one image, from the test pipeline's resized image
    (``return_probs``: with the mask probabilities, see ``postprocess``)."""
    meta = data['data_samples'][0].metainfo
    resized = np.ascontiguousarray(data['inputs'][0].permute(1, 2, 0).numpy())
    extra = dict(return_probs=True) if return_probs else {}
    return int(meta['img_id']), detector.from_resized(
        resized, np.asarray(meta['scale_factor'], dtype=np.float32),
        tuple(meta['ori_shape'][:2]), **extra)


def run_both(model: torch.nn.Module, data: dict, detector) -> tuple:
    """``(img_id, PyTorch detections, detector's detections)`` of one
    data-loader batch of one image, each with its M x M mask
    probabilities (``mask_probs``) for :func:`compare_detections`."""
    with torch.no_grad(), captured_mask_probs(model) as captured:
        sample = model.test_step(data)[0]
    img_id, got = detect_batch(detector, data, return_probs=True)
    ref = torch_detections(sample)
    # The head's probabilities are the final detections', in their order;
    # without a box to segment it never ran.
    probs = captured[0]['probs'] if captured else np.zeros((0, 1, 1))
    if len(probs) == len(ref['scores']):
        ref['mask_probs'] = probs
    return img_id, ref, got


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
        cut_ties=sum(r['cut_ties'] for r in images),
        reordered=sum(r['reordered'] for r in images),
        **{f'max_{k}': max(r[k] for r in images)
           for k in ('box_abs', 'score_abs', 'mask_score_abs',
                     'mask_pixel_diff')})
    if all('mask_prob_abs' in r for r in images):
        summary.update(
            max_mask_prob_abs=max(r['mask_prob_abs'] for r in images),
            mask_pixel_unexplained=sum(r['mask_pixel_unexplained']
                                       for r in images))
    return dict(images=images, summary=summary, coco=coco)
