import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_plugins  # noqa: F401
from experiments.store import project_path
from helpers import demo_inputs

TINY = 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py'
TINY_RETINANET = \
    'configs/retinamask/retinanet_r18-tiny_fpn_builtin_retinamask-recipe.py'


def _build(config=TINY, **test_cfg):
    register_all_modules()
    cfg = Config.fromfile(project_path(config))
    cfg.model.test_cfg.update(test_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model




def test_loss_forward_backward_and_mask_gradients_reach_backbone():
    model = _build().train()
    data = model.data_preprocessor(demo_inputs(), True)
    losses = model(**data, mode='loss')
    assert {'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    assert {f'sasl1_beta_{c}' for c in ('dx', 'dy', 'dw', 'dh')} <= set(
        losses)
    assert all(torch.isfinite(v).all() for v in losses.values())
    # The mask loss alone back-propagates into the FPN and the backbone.
    losses['loss_mask'].backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    # P6/P7 feed only the box head: no mask gradient there.
    assert model.neck.fpn_convs[4].conv.weight.grad is None or \
        model.neck.fpn_convs[4].conv.weight.grad.abs().sum() == 0


@pytest.mark.parametrize('top_n', [100, 7])
def test_predict_returns_boxes_labels_scores_masks(top_n):
    model = _build(score_thr=0.0, mask=dict(max_per_img=top_n,
                                            mask_thr_binary=0.5)).eval()
    data = model.data_preprocessor(demo_inputs(), False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    for sample in results:
        pred = sample.pred_instances
        n = len(pred)
        assert n == min(top_n, 100)
        assert pred.bboxes.shape == (n, 4) and pred.labels.shape == (n, )
        assert pred.scores.shape == (n, )
        assert pred.masks.shape == (n, *sample.ori_shape)
        assert pred.masks.dtype == torch.bool
        # Boxes are rescaled to the original image (scale factor 0.5).
        assert pred.bboxes[:, 2].max() <= sample.ori_shape[1]
        assert pred.bboxes[:, 2].max() > sample.img_shape[1]
        assert torch.all(pred.scores[:-1] >= pred.scores[1:])


def test_predict_with_no_detections_returns_empty_masks():
    model = _build(score_thr=1.1).eval()
    data = model.data_preprocessor(demo_inputs(), False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert all(len(s.pred_instances) == 0 for s in results)
    assert results[0].pred_instances.masks.shape[1:] == \
        results[0].ori_shape


def test_retinanet_baseline_has_no_mask_branch():
    model = _build(TINY_RETINANET, score_thr=0.0).train()
    assert not model.with_mask
    data = model.data_preprocessor(demo_inputs(), True)
    assert 'loss_mask' not in model(**data, mode='loss')
    model.eval()
    data = model.data_preprocessor(demo_inputs(), False)
    with torch.no_grad():
        pred = model(**data, mode='predict')[0].pred_instances
    assert len(pred) == 100 and 'masks' not in pred


def test_all_level_loss_equals_mmdet_per_level_loss():
    """With a fixed loss and mmdet's normaliser the head is RetinaHead."""
    register_all_modules()
    cfg = Config.fromfile(project_path(TINY)).model
    head_cfg = copy.deepcopy(cfg.bbox_head)
    head_cfg.loss_normalizer = 'mmdet'
    head_cfg.loss_bbox = dict(type='SmoothL1Loss', beta=0.11)
    head_cfg.train_cfg = copy.deepcopy(cfg.train_cfg)
    head_cfg.train_cfg.pop('mask')
    ours = MODELS.build(head_cfg)
    theirs_cfg = copy.deepcopy(head_cfg)
    theirs_cfg.type = 'RetinaHead'
    theirs_cfg.pop('loss_normalizer')
    theirs = MODELS.build(theirs_cfg)
    theirs.load_state_dict(ours.state_dict())
    torch.manual_seed(1)
    feats = [torch.randn(2, 64, 128 // s, 128 // s) for s in (8, 16, 32, 64,
                                                              128)]
    samples = demo_inputs()['data_samples']
    for sample in samples:
        sample.set_metainfo(dict(img_shape=(128, 128), pad_shape=(128, 128)))
    a = ours.loss(feats, samples)
    b = theirs.loss(feats, samples)
    assert torch.allclose(a['loss_cls'], sum(b['loss_cls']), rtol=1e-5)
    assert torch.allclose(a['loss_bbox'], sum(b['loss_bbox']), rtol=1e-5)


def _one_anchor_head(normalizer):
    """RetinaMaskHead with one 16 x 16 anchor per cell of a stride-16 map:
    a 32 x 32 image has 4 anchors, row by row [0, 0, 16, 16],
    [16, 0, 32, 16], [0, 16, 16, 32], [16, 16, 32, 32]."""
    register_all_modules()
    cfg = Config.fromfile(project_path(TINY)).model
    head_cfg = copy.deepcopy(cfg.bbox_head)
    head_cfg.num_classes = 2
    head_cfg.loss_normalizer = normalizer
    head_cfg.anchor_generator = dict(
        type='AnchorGenerator', octave_base_scale=1, scales_per_octave=1,
        ratios=[1.0], strides=[16], center_offset=0.5)
    head_cfg.loss_bbox = dict(type='SmoothL1Loss', beta=0.11)
    head_cfg.train_cfg = copy.deepcopy(cfg.train_cfg)
    head_cfg.train_cfg.pop('mask')
    return MODELS.build(head_cfg)


@pytest.mark.parametrize('normalizer', ['retinamask', 'mmdet'])
def test_loss_normalisers_by_hand(normalizer):
    """RM ``maskrcnn_benchmark/modeling/rpn/retinanet_loss.py`` @5bcf2e7
    (lines 150-159): box loss (summed) / (num_pos * 4), focal loss (summed)
    / (num_pos + N images)."""
    from mmengine.structures import InstanceData
    head = _one_anchor_head(normalizer)
    # Image 1: GT [2, 0, 18, 16] matches anchor 0 (IoU 224 / 288 = 0.78);
    # target dx = (10 - 8) / 16 / 0.1 = 1.25, dy = dw = dh = 0.
    # Image 2: GTs equal to anchors 1 and 3 (IoU 1, targets 0).
    # Everything else has IoU < 0.4: negative. 3 positives, N = 2.
    gts = [InstanceData(bboxes=torch.tensor([[2., 0., 18., 16.]]),
                        labels=torch.tensor([0])),
           InstanceData(bboxes=torch.tensor([[16., 0., 32., 16.],
                                             [16., 16., 32., 32.]]),
                        labels=torch.tensor([1, 0]))]
    metas = [dict(img_shape=(32, 32), pad_shape=(32, 32))] * 2
    # Logits 0 (p = 0.5) and zero deltas everywhere.
    losses = head.loss_by_feat([torch.zeros(2, 2, 2, 2)],
                               [torch.zeros(2, 4, 2, 2)], gts, metas)
    # Focal loss (alpha 0.25, gamma 2) at p = 0.5 per (anchor, class):
    # positive 0.25 x 0.5^2 x ln 2 = 0.0433217, negative 0.75 x 0.5^2 x
    # ln 2 = 0.1299651. 8 anchors x 2 classes: 3 positive, 13 negative:
    # sum = 3 x 0.0433217 + 13 x 0.1299651 = 1.8195114.
    # Smooth L1 (beta 0.11) of dx 1.25: 1.25 - 0.055 = 1.195, the sum.
    if normalizer == 'retinamask':
        want_cls = 1.8195114 / (3 + 2)
        want_box = 1.195 / (4 * 3)
    else:  # mmdet: both over the positives
        want_cls, want_box = 1.8195114 / 3, 1.195 / 3
    assert losses['loss_cls'].item() == pytest.approx(want_cls, rel=1e-5)
    assert losses['loss_bbox'].item() == pytest.approx(want_box, rel=1e-5)


@pytest.mark.slow
def test_short_cpu_training_lowers_the_loss(tiny_builtin):
    """Thirty SGD steps on one real batch of the built-in dataset."""
    from helpers import overfit_totals
    totals = overfit_totals(TINY, tiny_builtin)
    assert sum(totals[-3:]) / 3 < 0.8 * sum(totals[:3]) / 3
