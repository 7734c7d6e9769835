"""CenterMask's FCOS decoding as CM1 / CM2 do it, on hand-set maps.

Two levels (strides 8 and 16) of a 32 x 32 image, 2 classes; every class
logit is -10 (p ~ 5e-5) except these (location = (i + 0.5) x stride):

====  =====  ========  =====  ====  ======  ===================  =========
name  level  location  class  cls   ctr     box (l, t, r, b)     cls x ctr
====  =====  ========  =====  ====  ======  ===================  =========
A     0      (4, 4)    0      0.9   0.1     (2, 2, 6, 6)         0.09
B     0      (12, 12)  1      0.6   0.9     (8, 8, 16, 16)       0.54
C     0      (20, 20)  0      0.5   0.8     (17, 17, 23, 23)     0.40
D     0      (28, 28)  1      0.04  ~1      -                    (cls<thr)
F     1      (24, 24)  0      0.2   0.1     (16, 16, 40, 40)     0.02
G     1      (8, 8)    1      0.03  0.5     -                    (cls<thr)
====  =====  ========  =====  ====  ======  ===================  =========

With ``score_thr`` 0.05 and ``nms_pre`` 2: level 0's candidates are A, B,
C (D is under the threshold); by cls x ctr the top 2 are B, C (by the class
score alone, mmdet's way, A and B). F stays: the threshold is on the class
score (CM1/CM2 ``THRESH_WITH_CTR`` False), not on its 0.02 product. F leaves
the 32 x 32 image: (16, 16, 32, 32) once clipped.
"""
import math

import pytest
import torch
from mmengine.config import ConfigDict

import mmdet_plugins  # noqa: F401
from mmdet_plugins.models.dense_heads import CenterMaskFCOSHead

IMG = dict(img_shape=(32, 32), scale_factor=(1.0, 1.0))
# (level, row, col, class, cls, ctr, (l, t, r, b))
CASE = [(0, 0, 0, 0, 0.9, 0.1, (2, 2, 2, 2)),            # A
        (0, 1, 1, 1, 0.6, 0.9, (4, 4, 4, 4)),            # B
        (0, 2, 2, 0, 0.5, 0.8, (3, 3, 3, 3)),            # C
        (0, 3, 3, 1, 0.04, 1 - 1e-6, (1, 1, 1, 1)),      # D
        (1, 1, 1, 0, 0.2, 0.1, (8, 8, 16, 16)),          # F
        (1, 0, 0, 1, 0.03, 0.5, (1, 1, 1, 1))]           # G
CFG = ConfigDict(nms_pre=2, score_thr=0.05, min_bbox_size=-1,
                 nms=dict(type='nms', iou_threshold=0.6), max_per_img=100)
# B, C, F by score; F unclipped in the RoIs of 'final' mode.
BOXES = [[8., 8., 16., 16.], [17., 17., 23., 23.], [16., 16., 32., 32.]]
F_UNCLIPPED = [16., 16., 40., 40.]
LABELS = [1, 0, 0]
PRODUCTS = [0.54, 0.40, 0.02]


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def hand_built_maps(sizes=(4, 2), num_classes=2, stride_units=None):
    """(cls_scores, bbox_preds, centernesses) of ``CASE``, batch 1.

    Args:
        sizes: Side of each level's square map (levels past 2 are empty).
        num_classes: Class channels.
        stride_units: Per level stride to divide the distances by (the
            training-mode output of a ``norm_on_bbox`` head), or None.
    """
    cls = [torch.full((1, num_classes, s, s), -10.) for s in sizes]
    reg = [torch.ones(1, 4, s, s) for s in sizes]
    ctr = [torch.zeros(1, 1, s, s) for s in sizes]
    for level, row, col, label, p, c, box in CASE:
        cls[level][0, label, row, col] = _logit(p)
        ctr[level][0, 0, row, col] = _logit(c)
        reg[level][0, :, row, col] = torch.tensor(box, dtype=torch.float)
    if stride_units is not None:
        reg = [r / s for r, s in zip(reg, stride_units)]
    return cls, reg, ctr


def _head(**kwargs) -> CenterMaskFCOSHead:
    head = CenterMaskFCOSHead(num_classes=2, in_channels=8, feat_channels=8,
                              stacked_convs=0, strides=[8, 16],
                              norm_on_bbox=True, centerness_on_reg=True,
                              **kwargs)
    return head.eval()


def _decode(head, cfg=CFG, rescale=False):
    cls, reg, ctr = hand_built_maps()
    return head.predict_by_feat(cls, reg, ctr, batch_img_metas=[IMG],
                                cfg=cfg, rescale=rescale)[0]


def test_cm2_decoding_by_hand():
    """centermask2 fcos_outputs.py: top-k by cls x ctr, sqrt score, boxes
    clipped only at the end (the RoIs keep F unclipped)."""
    out = _decode(_head(score_mode='sqrt', clip_boxes='final'))
    assert out.labels.tolist() == LABELS
    assert torch.allclose(out.scores, torch.tensor(PRODUCTS).sqrt(),
                          atol=1e-5)
    assert torch.allclose(out.bboxes, torch.tensor(BOXES), atol=1e-4)
    assert torch.allclose(out.roi_bboxes,
                          torch.tensor(BOXES[:2] + [F_UNCLIPPED]), atol=1e-4)


def test_cm1_decoding_by_hand():
    """CM1 fcos/inference.py: the same candidates, score cls x ctr, boxes
    clipped at decoding (the RoIs too)."""
    out = _decode(_head(score_mode='product', clip_boxes='decode'))
    assert out.labels.tolist() == LABELS
    assert torch.allclose(out.scores, torch.tensor(PRODUCTS), atol=1e-5)
    assert torch.allclose(out.bboxes, torch.tensor(BOXES), atol=1e-4)
    assert torch.allclose(out.roi_bboxes, torch.tensor(BOXES), atol=1e-4)


def test_post_nms_top_k_and_rescale():
    head = _head()
    out = _decode(head, ConfigDict({**CFG, 'max_per_img': 2}))
    assert out.labels.tolist() == LABELS[:2]
    # Rescaled: the clipped boxes in the original image, no RoI boxes.
    out = head.predict_by_feat(
        *hand_built_maps(), batch_img_metas=[dict(IMG, scale_factor=(
            2.0, 2.0))], cfg=CFG, rescale=True)[0]
    assert torch.allclose(out.bboxes, torch.tensor(BOXES) / 2, atol=1e-4)
    assert 'roi_bboxes' not in out


def test_final_clipping_drops_boxes_left_empty():
    """detectron2 ``detector_postprocess`` keeps ``nonempty()`` boxes."""
    meta = dict(img_shape=(32, 10), scale_factor=(1.0, 1.0))
    cls, reg, ctr = hand_built_maps()
    out = _head().predict_by_feat(cls, reg, ctr, batch_img_metas=[meta],
                                  cfg=CFG)[0]
    # C and F start right of x = 10; B is cut to (8, 8, 10, 16).
    assert out.labels.tolist() == [1]
    assert torch.allclose(out.bboxes, torch.tensor([[8., 8., 10., 16.]]))
    assert torch.allclose(out.roi_bboxes, torch.tensor([BOXES[0]]))


def cm2_decode(locations, cls, reg, ctr, image_size, thr, pre_nms_topk,
               nms_thr, post_nms_topk):
    """centermask2 @6adabd6 ``centermask/modeling/fcos/fcos_outputs.py``
    ``FCOSOutputs.forward_for_single_feature_map`` (THRESH_WITH_CTR False)
    + ``select_over_all_levels`` (ml_nms, kthvalue top-k), one image;
    ``cls``/``ctr`` per level (HW, C) / (HW,) logits, ``reg`` (HW, 4)
    pixels. Boxes are not clipped (``detector_postprocess`` does it).
    detectron2's ``batched_nms`` (torchvision's) is mmcv's here: the same
    class-offset NMS."""
    from mmcv.ops import batched_nms
    boxes, scores, classes = [], [], []
    for loc, c, r, t in zip(locations, cls, reg, ctr):
        c = c.sigmoid()
        candidate = c > thr
        top_n = int(candidate.sum().clamp(max=pre_nms_topk))
        c = (c * t.sigmoid()[:, None])[candidate]
        nz = candidate.nonzero()
        box_loc, cls_i = nz[:, 0], nz[:, 1]
        if candidate.sum() > top_n:
            c, k = c.topk(top_n, sorted=False)
            box_loc, cls_i = box_loc[k], cls_i[k]
        lo, rg = loc[box_loc], r[box_loc]
        boxes.append(torch.stack([lo[:, 0] - rg[:, 0], lo[:, 1] - rg[:, 1],
                                  lo[:, 0] + rg[:, 2], lo[:, 1] + rg[:, 3]],
                                 dim=1))
        scores.append(c.sqrt())
        classes.append(cls_i)
    boxes, scores, classes = (torch.cat(x) for x in (boxes, scores, classes))
    _, keep = batched_nms(boxes, scores, classes,
                          dict(type='nms', iou_threshold=nms_thr))
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    if len(scores) > post_nms_topk > 0:
        th, _ = torch.kthvalue(scores, len(scores) - post_nms_topk + 1)
        keep = scores >= th
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    return boxes, scores, classes


@pytest.mark.parametrize('seed', [0, 1])
def test_random_maps_match_cm2_transcription(seed):
    """Many overlapping candidates: NMS, pre- and post-NMS top-k."""
    torch.manual_seed(seed)
    head = _head()
    sizes = (8, 4)
    cls = [torch.randn(1, 2, s, s) - 1 for s in sizes]
    reg = [torch.rand(1, 4, s, s) * 24 for s in sizes]
    ctr = [torch.randn(1, 1, s, s) for s in sizes]
    meta = dict(img_shape=(64, 64), scale_factor=(1.0, 1.0))
    cfg = ConfigDict(nms_pre=20, score_thr=0.2, min_bbox_size=-1,
                     nms=dict(type='nms', iou_threshold=0.6), max_per_img=15)
    out = head.predict_by_feat(cls, reg, ctr, batch_img_metas=[meta],
                               cfg=cfg)[0]
    locations = head.prior_generator.grid_priors([(s, s) for s in sizes],
                                                 device='cpu')
    flat = [(c[0].permute(1, 2, 0).reshape(-1, 2),
             r[0].permute(1, 2, 0).reshape(-1, 4), t[0].reshape(-1))
            for c, r, t in zip(cls, reg, ctr)]
    boxes, scores, classes = cm2_decode(
        locations, *zip(*flat), (64, 64), 0.2, 20, 0.6, 15)
    order = scores.argsort(descending=True)
    assert len(out) == 15
    assert torch.allclose(out.scores, scores[order], atol=1e-6)
    assert torch.equal(out.labels, classes[order])
    assert torch.allclose(out.roi_bboxes, boxes[order], atol=1e-4)
    assert torch.allclose(out.bboxes, boxes[order].clamp(0, 64), atol=1e-4)


@pytest.mark.parametrize('config, mode, score_mode, thr', [
    ('centermask_r50_fpn_1x_coco.py', 'decode', 'product', 0.03),
    ('centermask_v2-39_fpn_1x_coco.py', 'final', 'sqrt', 0.05),
    ('centermask_v2-39-timm_fpn_1x_coco.py', 'final', 'sqrt', 0.05),
    ('centermask_v2-99_fpn_ms-3x_coco.py', 'final', 'sqrt', 0.05),
    ('centermask-lite_v-39_fpn_ms-4x_coco.py', 'final', 'sqrt', 0.05),
    ('centermask-lite_mv2_fpn_ms-4x_coco.py', 'final', 'sqrt', 0.05),
    ('centermask_r18-tiny_fpn_builtin.py', 'final', 'sqrt', 0.05),
])
def test_configs_decode_as_the_version_they_claim(config, mode, score_mode,
                                                  thr):
    """R-50 1x claims CM1 (INFERENCE_TH 0.03, centermask_R_50_FPN_1x.yaml;
    score cls x ctr; clip_to_image at decoding); the V2 / Lite configs CM2
    (INFERENCE_TH_TRAIN / _TEST 0.05, sqrt, clipped at the end)."""
    from mmengine.config import Config

    from experiments.store import project_path
    cfg = Config.fromfile(project_path(f'configs/centermask/{config}'))
    model = cfg.model
    assert model.bbox_head.clip_boxes == mode
    assert model.bbox_head.score_mode == score_mode
    assert model.test_cfg.score_thr == model.train_cfg.mask.score_thr == thr
    assert model.test_cfg.nms_pre == model.train_cfg.mask.nms_pre == 1000
    assert model.test_cfg.nms.iou_threshold == 0.6
    assert model.train_cfg.mask.nms.iou_threshold == 0.6
    assert model.train_cfg.mask.max_per_img == 100
    assert model.test_cfg.max_per_img == 50
