"""tools/convert_checkpoint.py: official file in, weights-only file out that
our config's model loads with nothing missing."""
import subprocess
import sys

import pytest
import torch

from experiments.store import PROJECT_ROOT, project_path
from reference.official_vovnet import OfficialVoVNet
from test_official_checkpoints import _official_state

TOOL = project_path('tools/convert_checkpoint.py')


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_centermask2_checkpoint_converts_and_fits_its_config(tmp_path):
    src = tmp_path / 'centermask2-V-39-eSE-FPN-ms-3x.pth'
    official = _official_state('centermask2_centermask_V_39_eSE_FPN_ms_3x.tsv')
    torch.save({'model': official, 'iteration': 270000}, src)
    dst = tmp_path / 'converted.pth'
    done = _run('centermask2', str(src), str(dst), '--config',
                'configs/centermask/centermask_v2-39_fpn_ms-3x_coco.py')
    assert done.returncode == 0, done.stderr
    assert 'tensors fit' in done.stdout
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert saved['meta']['source'] == 'centermask2'
    assert len(saved['meta']['source_sha256']) == 64
    assert torch.equal(
        saved['state_dict']['mask_head.sam.conv.weight'],
        official['roi_heads.mask_head.spatialAtt.conv.weight'])


@pytest.mark.slow
def test_wrong_config_is_refused_with_the_keys(tmp_path):
    src = tmp_path / 'lite.pth'
    torch.save(_official_state(
        'centermask2_centermask_lite_V_19_eSE_FPN_ms_4x.tsv'), src)
    done = _run('centermask2', str(src), str(tmp_path / 'out.pth'),
                '--config',
                'configs/centermask/centermask_v2-39_fpn_ms-3x_coco.py')
    assert done.returncode != 0 and 'do not fit' in done.stderr
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.slow
def test_vovnet_imagenet_file_converts_for_init_cfg(tmp_path):
    src = tmp_path / 'vovnet19_ese_slim_detectron2.pth'
    torch.save({f'backbone.bottom_up.{k}': v for k, v in
                OfficialVoVNet('V-19-slim-eSE').state_dict().items()}, src)
    dst = tmp_path / 'vovnet19_slim.pth'
    done = _run('vovnet', str(src), str(dst), '--config',
                'configs/centermask/centermask-lite_v-19-slim_fpn_ms-4x_coco.py')
    assert done.returncode == 0, done.stderr
    from mmdet_plugins.models.backbones import VoVNet
    ours = VoVNet(arch='V-19-slim', init_cfg=dict(type='Pretrained',
                                                  checkpoint=str(dst)))
    ours.init_weights()
