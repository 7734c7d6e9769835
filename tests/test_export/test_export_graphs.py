"""The export graphs reproduce each model's ``predict``, eager and in ONNX."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS

from experiments.store import project_path
from helpers import tiny_config
from mmdet_plugins.export.exporter import build_test_loader, export_onnx
from mmdet_plugins.export.graphs import (UnsupportedModelError,
                                         build_export_graph)
from mmdet_plugins.export.onnx_inference import (OnnxDetector,
                                                 normalize_and_pad,
                                                 postprocess)
from mmdet_plugins.export.parity import (TOLERANCES, compare_detections,
                                         compare_on_split, run_both,
                                         within_tolerance)

CONFIGS = {
    'centermask': 'configs/centermask/centermask_r18-tiny_fpn_builtin.py',
    'centermask_lite':
        'configs/centermask/centermask-lite_v-19-slim-dw-tiny_fpn_builtin.py',
    'retinamask': 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py',
    'mask_rcnn': 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py',
}
RETINANET = ('configs/retinamask/'
             'retinanet_r18-tiny_fpn_builtin_retinamask-recipe.py')


# The last layers that score boxes. At their initialisation (std 0.01 and
# the prior bias) scores are equal to the last bit over many anchors, and
# which of two tied boxes a sort keeps first is arbitrary.
SCORE_LAYERS = ('retina_cls', 'conv_cls', 'conv_centerness', 'rpn_cls',
                'fc_cls', 'fc_mask_iou')


def untrained(name_or_config: str, root: str, work_dir: str):
    """A randomly initialised tiny model that still detects: its score
    threshold is 0, so every image yields the full max_per_img, and its
    scoring layers are spread so that no two detections tie."""
    import mmdet_plugins  # noqa: F401
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = tiny_config(root, work_dir, 2,
                      CONFIGS.get(name_or_config, name_or_config))
    test_cfg = cfg.model.test_cfg
    (test_cfg.rcnn if 'rcnn' in test_cfg else test_cfg).score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for name, module in model.named_modules():
        if name.rsplit('.', 1)[-1] in SCORE_LAYERS:
            torch.nn.init.normal_(module.weight, std=0.3)
    return model.eval(), cfg


class EagerGraph:
    """The export graph run by PyTorch, behind ``OnnxDetector``'s call."""

    def __init__(self, model, meta: dict) -> None:
        self.graph, self.meta = build_export_graph(model), meta

    def from_resized(self, resized, scale_factor, ori_shape,
                     return_probs=False):
        image, img_shape = normalize_and_pad(resized, self.meta)
        with torch.no_grad():
            out = self.graph(torch.from_numpy(image),
                             torch.from_numpy(img_shape))
        names = ('boxes', 'scores', 'labels', 'mask_probs', 'mask_scores')
        return postprocess({k: v.numpy() for k, v in zip(names, out)},
                           scale_factor, ori_shape, return_probs=return_probs)


@pytest.mark.parametrize('name', list(CONFIGS))
def test_eager_graph_is_the_models_predict(name, tiny_builtin, tmp_path):
    from mmdet_plugins.export.exporter import export_meta
    model, cfg = untrained(name, tiny_builtin, str(tmp_path))
    found = compare_on_split(model, build_test_loader(cfg),
                             EagerGraph(model, export_meta(model, cfg)))
    summary = found['summary']
    # max_per_img (CenterMask: the 50 that get masks) on each image.
    expected = 50 if name.startswith('centermask') else 100
    assert summary['detections'] == expected * summary['images']
    assert within_tolerance(summary) == []
    assert summary['max_box_abs'] < 1e-3 and summary['max_score_abs'] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize('name', list(CONFIGS))
def test_onnxruntime_reproduces_the_model(name, tiny_builtin, tmp_path):
    model, cfg = untrained(name, tiny_builtin, str(tmp_path))
    path = str(tmp_path / 'export' / 'model.onnx')
    meta = export_onnx(model, cfg, path)
    assert osp.isfile(path) and meta['classes'] == list(
        cfg.test_dataloader.dataset.metainfo['classes'])
    assert osp.isfile(tmp_path / 'export' / 'onnx_inference.py')
    found = compare_on_split(model, build_test_loader(cfg),
                             OnnxDetector(path))
    summary = found['summary']
    assert summary['detections'] > 0
    assert within_tolerance(summary) == [], summary
    # Another size than the one traced and the test pipeline's: a 200 x
    # 300 image (padded to 224 x 320), from PyTorch's predict too.
    from mmdet.structures import DetDataSample
    image = np.random.default_rng(0).integers(0, 256, (200, 300, 3),
                                              dtype=np.uint8)
    data = dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)],
                data_samples=[DetDataSample(metainfo=dict(
                    img_id=0, img_shape=(200, 300), ori_shape=(200, 300),
                    scale_factor=(1.0, 1.0)))])
    _, ref, got = run_both(model, data, OnnxDetector(path))
    assert got['masks'].shape[1:] == (200, 300)
    other = compare_detections(ref, got)
    assert other['same_detections'] and other['torch_detections'] > 0
    assert other['box_abs'] <= TOLERANCES['max_box_abs']
    assert other['mask_pixel_diff'] <= TOLERANCES['max_mask_pixel_diff']


def test_box_only_and_other_detectors_are_refused(tiny_builtin, tmp_path):
    retinanet, _ = untrained(project_path(RETINANET), tiny_builtin,
                             str(tmp_path))
    with pytest.raises(UnsupportedModelError, match='box-only'):
        build_export_graph(retinanet)
    with pytest.raises(UnsupportedModelError,
                       match='CenterMask, CenterMask-Lite, RetinaMask and '
                       'Mask R-CNN only'):
        build_export_graph(torch.nn.Conv2d(3, 3, 1))
