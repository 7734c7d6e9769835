"""Mask parity that tells float rounding from a wrong graph.

A binary mask is a probability map thresholded at ``mask_thr_binary``; a
randomly initialised mask head outputs probabilities near 0.5 everywhere,
so a rounding-size difference flips many pixels and the binary comparison
alone cannot tell rounding from a wrong paste. Here the comparison starts
from the probabilities:

- ``mask_prob_abs``: the largest difference of the paired detections'
  M x M probabilities (PyTorch's captured by :func:`captured_mask_probs`,
  sigmoid of the mask logits of the detection's class; onnxruntime's the
  graph's ``mask_probs``);
- ``mask_pixel_unexplained``: binary flips that those differences cannot
  explain. Pasting is bilinear, a convex combination of M x M values, so a
  pasted probability moves by at most the M x M difference, plus what the
  box's own difference (each runtime pastes into its own box) moves the
  sampling grid by (:func:`flip_slack`). A pixel whose onnxruntime
  probability is farther than that from the threshold cannot flip unless
  the paste or resize is wrong.
"""
from contextlib import contextmanager
from typing import Dict, List, Optional

import numpy as np
import torch

# Float32 differences between two pastes of the same values (torch's
# grid_sample against numpy's matrix products): a few ulps of 0.5 (6e-8).
# The flips of the random-init CenterMask-Lite MV2 in make check-coco sat
# 3e-8 from the threshold.
PASTE_EPS = 1e-6


def mask_head_of(model: torch.nn.Module) -> Optional[torch.nn.Module]:
    """The mask head whose ``predict_by_feat`` pastes the final masks:
    CenterMask's and RetinaMask's own, Mask R-CNN's RoI head's."""
    head = getattr(model, 'mask_head', None)
    if head is None and getattr(model, 'roi_head', None) is not None:
        head = getattr(model.roi_head, 'mask_head', None)
    return head


def class_probs(mask_preds: torch.Tensor, labels: torch.Tensor,
                activated: bool = False) -> torch.Tensor:
    """(n, M, M) probabilities of each detection's class, as mmdet's
    ``FCNMaskHead._predict_by_feat_single`` selects them before pasting.

    Args:
        mask_preds: (n, C, M, M) mask logits (C = 1: class-agnostic).
        labels: (n, ) the detections' classes.
        activated: ``mask_preds`` are probabilities already (mmdet's
            ``activate_map``).
    """
    probs = mask_preds if activated else mask_preds.sigmoid()
    if probs.shape[1] == 1:
        return probs[:, 0]
    return probs[torch.arange(len(labels), device=probs.device), labels]


@contextmanager
def captured_mask_probs(model: torch.nn.Module):
    """Within it, every ``predict_by_feat`` of the model's mask head
    records, per image, the probabilities it pastes and the detections'
    labels and scores, in the order of the final detections.

    Yields:
        A list that gets one dict per image (``probs`` (n, M, M) float32,
        ``labels``, ``scores``), empty when the head never ran (no box to
        segment).
    """
    head = mask_head_of(model)
    captured: List[Dict[str, np.ndarray]] = []
    if head is None:
        yield captured
        return
    original = head.predict_by_feat

    def predict_by_feat(mask_preds, results_list, *args, **kwargs):
        # mmdet's signature: (..., rcnn_test_cfg, rescale, activate_map).
        activated = kwargs.get('activate_map', args[3] if len(args) > 3
                               else False)
        for preds, res in zip(mask_preds, results_list):
            probs = class_probs(preds, res.labels, activated)
            captured.append(dict(
                probs=probs.detach().float().cpu().numpy(),
                labels=res.labels.cpu().numpy(),
                scores=res.scores.detach().float().cpu().numpy()))
        return original(mask_preds, results_list, *args, **kwargs)

    # An instance attribute shadows the class's method; deleting it
    # restores the head exactly.
    head.predict_by_feat = predict_by_feat
    try:
        yield captured
    finally:
        del head.predict_by_feat


def flip_slack(prob_abs: float, probs: np.ndarray, box_ref: np.ndarray,
               box_got: np.ndarray) -> float:
    """How far one detection's two pasted probabilities can be apart.

    The M x M maps differ by at most ``prob_abs``; the two boxes move the
    bilinear sampling point by up to ``M * max|edge difference| / box
    size`` cells (first order), and a bilinear map changes by at most its
    largest neighbour difference per cell (zero outside, as pasted).

    Args:
        prob_abs: Largest |difference| of the two M x M maps.
        probs: (M, M) onnxruntime map.
        box_ref, box_got: The two (4, ) boxes in image pixels.
    """
    padded = np.pad(probs.astype(np.float64), 1)
    lip_x = float(np.abs(np.diff(padded, axis=1)).max(initial=0))
    lip_y = float(np.abs(np.diff(padded, axis=0)).max(initial=0))
    d = np.abs(np.asarray(box_ref, np.float64) - box_got)
    w = max(float(box_got[2] - box_got[0]), 1e-6)
    h = max(float(box_got[3] - box_got[1]), 1e-6)
    shift_x = probs.shape[1] * max(d[0], d[2]) / w
    shift_y = probs.shape[0] * max(d[1], d[3]) / h
    return prob_abs + lip_x * shift_x + lip_y * shift_y


def unexplained_flips(mask_ref: np.ndarray, mask_got: np.ndarray,
                      pasted: np.ndarray, region: tuple, threshold: float,
                      slack: float) -> int:
    """Pixels where the two binary masks differ although onnxruntime's
    pasted probability is farther than ``slack`` (+ :data:`PASTE_EPS`)
    from the threshold.

    Args:
        mask_ref, mask_got: (H, W) binary masks (PyTorch, onnxruntime).
        pasted: onnxruntime's pasted probabilities on ``region``
            (``(rows, cols)`` slices); zero elsewhere, as it pastes.
        threshold: ``mask_thr_binary``.
        slack: :func:`flip_slack` of the detection.
    """
    prob = np.zeros(mask_ref.shape, np.float64)
    prob[region] = pasted
    explained = np.abs(prob - threshold) <= slack + PASTE_EPS
    return int(((mask_ref ^ mask_got) & ~explained).sum())


def compare_mask_probs(ref: Dict[str, np.ndarray], got: Dict[str, np.ndarray],
                       pairs: List[tuple]) -> dict:
    """``mask_prob_abs`` and ``mask_pixel_unexplained`` of paired
    detections (``(i, j)``: ``ref[i]`` is ``got[j]``).

    Args:
        ref: PyTorch's detections with ``mask_probs`` (n, M, M).
        got: onnxruntime's, with ``mask_probs``, ``pasted_probs`` and
            ``mask_thr_binary`` (``postprocess(..., return_probs=True)``).
        pairs: The pairs.

    Returns:
        Empty when either side lacks the probabilities, else both figures
        (0 without pairs).
    """
    if 'mask_probs' not in ref or 'pasted_probs' not in got:
        return {}
    prob_abs, unexplained = 0.0, 0
    for i, j in pairs:
        diff = float(np.abs(ref['mask_probs'][i].astype(np.float64)
                            - got['mask_probs'][j]).max(initial=0))
        prob_abs = max(prob_abs, diff)
        pasted, region = got['pasted_probs'][j]
        slack = flip_slack(diff, got['mask_probs'][j], ref['boxes'][i],
                           got['boxes'][j])
        unexplained += unexplained_flips(
            ref['masks'][i], got['masks'][j], pasted, region,
            float(got['mask_thr_binary']), slack)
    return dict(mask_prob_abs=prob_abs, mask_pixel_unexplained=unexplained)
