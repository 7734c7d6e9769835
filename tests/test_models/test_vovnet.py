import pytest
import torch

from mmdet_plugins.models.backbones import VoVNet
from mmdet_plugins.models.layers import ESE, SE, SpatialAttention


def _params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('arch, published', [
    ('V-39', 25.2e6), ('V-57', 41.5e6), ('V-99', 69.5e6)])
def test_v2_backbone_parameters_match_the_paper(arch, published):
    n = _params(VoVNet(arch, attention='ese', residual=True))
    assert abs(n - published) / published < 0.01


@pytest.mark.parametrize('arch', [
    'V-39', pytest.param('V-57', marks=pytest.mark.slow),
    pytest.param('V-99', marks=pytest.mark.slow)])
def test_se_adds_half_of_what_ese_adds(arch):
    base = _params(VoVNet(arch, attention='none'))
    se = _params(VoVNet(arch, attention='se')) - base
    ese = _params(VoVNet(arch, attention='ese')) - base
    assert se / ese == pytest.approx(0.5, abs=0.01)


def test_classifier_counts_of_the_small_variants():
    # Published ImageNet classifiers: backbone + FC 1000 (with bias).
    for arch, published in (('V-19', 11.2e6), ('V-19-slim', 3.1e6)):
        backbone = VoVNet(arch, attention='ese')
        fc = (backbone.out_channels[-1] + 1) * 1000
        assert abs(_params(backbone) + fc - published) / published < 0.03


def test_residual_adds_no_parameters_and_sits_in_blocks_two_to_n():
    v1 = VoVNet('V-39', attention='none', residual=False)
    res = VoVNet('V-39', attention='none', residual=True)
    assert _params(v1) == _params(res)
    identities = [[getattr(b, 'identity', None) for b in stage
                   if hasattr(b, 'identity')] for stage in res.stages]
    assert identities == [[False], [False], [False, True], [False, True]]


def test_attention_placement_official_and_timm():
    every = VoVNet('V-57', attention='ese')
    last = VoVNet('V-57', attention='ese', attention_blocks='last')
    count = lambda m: sum(isinstance(x, ESE) for x in m.modules())  # noqa
    assert count(every) == 1 + 1 + 4 + 3
    assert count(last) == 4
    assert sum(isinstance(x, SE) for x in
               VoVNet('V-39', attention='se').modules()) == 6


def test_outputs_strides_channels_and_freezing():
    model = VoVNet('V-19-slim-dw', out_indices=(1, 2, 3), frozen_stages=1)
    model.train()
    outs = model(torch.randn(2, 3, 64, 96))
    assert [o.shape[1:] for o in outs] == [
        (256, 8, 12), (384, 4, 6), (512, 2, 3)]
    assert model.out_channels == (256, 384, 512)
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    with pytest.raises(KeyError, match='V-42'):
        VoVNet('V-42')


def test_attention_layers_gate_their_input():
    x = torch.randn(2, 8, 5, 5)
    for layer in (SE(8), ESE(8), SpatialAttention()):
        y = layer(x)
        assert y.shape == x.shape
    # eSE is a hard-sigmoid gate of one 1x1 conv on the pooled input.
    ese = ESE(8)
    gate = torch.nn.functional.hardsigmoid(
        ese.fc(x.mean(dim=(2, 3), keepdim=True)))
    assert torch.allclose(ese(x), x * gate, atol=1e-6)
    sam = SpatialAttention()
    pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    assert torch.allclose(sam(x), x * torch.sigmoid(sam.conv(pooled)))
    assert sam.conv.bias is None and _params(sam) == 2 * 9
