import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_plugins  # noqa: F401
from experiments.store import project_path
from helpers import demo_inputs
from mmdet_plugins.models.mask_heads import SAGMaskHead

TINY = 'configs/centermask/centermask_r18-tiny_fpn_builtin.py'
TINY_VOVNET = \
    'configs/centermask/centermask-lite_v-19-slim-dw-tiny_fpn_builtin.py'


def _build(config=TINY, model_overrides=None, **test_cfg):
    register_all_modules()
    cfg = Config.fromfile(project_path(config))
    cfg.model.test_cfg.update(test_cfg)
    if model_overrides:
        cfg.merge_from_dict({f'model.{k}': v
                             for k, v in model_overrides.items()})
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model




def _predict(model):
    model.eval()
    data = model.data_preprocessor(demo_inputs(), False)
    with torch.no_grad():
        return model(**data, mode='predict')


@pytest.mark.parametrize('config', [TINY, TINY_VOVNET])
def test_loss_forward_backward(config):
    model = _build(config).train()
    data = model.data_preprocessor(demo_inputs(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_centerness',
                           'loss_mask', 'loss_mask_iou', 'mask_pos_from_dets',
                           'mask_pos_from_gt', 'mask_pos_dets_frac'}
    assert all(torch.isfinite(v) for v in losses.values())
    losses['loss_mask'].backward()
    first_conv = next(p for n, p in model.backbone.named_parameters()
                      if p.dim() == 4)
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


def test_predict_top_50_masks_and_mask_scores_only_for_segm():
    # Clipped at decoding (CM1): CM2's final clipping would drop the
    # untrained boxes that lie in the second image's padding.
    model = _build(score_thr=0.0,
                   model_overrides={'bbox_head.clip_boxes': 'decode'})
    results = _predict(model)
    for sample in results:
        pred = sample.pred_instances
        assert len(pred) == 50  # top 50 of the 100 FCOS detections
        assert pred.masks.shape == (50, *sample.ori_shape)
        assert pred.bboxes.shape == (50, 4) and pred.labels.shape == (50, )
        assert pred.mask_scores.shape == (50, )
    # Without the MaskIoU head: identical boxes and box scores.
    del model.maskiou_head
    plain = _predict(model)
    for a, b in zip(results, plain):
        assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)
        assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
        assert 'mask_scores' not in b.pred_instances
        assert not torch.allclose(a.pred_instances.mask_scores,
                                  a.pred_instances.scores)


def test_mask_scores_are_box_score_times_predicted_iou():
    model = _build(score_thr=0.0, mask=dict(max_per_img=5,
                                            mask_thr_binary=0.5))
    model.eval()
    data = model.data_preprocessor(demo_inputs(), False)
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        dets = model.bbox_head.predict(x, data['data_samples'],
                                       rescale=False)
        metas = [s.metainfo for s in data['data_samples']]
        out = model.predict_masks(x, metas, [d.clone() for d in dets],
                                  rescale=False)
        top = dets[0][dets[0].scores.argsort(descending=True)[:5]]
        rois = torch.cat([top.bboxes.new_zeros(5, 1), top.bboxes], 1)
        feats = model._mask_features(x, rois, [m['img_shape'] for m in metas])
        masks = model.mask_head(feats)[torch.arange(5), top.labels]
        iou = model.maskiou_head(feats, masks)[torch.arange(5), top.labels]
    assert torch.allclose(out[0].mask_scores, top.scores * iou, atol=1e-6)


def test_fcos_baseline_has_no_mask_branch():
    model = _build(model_overrides=dict(mask_roi_extractor=None,
                                        mask_head=None, maskiou_head=None),
                   score_thr=0.0)
    pred = _predict(model)[0].pred_instances
    assert len(pred) == 50 and 'masks' not in pred


@pytest.mark.parametrize('grid', [
    pytest.param('experiments/grids/centermask_table1.yaml',
                 marks=pytest.mark.slow),
    'experiments/grids/centermask_tiny.yaml'])
def test_every_table1_arm_keeps_50_detections_per_image(grid):
    """CM1 TEST.DETECTIONS_PER_IMG / CM2 POST_NMS_TOPK_TEST: 50 for every
    arm, the FCOS baseline included (W11 compares their box AP)."""
    from experiments.grid.spec import load_grid
    from experiments.grid.run_config import apply_overrides
    table1 = ('fcos', 'mask_eq1', 'mask_eq2', 'sam', 'maskiou')
    caps = {}
    for run in load_grid(project_path(grid)).expand():
        if run.arm not in table1 or run.seed != 0:
            continue
        cfg = Config.fromfile(project_path(run.config))
        apply_overrides(cfg, run.overrides, run.label)
        box_cap = cfg.model.test_cfg.max_per_img
        if cfg.model.get('mask_head'):
            box_cap = min(box_cap, cfg.model.test_cfg.mask.max_per_img)
        caps[run.arm] = box_cap
    assert set(caps) == set(table1) and set(caps.values()) == {50}, caps


def test_lite_maskiou_head_has_two_convs():
    register_all_modules()
    cfg = Config.fromfile(project_path(
        'configs/centermask/centermask-lite_v-39_fpn_ms-4x_coco.py'))
    head = MODELS.build(cfg.model.maskiou_head)
    assert len(head.convs) == 2
    assert [c.stride for c in head.convs] == [(1, 1), (2, 2)]
    assert head.convs[0].in_channels == 128 + 1


def test_sqrt_and_product_scores():
    sqrt = _predict(_build(score_thr=0.0))[0].pred_instances
    model = _build(score_thr=0.0)
    model.bbox_head.score_mode = 'product'
    product = _predict(model)[0].pred_instances
    # Same detections, scores related by a square root.
    order_s = sqrt.scores.argsort(descending=True)
    order_p = product.scores.argsort(descending=True)
    assert torch.allclose(sqrt.scores[order_s] ** 2,
                          product.scores[order_p], atol=1e-6)


def test_sag_mask_head_sam_switch_and_lite_width():
    kwargs = dict(num_convs=2, in_channels=8, conv_out_channels=8,
                  num_classes=3)
    with_sam, without = SAGMaskHead(use_sam=True, **kwargs), SAGMaskHead(
        use_sam=False, **kwargs)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(with_sam) - n(without) == 2 * 3 * 3
    without.load_state_dict(with_sam.state_dict(), strict=False)
    x = torch.randn(4, 8, 14, 14)
    a, b = with_sam(x), without(x)
    assert a.shape == b.shape == (4, 3, 28, 28)
    assert not torch.allclose(a, b)
    lite = SAGMaskHead(num_convs=2, in_channels=128, conv_out_channels=128,
                       num_classes=80)
    assert len(lite.convs) == 2 and lite.convs[0].conv.out_channels == 128


@pytest.mark.slow
def test_short_cpu_training_lowers_the_loss(tiny_builtin):
    from helpers import overfit_totals
    totals = overfit_totals(TINY, tiny_builtin)
    assert sum(totals[-3:]) / 3 < 0.8 * sum(totals[:3]) / 3
