"""RetinaMask's best-matching anchor assignment."""
from typing import Optional

import torch
from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from torch import Tensor

SEMANTICS = ('maskrcnn-benchmark', 'mmdet')


@TASK_UTILS.register_module()
class BestMatchingAssigner(MaxIoUAssigner):
    """IoU thresholds plus "each GT's best anchors become positive".

    1. Anchors whose best IoU with any GT is below ``neg_iou_thr`` are
       negatives (0); at or above ``pos_iou_thr`` positives of their
       best-IoU GT; in between ignored (-1).
    2. Best matching (skipped when ``low_quality_thr`` is None): for every
       GT whose highest IoU with any anchor is ``>= low_quality_thr``, all
       anchors reaching that highest IoU (ties included, in both reference
       codebases) become positives, even when below ``pos_iou_thr``.

    Which GT such an anchor is assigned to differs between the codebases:

    - ``'maskrcnn-benchmark'`` (RetinaMask's official code, the default):
      the anchor keeps its own best-IoU GT (``matches[i] = all_matches[i]``),
      which need not be the GT that selected it.
    - ``'mmdet'`` (``MaxIoUAssigner(match_low_quality=True)``): the anchor
      goes to the GT that selected it, GTs taken in order, so a later GT
      overwrites an earlier one on an anchor both selected.

    A GT with zero IoU to every anchor has "best" IoU 0, and under the tie
    rule every anchor with IoU 0 to it ties for best. Both reference
    implementations apply the rule literally, so with ``low_quality_thr=0.0``
    all those anchors become positives (of their own best GT, or of that GT
    in ``mmdet`` semantics). That is the default here (``literal_zero_iou=
    True``) for fidelity; mmdet's ``CocoDataset`` drops boxes under 1 px,
    which is how such GTs normally arise, so the case is rare in practice.
    ``literal_zero_iou=False`` leaves such a GT unmatched instead.

    RetinaMask uses 0.5 / 0.4 with ``low_quality_thr=0.0``; Detectron's
    behaviour is ``low_quality_thr=0.4``; None turns best matching off.

    Args:
        pos_iou_thr: IoU at or above which an anchor is positive.
        neg_iou_thr: IoU below which an anchor is negative.
        low_quality_thr: Minimum best IoU of a GT for best matching, or None.
        semantics: ``'maskrcnn-benchmark'`` or ``'mmdet'``, see above.
        literal_zero_iou: Whether a GT whose best IoU is 0 still selects
            (all) its zero-IoU anchors.
        **kwargs: Passed to ``MaxIoUAssigner`` (``ignore_iof_thr``,
            ``gpu_assign_thr``, ``iou_calculator``, ...).
    """

    def __init__(self,
                 pos_iou_thr: float = 0.5,
                 neg_iou_thr: float = 0.4,
                 low_quality_thr: Optional[float] = 0.0,
                 semantics: str = 'maskrcnn-benchmark',
                 literal_zero_iou: bool = True,
                 **kwargs) -> None:
        if semantics not in SEMANTICS:
            raise ValueError(f'semantics must be one of {SEMANTICS}, got '
                             f'{semantics!r}')
        for key in ('min_pos_iou', 'match_low_quality', 'gt_max_assign_all'):
            if key in kwargs:
                raise TypeError(f'BestMatchingAssigner sets {key} itself; '
                                f'use low_quality_thr')
        super().__init__(
            pos_iou_thr=pos_iou_thr, neg_iou_thr=neg_iou_thr,
            min_pos_iou=0.0 if low_quality_thr is None else low_quality_thr,
            match_low_quality=low_quality_thr is not None,
            gt_max_assign_all=True, **kwargs)
        self.low_quality_thr = low_quality_thr
        self.semantics = semantics
        self.literal_zero_iou = literal_zero_iou

    def assign_wrt_overlaps(self, overlaps: Tensor,
                            gt_labels: Tensor) -> AssignResult:
        """Assign from an IoU matrix of shape (num_gts, num_anchors).

        Returns:
            ``AssignResult`` with ``gt_inds`` (0 negative, -1 ignored, i + 1
            for GT i), ``max_overlaps`` and ``labels`` (-1 where not
            positive).
        """
        num_gts, num_anchors = overlaps.size(0), overlaps.size(1)
        gt_inds = overlaps.new_full((num_anchors, ), -1, dtype=torch.long)
        if num_gts == 0 or num_anchors == 0:
            max_overlaps = overlaps.new_zeros((num_anchors, ))
            if num_gts == 0:
                gt_inds[:] = 0
            return AssignResult(num_gts, gt_inds, max_overlaps,
                                labels=overlaps.new_full((num_anchors, ), -1,
                                                         dtype=torch.long))

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, _ = overlaps.max(dim=1)
        gt_inds[(max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)] = 0
        positive = max_overlaps >= self.pos_iou_thr
        gt_inds[positive] = argmax_overlaps[positive] + 1

        if self.low_quality_thr is not None:
            eligible = gt_max_overlaps >= self.low_quality_thr
            if not self.literal_zero_iou:
                eligible &= gt_max_overlaps > 0
            # (num_gts, num_anchors): anchor j ties for GT i's best IoU.
            best = (overlaps == gt_max_overlaps[:, None]) & eligible[:, None]
            if self.semantics == 'maskrcnn-benchmark':
                chosen = best.any(dim=0)
                gt_inds[chosen] = argmax_overlaps[chosen] + 1
            else:
                for i in range(num_gts):
                    gt_inds[best[i]] = i + 1

        labels = gt_inds.new_full((num_anchors, ), -1)
        pos = gt_inds > 0
        labels[pos] = gt_labels[gt_inds[pos] - 1]
        return AssignResult(num_gts, gt_inds, max_overlaps, labels=labels)
