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
from experiments.grid_spec import project_path
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


@pytest.mark.parametrize('config', [CENTERMASK, RETINAMASK])
def test_loss_path_detections_equal_eval_decoding(config, monkeypatch):
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


def test_maskiou_target_binarises_logits_at_zero():
    """Official CM1/CM2: the predicted mask is ``logit > 0``; mmdet's
    ``MaskIoUHead`` compares ``mask_thr_binary`` with logits, so 0.5 there
    would binarise at p > 0.62."""
    model = _build(CENTERMASK)
    gt = _one_image_gt((8., 8., 36., 36.))
    proposals = InstanceData(priors=gt.bboxes.clone())
    assign = model.mask_assigner.assign(proposals, gt)
    result = model.mask_sampler.sample(assign, proposals, gt)
    targets = torch.ones(1, 28, 28)
    # p = 0.56 everywhere inside the box: part of the official mask.
    logits = torch.full((1, 28, 28), 0.25)
    iou = model.maskiou_head.get_targets(
        [result], [gt], logits, targets, model.maskiou_target_cfg)
    assert torch.allclose(iou, torch.ones(1), atol=1e-4)
    iou = model.maskiou_head.get_targets(
        [result], [gt], -logits, targets, model.maskiou_target_cfg)
    assert torch.allclose(iou, torch.zeros(1))
    with pytest.raises(ValueError, match='maskiou_target_thr'):
        _build(CENTERMASK, mask_thr_binary=0.5)


@pytest.mark.slow
def test_briefly_trained_mask_branch_sees_its_own_detections(
        tiny_builtin, tmp_path):
    """After a short training run the mask branch's positives include
    FCOS detections, logged as ``mask_pos_from_dets`` (on the broken
    decoding they were GT boxes only)."""
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
