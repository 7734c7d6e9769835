"""Every (category, IoU threshold) segment of one area range, flattened:
what COCO's accumulate needs, recomputed for any image weights.

Why weights are exact: a resampled image's detections are copies with equal
scores, adjacent in the order. COCO's interpolated precision at a recall
threshold is the maximum precision at or after the first detection reaching
that recall. Within a run of copies of one true positive, precision rises
(or stays) and recall steps up, so every threshold falling inside the run
gets the run's last value; copies of a false positive never raise the
maximum. Only the last copy matters: its counts are the weighted cumulative
sums. And because the maximum after a position is always reached at a true
positive, the computation only needs the true positives' positions.
"""
import dataclasses
from typing import Dict, Tuple

import numpy as np

from analysis.coco_eval.constants import IOU_THRESHOLDS, RECALL_THRESHOLDS
from analysis.coco_eval.engine import precision_kernel


@dataclasses.dataclass
class AreaTable:
    """Every (category, IoU threshold) segment of one area range, flattened.

    Segment ``s = k * T + t``. ``det_img`` holds the image of each
    non-ignored detection in score order, segment after segment
    (``det_start`` offsets, one past the end last); ``tp_img`` and
    ``tp_pos`` (global index into ``det_img``) the true positives among
    them (``tp_start`` offsets); ``npig`` (categories x images) the
    non-ignored ground truths.
    """

    det_img: np.ndarray
    det_start: np.ndarray
    tp_img: np.ndarray
    tp_pos: np.ndarray
    tp_start: np.ndarray
    npig: np.ndarray

    @classmethod
    def build(cls, segments: Dict[Tuple[int, int], Tuple[list, list]],
              num_k: int, npig: np.ndarray) -> 'AreaTable':
        num_t = len(IOU_THRESHOLDS)
        det_img, tp_img, tp_pos = [], [], []
        det_start, tp_start = [0], [0]
        offset = 0
        for k in range(num_k):
            dets, tps = segments.get(k, ([np.zeros(0, np.int64)] * num_t,
                                         [np.zeros(0, np.int64)] * num_t))
            for t in range(num_t):
                det_img.append(dets[t])
                tp_img.append(dets[t][tps[t]])
                tp_pos.append(tps[t] + offset)
                offset += len(dets[t])
                det_start.append(offset)
                tp_start.append(tp_start[-1] + len(tps[t]))
        return cls(np.concatenate(det_img), np.asarray(det_start),
                   np.concatenate(tp_img), np.concatenate(tp_pos),
                   np.asarray(tp_start), npig)

    def precision(self, w: np.ndarray) -> np.ndarray:
        """Interpolated precision (T, R, K) for image weights ``w``."""
        num_t, num_r = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
        num_k = self.npig.shape[0]
        npig = self.npig @ w
        kernel = precision_kernel()
        if kernel is not None:
            out = np.empty((num_k * num_t, num_r))
            kernel(w, self.det_img, self.det_start, self.tp_img, self.tp_pos,
                   self.tp_start, npig, num_t, RECALL_THRESHOLDS, out)
            return out.reshape(num_k, num_t, num_r).transpose(1, 2, 0)
        return self._precision_numpy(w, npig)

    def _precision_numpy(self, w: np.ndarray, npig: np.ndarray) -> np.ndarray:
        num_t, num_r = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
        num_k = self.npig.shape[0]
        out = np.zeros((num_k * num_t, num_r))
        if self.tp_img.size:
            # Weighted counts up to each TP, per segment: global cumulative
            # sums minus the sum before the segment starts.
            det_cum = np.concatenate([[0.0], np.cumsum(w[self.det_img])])
            tp_cum = np.concatenate([[0.0], np.cumsum(w[self.tp_img])])
            seg = np.repeat(np.arange(num_k * num_t), np.diff(self.tp_start))
            tp_n = tp_cum[1:] - tp_cum[self.tp_start[seg]]
            det_n = det_cum[self.tp_pos + 1] - det_cum[self.det_start[seg]]
            prec = tp_n / (det_n + np.spacing(1))
            # Maximum precision at or after each TP, within its segment: an
            # offset growing towards the front keeps segments apart.
            lift = 2.0 * (num_k * num_t - seg)
            env = np.maximum.accumulate((prec + lift)[::-1])[::-1] - lift
            npig_tp = npig[seg // num_t]
            recall = np.divide(tp_n, npig_tp, out=np.zeros_like(tp_n),
                               where=npig_tp > 0)
            for s in np.flatnonzero(np.diff(self.tp_start)):
                if npig[s // num_t] <= 0:
                    continue
                lo, hi = self.tp_start[s], self.tp_start[s + 1]
                q = np.searchsorted(recall[lo:hi], RECALL_THRESHOLDS,
                                    side='left')
                ok = q < hi - lo
                out[s, ok] = env[lo + q[ok]]
        out[np.repeat(npig <= 0, num_t)] = -1.0
        return out.reshape(num_k, num_t, num_r).transpose(1, 2, 0)
