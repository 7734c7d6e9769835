"""Mask parity from the probabilities: a binary flip is rounding only where
the probability differences explain it (issue 37, item 1)."""
import numpy as np
import torch
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet_plugins.export.mask_parity import (captured_mask_probs,
                                              compare_mask_probs, flip_slack,
                                              unexplained_flips)
from mmdet_plugins.export.onnx_inference import postprocess
from mmdet_plugins.export.parity import (TOLERANCES, compare_detections,
                                         within_tolerance)

BOX = np.array([[4., 4., 32., 32.]], np.float32)


def _pair(onnx_probs: np.ndarray, torch_probs: np.ndarray,
          torch_masks=None) -> tuple:
    """(PyTorch's, onnxruntime's) detections of one box, pasted by the
    onnxruntime path; PyTorch's masks are its own probabilities pasted the
    same way unless given."""
    def graph(probs):
        return dict(boxes=BOX.copy(), scores=np.array([.5], np.float32),
                    labels=np.array([0]), mask_probs=probs[None],
                    mask_scores=np.array([.5], np.float32))
    got = postprocess(graph(onnx_probs), np.ones(2, np.float32), (40, 40),
                      return_probs=True)
    ref = postprocess(graph(torch_probs), np.ones(2, np.float32), (40, 40))
    if torch_masks is not None:
        ref['masks'] = torch_masks
    ref['mask_probs'] = torch_probs[None]
    return ref, got


def test_the_default_postprocess_is_unchanged():
    ref, got = _pair(np.full((28, 28), .7, np.float32),
                     np.full((28, 28), .7, np.float32))
    assert set(ref) == {'boxes', 'scores', 'labels', 'masks', 'mask_scores',
                        'mask_probs'}
    assert (ref['masks'] == got['masks']).all()


def test_a_flip_next_to_the_threshold_is_explained_by_the_probabilities():
    # onnxruntime at 0.5004 everywhere (every pixel of the box), PyTorch
    # 8e-4 lower (none): all flip, each within 8e-4 of the threshold.
    ref, got = _pair(np.full((28, 28), .5004, np.float32),
                     np.full((28, 28), .4996, np.float32))
    out = compare_detections(ref, got)
    assert out['mask_pixel_diff'] == 1.0
    assert np.isclose(out["mask_prob_abs"], 8e-4, atol=1e-6)
    assert out['mask_pixel_unexplained'] == 0
    summary = dict(images=1, images_same_detections=1, max_box_abs=0.,
                   max_score_abs=0., max_mask_score_abs=0.,
                   max_mask_pixel_diff=1.0,
                   max_mask_prob_abs=out['mask_prob_abs'],
                   mask_pixel_unexplained=0)
    assert within_tolerance(summary) == []


def test_a_flip_far_from_the_threshold_is_not_explained():
    # The same 1e-3 apart, but PyTorch's binary mask says "in" where the
    # probability is 0.3: no rounding flips that pixel.
    probs = np.full((28, 28), .3, np.float32)
    masks = np.zeros((1, 40, 40), bool)
    masks[0, 10, 10] = True
    ref, got = _pair(probs, probs + np.float32(1e-3), masks)
    out = compare_detections(ref, got)
    assert out['mask_pixel_unexplained'] == 1


def test_a_paste_one_pixel_off_gives_unexplained_flips():
    probs = np.zeros((28, 28), np.float32)
    probs[7:21, 7:21] = 1.0
    ref, got = _pair(probs, probs.copy())
    ref['masks'] = np.roll(ref['masks'], 1, axis=2)
    out = compare_detections(ref, got)
    assert out['mask_prob_abs'] == 0.0
    assert out['mask_pixel_unexplained'] > 0


def test_the_flip_slack_grows_with_the_box_difference():
    probs = np.zeros((28, 28), np.float32)
    probs[:, 14:] = 1.0  # a step of 1 per cell
    box = BOX[0]
    assert flip_slack(1e-3, probs, box, box) == 1e-3
    # 0.01 px on a 28 px box moves the grid by 0.01 cell.
    assert np.isclose(flip_slack(1e-3, probs, box + [0, 0, .01, 0], box),
                      1e-3 + 0.01)
    pasted = np.full((40, 40), .5 + 5e-3)
    flipped = np.ones((40, 40), bool)
    assert unexplained_flips(flipped, ~flipped, pasted, np.s_[:, :], .5,
                             1e-3) == 1600
    assert unexplained_flips(flipped, ~flipped, pasted, np.s_[:, :], .5,
                             1e-2) == 0


def test_probabilities_are_compared_between_paired_detections():
    # Two detections listed in swapped order by onnxruntime: each is held
    # to its partner's probabilities, not to the same index.
    a, b = np.full((28, 28), .2, np.float32), np.full((28, 28), .9,
                                                       np.float32)
    ref = dict(boxes=np.array([[0., 0., 10., 10.], [20., 20., 30., 30.]]),
               scores=np.array([.6, .5]), labels=np.array([0, 1]),
               masks=np.zeros((2, 40, 40), bool),
               mask_probs=np.stack([a, b]))
    got = dict(ref, boxes=ref['boxes'][::-1], scores=ref['scores'][::-1],
               labels=ref['labels'][::-1],
               mask_probs=np.stack([b + np.float32(2e-4), a]),
               pasted_probs=[(np.zeros((40, 40)), np.s_[:, :])] * 2,
               mask_thr_binary=0.5)
    out = compare_mask_probs(ref, got, [(0, 1), (1, 0)])
    assert np.isclose(out['mask_prob_abs'], 2e-4, atol=1e-7)
    assert out['mask_prob_abs'] <= TOLERANCES['max_mask_prob_abs']
    # Without the probabilities on either side there is nothing to add.
    del ref['mask_probs']
    assert compare_mask_probs(ref, got, [(0, 1), (1, 0)]) == {}


def test_the_captured_probabilities_are_the_pasted_sigmoids():
    head = FCNMaskHead(num_convs=0, in_channels=2, conv_out_channels=2,
                       num_classes=3)
    model = torch.nn.Module()
    model.mask_head = head
    logits = torch.randn(2, 3, 28, 28, generator=torch.Generator()
                         .manual_seed(0))
    res = InstanceData(bboxes=torch.tensor([[0., 0., 8., 8.],
                                            [2., 2., 9., 9.]]),
                       scores=torch.tensor([.9, .8]),
                       labels=torch.tensor([2, 0]))
    meta = dict(img_shape=(10, 10), ori_shape=(10, 10),
                scale_factor=(1., 1.))
    with captured_mask_probs(model) as captured:
        head.predict_by_feat((logits, ), [res], [meta],
                             ConfigDict(mask_thr_binary=0.5), rescale=True)
    expected = torch.stack([logits[0, 2], logits[1, 0]]).sigmoid()
    assert np.allclose(captured[0]['probs'], expected.numpy(), atol=1e-7)
    assert list(captured[0]['labels']) == [2, 0]
    # The head is left as it was.
    assert 'predict_by_feat' not in vars(head)
