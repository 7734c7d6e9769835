"""Labels of BestMatchingAssigner on hand-built IoU matrices.

Rows are GTs, columns anchors. Without best matching (0.5 / 0.4):
  a0: best 0.70 (g0)           -> positive g0
  a1: best 0.38 (g1), 0.35 g2  -> negative
  a2: best 0.45 (g1)           -> ignored (between 0.4 and 0.5)
  a3: best 0.15 (g2)           -> negative
  a4: best 0.22 (g3), 0.21 with g4 -> negative
  a5: best 0.00                -> negative
Each GT's best IoU: g0 0.70 @a0, g1 0.45 @a2, g2 0.35 @a1, g3 0.22 @a4,
g4 0.21 @a4.
"""
import pytest
import torch

from mmdet_plugins.models.task_modules import BestMatchingAssigner

IOU = torch.tensor([
    # a0    a1    a2    a3    a4    a5
    [0.70, 0.30, 0.10, 0.00, 0.20, 0.00],  # g0
    [0.20, 0.38, 0.45, 0.00, 0.10, 0.00],  # g1
    [0.00, 0.35, 0.10, 0.15, 0.00, 0.00],  # g2
    [0.00, 0.00, 0.00, 0.00, 0.22, 0.00],  # g3
    [0.00, 0.00, 0.00, 0.00, 0.21, 0.00],  # g4
])
LABELS = torch.tensor([10, 11, 12, 13, 14])

# gt_inds (0 negative, -1 ignored, i+1 = GT i) per threshold and semantics.
EXPECTED = {
    None: {'both': [1, 0, -1, 0, 0, 0]},
    0.4: {'both': [1, 0, 2, 0, 0, 0]},
    # g2 selects a1, whose own best GT is g1 (0.38).
    0.3: {'maskrcnn-benchmark': [1, 2, 2, 0, 0, 0],
          'mmdet': [1, 3, 2, 0, 0, 0]},
    # g3 and g4 both select a4 (0.22 / 0.21): its own best is g3; in mmdet
    # the later GT (g4) overwrites.
    0.2: {'maskrcnn-benchmark': [1, 2, 2, 0, 4, 0],
          'mmdet': [1, 3, 2, 0, 5, 0]},
    0.0: {'maskrcnn-benchmark': [1, 2, 2, 0, 4, 0],
          'mmdet': [1, 3, 2, 0, 5, 0]},
}


def _assign(thr, semantics, iou=IOU, labels=LABELS, **kwargs):
    assigner = BestMatchingAssigner(low_quality_thr=thr, semantics=semantics,
                                    **kwargs)
    return assigner.assign_wrt_overlaps(iou.clone(), labels)


@pytest.mark.parametrize('thr', list(EXPECTED))
@pytest.mark.parametrize('semantics', ['maskrcnn-benchmark', 'mmdet'])
def test_expected_labels_for_every_threshold_and_semantics(thr, semantics):
    expected = EXPECTED[thr].get(semantics, EXPECTED[thr].get('both'))
    result = _assign(thr, semantics)
    assert result.gt_inds.tolist() == expected
    want_labels = [LABELS[i - 1].item() if i > 0 else -1 for i in expected]
    assert result.labels.tolist() == want_labels
    assert torch.equal(result.max_overlaps, IOU.max(0).values)


@pytest.mark.parametrize('semantics', ['maskrcnn-benchmark', 'mmdet'])
def test_ties_make_every_tied_anchor_positive(semantics):
    iou = torch.tensor([[0.3, 0.1, 0.3, 0.0],
                        [0.0, 0.2, 0.0, 0.1]])
    result = _assign(0.0, semantics, iou=iou, labels=torch.tensor([5, 6]))
    assert result.gt_inds.tolist() == [1, 2, 1, 0]


def test_zero_iou_gt_literal_and_off():
    iou = torch.tensor([[0.6, 0.1, 0.0, 0.0],
                        [0.0, 0.0, 0.0, 0.0]])  # g1 overlaps no anchor
    labels = torch.tensor([1, 2])
    # Literal (both codebases): every anchor tied at IoU 0 with g1 becomes
    # positive -- of its own best GT (g0, by argmax) or, in mmdet, of g1,
    # which then even takes a0 (IoU 0.6 with g0) away from g0.
    assert _assign(0.0, 'maskrcnn-benchmark', iou=iou,
                   labels=labels).gt_inds.tolist() == [1, 1, 1, 1]
    assert _assign(0.0, 'mmdet', iou=iou,
                   labels=labels).gt_inds.tolist() == [2, 2, 2, 2]
    # literal_zero_iou=False leaves g1 unmatched.
    assert _assign(0.0, 'mmdet', iou=iou, labels=labels,
                   literal_zero_iou=False).gt_inds.tolist() == [1, 0, 0, 0]


def test_no_gts_gives_all_negatives():
    result = _assign(0.0, 'mmdet', iou=torch.zeros(0, 3),
                     labels=torch.zeros(0, dtype=torch.long))
    assert result.gt_inds.tolist() == [0, 0, 0]


def test_bad_arguments():
    with pytest.raises(ValueError, match='semantics'):
        BestMatchingAssigner(semantics='detectron')
    with pytest.raises(TypeError, match='min_pos_iou'):
        BestMatchingAssigner(min_pos_iou=0.3)
