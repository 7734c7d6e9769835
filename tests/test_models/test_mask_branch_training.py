"""The mask branch of CenterMask/RetinaMask trains on the model's own
detections, decoded exactly as at test time (the official behaviour)."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch.nn.modules.batchnorm import _BatchNorm

import mmdet_plugins  # noqa: F401
from mmdet_plugins.models.detectors.mask_on_detections import roi_boxes
from experiments.store import project_path
from helpers import demo_inputs, tiny_config

CENTERMASK = 'configs/centermask/centermask_r18-tiny_fpn_builtin.py'
RETINAMASK = 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py'


def _build(config, **train_mask_cfg):
    register_all_modules()
    cfg = Config.fromfile(project_path(config))
    cfg.model.train_cfg.setdefault('mask', {}).update(train_mask_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('clip_boxes, f_box', [
    ('final', [16., 16., 40., 40.]),    # CM2: unclipped RoIs
    ('decode', [16., 16., 32., 32.])])  # CM1: clipped at decoding
def test_mask_branch_trains_on_cm_decoding_of_the_batch(clip_boxes, f_box,
                                                        monkeypatch):
    """The hand-set maps of ``test_fcos_decoding`` as the training forward's
    output (distances in stride units): the mask branch's detections are
    B, C, F (top 2 of level 0 by cls x ctr, F above the threshold on its
    class score) with CM2's sqrt scores, F unclipped in CM2's mode."""
    from mmdet.testing import demo_mm_inputs
    from test_fcos_decoding import LABELS, PRODUCTS, hand_built_maps
    model = _build(CENTERMASK, nms_pre=2)
    model.bbox_head.clip_boxes = clip_boxes
    strides = model.bbox_head.strides
    maps = hand_built_maps(sizes=(4, 2, 1, 1, 1), num_classes=3,
                           stride_units=strides)
    monkeypatch.setattr(model.bbox_head, 'forward', lambda x: maps)
    seen = {}
    mask_loss, assign = model.mask_loss, model.mask_assigner.assign

    def spy_loss(x, detections, *args):
        seen['detections'] = [d.clone() for d in detections]
        return mask_loss(x, detections, *args)

    def spy_assign(proposals, gt, *args, **kwargs):
        seen['priors'] = proposals.priors.clone()
        return assign(proposals, gt, *args, **kwargs)

    monkeypatch.setattr(model, 'mask_loss', spy_loss)
    monkeypatch.setattr(model.mask_assigner, 'assign', spy_assign)
    data = model.data_preprocessor(
        demo_mm_inputs(1, [[3, 32, 32]], num_classes=3, with_mask=True),
        True)
    model.train()
    for m in model.modules():  # one 32 x 32 image: 1 x 1 maps
        if isinstance(m, _BatchNorm):
            m.eval()
    model.loss(data['inputs'], data['data_samples'])
    det, = seen['detections']
    assert det.labels.tolist() == LABELS
    assert torch.allclose(det.scores, torch.tensor(PRODUCTS).sqrt(),
                          atol=1e-5)
    rois = [[8., 8., 16., 16.], [17., 17., 23., 23.], f_box]
    assert torch.allclose(seen['priors'][:3], torch.tensor(rois), atol=1e-4)
    gt = data['data_samples'][0].gt_instances.bboxes
    assert torch.equal(seen['priors'][3:], gt)


def test_loss_path_detections_equal_eval_decoding(monkeypatch):
    config = RETINAMASK
    # score_thr 0: an untrained head scores below the official 0.05.
    model = _build(config, score_thr=0.0)
    data = model.data_preprocessor(demo_inputs(), True)
    metas = [s.metainfo for s in data['data_samples']]
    seen = {}
    mask_loss = model.mask_loss

    def spy(x, detections, *args):
        seen['detections'] = [d.clone() for d in detections]
        return mask_loss(x, detections, *args)

    monkeypatch.setattr(model, 'mask_loss', spy)
    model.train()
    for m in model.modules():  # the same features in both passes
        if isinstance(m, _BatchNorm):
            m.eval()
    model.loss(data['inputs'], data['data_samples'])

    model.eval()
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        expected = model.bbox_head.predict_by_feat(
            *model.bbox_head(x), batch_img_metas=metas,
            cfg=model.mask_train_cfg, rescale=False)
    for got, want in zip(seen['detections'], expected):
        assert len(got) == len(want) == model.mask_train_cfg.max_per_img
        assert torch.allclose(got.bboxes, want.bboxes, atol=1e-4)
        assert torch.allclose(got.scores, want.scores, atol=1e-6)
        assert torch.equal(got.labels, want.labels)


def test_fcos_head_without_training_rescale_is_refused():
    """mmdet's FCOSHead would feed the mask branch stride-unit boxes."""
    register_all_modules()
    cfg = Config.fromfile(project_path(CENTERMASK))
    cfg.model.bbox_head.type = 'FCOSHead'
    cfg.model.bbox_head.pop('score_mode')
    cfg.model.bbox_head.pop('clip_boxes')
    with pytest.raises(TypeError, match='CenterMaskFCOSHead'):
        MODELS.build(cfg.model)


def _one_image_gt(box, size=64):
    gt = InstanceData()
    gt.bboxes = torch.tensor([box], dtype=torch.float32)
    gt.labels = torch.tensor([1])
    mask = torch.zeros(1, size, size, dtype=torch.uint8)
    x1, y1, x2, y2 = [int(v) for v in box]
    mask[0, y1:y2, x1:x2] = 1
    gt.masks = BitmapMasks(mask.numpy(), size, size)
    return gt


def test_positives_are_counted_by_origin_and_capped():
    model = _build(CENTERMASK)
    gt = _one_image_gt((10., 10., 40., 40.))
    det = InstanceData(bboxes=torch.tensor([[11., 10., 40., 41.],    # IoU .94
                                            [10., 10., 25., 25.],    # .25
                                            [12., 12., 40., 40.]]),  # .87
                       scores=torch.ones(3), labels=torch.ones(3).long())
    results, from_dets = model._sample_mask_rois([det], [gt])
    assert from_dets == 2 and len(results[0].pos_inds) == 3  # + the GT box
    model.mask_train_cfg.max_pos_per_img = 2
    results, _ = model._sample_mask_rois([det], [gt])
    assert len(results[0].pos_inds) == 2


def test_maskiou_target_binarises_logits_at_zero(monkeypatch):
    """Official CM1/CM2: the MaskIoU target's predicted mask is
    ``logit > 0`` (p > 0.5). Checked through the detector's ``mask_loss``:
    mmdet's ``MaskIoUHead`` compares ``mask_thr_binary`` with whatever it
    is given, so 0.5 on logits (p > 0.62) or probabilities at 0 would
    change the target."""
    model = _build(CENTERMASK).train()
    gt = _one_image_gt((8., 8., 36., 36.))  # the mask fills the box
    no_dets = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                           labels=torch.zeros(0).long())
    # The only RoI is the GT box: its 28 x 28 mask target is all ones and
    # its area ratio 1, so the target is (pixels predicted) / 784.
    # Hand-built logits for the GT class (label 1), by rows:
    #   rows 0-13 (392 px): 2.0 (p 0.88);  rows 14-20 (196 px): 0.25
    #   (p 0.56);  rows 21-27 (196 px): -1.0 (p 0.27).
    class_logits = torch.full((28, 28), 2.0)
    class_logits[14:21] = 0.25
    class_logits[21:] = -1.0
    logits = torch.full((1, 3, 28, 28), -5.0)
    logits[0, 1] = class_logits
    monkeypatch.setattr(model.mask_head, 'forward', lambda feats: logits)
    # A MaskIoU prediction of 0: loss_mask_iou = 0.5 (loss weight) x t^2.
    monkeypatch.setattr(model.maskiou_head, 'forward',
                        lambda feats, masks: torch.zeros(len(masks), 3))
    x = model.extract_feat(torch.zeros(1, 3, 64, 64))
    losses = model.mask_loss(x, [no_dets], [gt], [(64, 64)])
    assert losses['mask_pos_from_gt'].item() == 1
    # logit > 0: 392 + 196 = 588 px, t = 588 / 784 = 0.75, loss 0.28125.
    # (logit > 0.5: 392 px, t 0.5, loss 0.125; sigmoid > 0: 784 px, t 1,
    # loss 0.5.)
    assert losses['loss_mask_iou'].item() == pytest.approx(0.28125,
                                                           rel=1e-5)
    with pytest.raises(ValueError, match='maskiou_target_thr'):
        _build(CENTERMASK, mask_thr_binary=0.5)


@pytest.mark.slow
def test_briefly_trained_mask_branch_sees_its_own_detections(
        tiny_builtin, tmp_path):
    """After a short training run the mask branch's positives include
    FCOS detections, logged as ``mask_pos_from_dets`` (on the broken
    decoding they were GT boxes only); and the detections it trains on are
    the eval decoding (``predict`` with the training thresholds) of the
    same weights on the same batch, RoIs (unclipped, CM2) included."""
    from mmengine.runner import Runner
    register_all_modules()
    cfg = tiny_config(tiny_builtin, str(tmp_path), max_iters=60,
                      config=CENTERMASK)
    cfg.default_hooks.checkpoint.interval = 1000
    runner = Runner.from_cfg(cfg)
    runner.train()
    # What LoggerHook and the visualiser write out, iteration by iteration.
    scalars = runner.message_hub.log_scalars
    from_dets, _ = scalars['train/mask_pos_from_dets'].data
    from_gt, _ = scalars['train/mask_pos_from_gt'].data
    frac, _ = scalars['train/mask_pos_dets_frac'].data
    assert len(from_dets) == len(from_gt) == len(frac) == 60
    assert from_dets[-10:].sum() > 0
    assert (from_gt[-10:] > 0).all()
    assert ((frac >= 0) & (frac <= 1)).all()

    model = runner.model
    from mmengine.dataset import pseudo_collate
    dataset = runner.train_dataloader.dataset
    data = model.data_preprocessor(
        pseudo_collate([dataset[0], dataset[1]]), True)
    seen = {}
    mask_loss, mask_features = model.mask_loss, model._mask_features

    def spy_loss(x, detections, *args):
        seen['train'] = [d.clone() for d in detections]
        return mask_loss(x, detections, *args)

    def spy_features(x, rois, img_shapes):
        seen['eval_rois'] = rois.clone()
        return mask_features(x, rois, img_shapes)

    model.mask_loss = spy_loss
    model._mask_features = spy_features
    model.train()
    for m in model.modules():  # the same features in both passes
        if isinstance(m, _BatchNorm):
            m.eval()
    with torch.no_grad():
        model.loss(data['inputs'], data['data_samples'])
        model.eval()
        model.bbox_head.test_cfg = model.mask_train_cfg
        model.mask_test_cfg.max_per_img = model.mask_train_cfg.max_per_img
        preds = model.predict(data['inputs'], data['data_samples'],
                              rescale=False)
    assert sum(len(d) for d in seen['train']) > 0
    rois = seen['eval_rois']
    for i, (det, pred) in enumerate(zip(seen['train'], preds)):
        pred = pred.pred_instances
        assert torch.equal(det.labels, pred.labels)
        assert torch.allclose(det.scores, pred.scores, atol=1e-5)
        assert torch.allclose(det.bboxes, pred.bboxes, atol=1e-3)
        assert torch.allclose(roi_boxes(det), rois[rois[:, 0] == i, 1:],
                              atol=1e-3)
