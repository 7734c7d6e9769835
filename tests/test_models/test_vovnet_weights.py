"""VoVNet ImageNet weights from timm and from the official code load
exactly: every key lands, and the stage outputs equal the source model's."""
import importlib.util

import pytest
import torch
from safetensors.torch import save_file

from mmdet_plugins.converters.vovnet import (
    convert_vovnet_state_dict, load_vovnet_weights)
from mmdet_plugins.models.backbones import VoVNet
from reference.official_vovnet import OfficialVoVNet

TIMM_ARCHS = [('ese_vovnet19b_dw', 'V-19-dw'), ('ese_vovnet39b', 'V-39'),
              ('ese_vovnet57b', 'V-57')]
OFFICIAL_ARCHS = [('V-19-slim-dw-eSE', 'V-19-slim-dw'),
                  ('V-19-dw-eSE', 'V-19-dw'),
                  ('V-19-slim-eSE', 'V-19-slim'), ('V-19-eSE', 'V-19'),
                  ('V-39-eSE', 'V-39'), ('V-57-eSE', 'V-57'),
                  ('V-99-eSE', 'V-99')]


def _randomise_norm_statistics(model: torch.nn.Module) -> None:
    # Fresh BN statistics (0/1) would hide a swapped mean/var or affine.
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith('running_mean'):
                buf.uniform_(-0.5, 0.5)
            elif name.endswith('running_var'):
                buf.uniform_(0.5, 2.0)
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.uniform_(0.5, 1.5) if name.endswith('weight') \
                    else param.uniform_(-0.2, 0.2)
        for name, buf in model.named_buffers():  # FrozenBN keeps affine here
            if name.endswith('.weight'):
                buf.uniform_(0.5, 1.5)
            elif name.endswith('.bias'):
                buf.uniform_(-0.2, 0.2)


def _timm():
    if importlib.util.find_spec('timm') is None:
        pytest.skip('timm is not installed (requirements/tests.txt)')
    from reference.timm_import import import_timm
    return import_timm()


def _timm_stage_outputs(model, x):
    x = model.stem(x)
    outs = []
    for stage in model.stages:
        x = stage(x)
        outs.append(x)
    return outs


@pytest.mark.parametrize('timm_name,arch', TIMM_ARCHS)
def test_timm_weights_give_timm_stage_outputs(timm_name, arch):
    timm = _timm()
    torch.manual_seed(0)
    reference = timm.create_model(timm_name, pretrained=False).eval()
    _randomise_norm_statistics(reference)
    ours = VoVNet(arch=arch, attention='ese', residual=True,
                  attention_blocks='last', init_cfg=dict(
                      type='Pretrained', checkpoint='unused')).eval()
    state = convert_vovnet_state_dict(reference.state_dict())
    result = ours.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = _timm_stage_outputs(reference, x)
        got = ours(x)
    assert len(got) == len(want) == 4
    for a, b in zip(got, want):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    print(f'{timm_name} -> {arch}: {len(state)} tensors, max |diff| '
          f'{max(float((a - b).abs().max()) for a, b in zip(got, want)):.1e}')


def test_timm_uri_reads_the_hugging_face_cache(tmp_path, monkeypatch):
    """``timm://ese_vovnet39b`` finds timm's file in the user's cache
    (no network, no timm import) and init_weights loads every key."""
    timm = _timm()
    torch.manual_seed(1)
    reference = timm.create_model('ese_vovnet39b', pretrained=False)
    snapshot = tmp_path / 'models--timm--ese_vovnet39b.ra_in1k' / \
        'snapshots' / 'abc123'
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in
               reference.state_dict().items()},
              str(snapshot / 'model.safetensors'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path))
    ours = VoVNet(arch='V-39', attention_blocks='last', init_cfg=dict(
        type='Pretrained', checkpoint='timm://ese_vovnet39b'))
    ours.init_weights()
    torch.testing.assert_close(
        ours.stages[3][2].attention.fc.weight,
        reference.stages[3].blocks[1].attn.fc.weight)
    torch.testing.assert_close(ours.stem[0].conv.weight,
                               reference.stem[0].conv.weight)
    # The official placement (eSE in every block) does not fit timm's.
    wrong = VoVNet(arch='V-39', attention_blocks='all', init_cfg=dict(
        type='Pretrained', checkpoint='timm://ese_vovnet39b'))
    with pytest.raises(ValueError, match="attention_blocks='last'"):
        wrong.init_weights()


# V-57 / V-99 take seconds each on CPU: `make test` runs them, make
# test-fast the smaller ones (the same code).
@pytest.mark.parametrize('conv_body,arch', [
    pytest.param(*a, marks=pytest.mark.slow if a[1] in ('V-57', 'V-99')
                 else ()) for a in OFFICIAL_ARCHS])
def test_official_weights_give_official_stage_outputs(conv_body, arch,
                                                      tmp_path):
    """A file with the keys of ``vovnet*_ese_detectron2.pth`` (the official
    module names under ``backbone.bottom_up.``) loads with no key missing
    or left over, and our VoVNet computes what the official one does."""
    torch.manual_seed(0)
    reference = OfficialVoVNet(conv_body).eval()
    _randomise_norm_statistics(reference)
    path = tmp_path / f'{arch}_detectron2.pth'
    torch.save({f'backbone.bottom_up.{k}': v
                for k, v in reference.state_dict().items()}, path)
    ours = VoVNet(arch=arch, attention='ese', residual=True,
                  attention_blocks='all', init_cfg=dict(
                      type='Pretrained', checkpoint=str(path)))
    ours.init_weights()
    ours.eval()
    state = load_vovnet_weights(str(path))
    assert set(state) == {k for k in ours.state_dict()
                          if not k.endswith('num_batches_tracked')}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = reference(x)
        got = ours(x)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    print(f'{conv_body} -> {arch}: {len(state)} tensors, max |diff| '
          f'{max(float((a - b).abs().max()) for a, b in zip(got, want)):.1e}')


def test_missing_weights_file_names_it():
    ours = VoVNet(arch='V-19-slim', init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/nope_detectron2.pth'))
    with pytest.raises(FileNotFoundError, match='nope_detectron2.pth'):
        ours.init_weights()


def test_relative_weights_path_is_read_under_the_callers_root(tmp_path,
                                                               monkeypatch):
    """The plugin does not know the checkout: a relative ``checkpoint`` is
    read from the working directory, else under the ``root`` its caller
    names (``tools/convert_checkpoint.py`` names the checkout)."""
    torch.manual_seed(0)
    source = VoVNet(arch='V-19-slim')
    (tmp_path / 'checkpoints').mkdir()
    torch.save(source.state_dict(), tmp_path / 'checkpoints' / 'v19.pth')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(FileNotFoundError, match='v19.pth'):
        load_vovnet_weights('checkpoints/v19.pth')
    ours = VoVNet(arch='V-19-slim', init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/v19.pth',
        root=str(tmp_path)))
    ours.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    monkeypatch.chdir(tmp_path)
    assert set(load_vovnet_weights('checkpoints/v19.pth')) == set(
        source.state_dict())
