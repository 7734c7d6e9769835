"""Every initial weight a run reads is found in its cache before anything
runs, or the grid is refused in one line per file (issue 37, item 2)."""
import json
import os
import os.path as osp

import pytest
from helpers import write_grid
from mmengine.config import Config

from experiments import run_grid
from experiments.plan.weights_check import (
    drop_unavailable_weights,
    weight_sources,
)
from experiments.store import RUN_META, project_path

CM_R50 = 'configs/centermask/centermask_r50_fpn_1x_coco.py'
# A URL no machine resolves, with torch hub's sha256 prefix in its name.
MISSING = 'https://weights.invalid/resnet18-0123abcd.pth'


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch hub and Hugging Face caches (restored afterwards, also
    when run_grid.py's weights_cache sets them)."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf'))
    return tmp_path


def _source(cfg: dict, key: str = 'model.backbone.init_cfg.checkpoint'):
    found = {s.key: s for s in weight_sources(Config(cfg), 'c.py')}
    return found[key]


def _pretrained(checkpoint: str, **extra) -> dict:
    return dict(type='Pretrained', checkpoint=checkpoint, **extra)


def test_each_scheme_names_the_file_its_loader_reads(caches):
    hub = caches / 'torch' / 'hub' / 'checkpoints'
    zoo = _source(dict(model=dict(backbone=dict(init_cfg=_pretrained(
        'open-mmlab://detectron2/resnet50_caffe')))))
    assert zoo.cache_path == str(hub / 'resnet50_msra-5891d200.pth')
    assert zoo.download_url.endswith('/resnet50_msra-5891d200.pth')
    assert zoo.sha256 == '5891d200' and not zoo.available
    tv = _source(dict(model=dict(backbone=dict(init_cfg=_pretrained(
        'torchvision://resnet50')))))
    assert tv.cache_path.startswith(str(hub)) and tv.sha256
    url = _source(dict(model=dict(backbone=dict(init_cfg=_pretrained(
        MISSING)))))
    assert url.cache_path == str(hub / 'resnet18-0123abcd.pth')
    hub.mkdir(parents=True)
    (hub / 'resnet18-0123abcd.pth').write_bytes(b'x')
    assert _source(dict(model=dict(backbone=dict(init_cfg=_pretrained(
        MISSING))))).available
    timm = _source(dict(model=dict(backbone=dict(init_cfg=_pretrained(
        'timm://ese_vovnet39b')))))
    assert timm.cache_path.startswith(str(caches / 'hf' / (
        'models--timm--ese_vovnet39b.ra_in1k'))) and not timm.available
    local = _source(dict(model=dict(backbone=dict(init_cfg=_pretrained(
        'checkpoints/vovnet39_ese_detectron2.pth', root=str(caches))))))
    # From the checkout first (runs start there), then VoVNet's root.
    assert local.cache_path == str(caches / 'checkpoints' /
                                   'vovnet39_ese_detectron2.pth')
    assert local.download_url.startswith('https://dl.dropbox.com/')


def test_every_depth_and_load_from_only_for_evaluation(caches):
    model = dict(backbone=dict(init_cfg=_pretrained('a.pth')),
                 neck=dict(init_cfg=[dict(type='Xavier'),
                                     _pretrained('b.pth')]),
                 head=dict(pretrained='c.pth'))
    keys = [s.key for s in weight_sources(
        Config(dict(model=model, load_from='d.pth')), 'c.py')]
    # A training run resumes from its own work dir: load_from is unread.
    assert keys == ['model.backbone.init_cfg.checkpoint',
                    'model.neck.init_cfg.1.checkpoint',
                    'model.head.pretrained']
    evaluated = weight_sources(Config(dict(
        model=model, load_from='d.pth', evaluate_only=True)), 'c.py')
    assert [s.key for s in evaluated] == ['load_from']


def test_unavailable_weights_become_random_init_and_say_so(caches):
    cfg = Config(dict(model=dict(
        backbone=dict(type='ResNet', init_cfg=_pretrained(MISSING)),
        neck=dict(init_cfg=[_pretrained('x.pth'), dict(type='Xavier'),
                            _pretrained('y.pth')]))))
    replaced = drop_unavailable_weights(cfg, weight_sources(cfg, 'c.py'))
    assert replaced == ['model.backbone.init_cfg.checkpoint',
                        'model.neck.init_cfg.0.checkpoint',
                        'model.neck.init_cfg.2.checkpoint']
    # The module's own default initialisation, the other inits kept.
    assert 'init_cfg' not in cfg.model.backbone
    assert cfg.model.neck.init_cfg == [dict(type='Xavier')]
    assert cfg.random_init_weights['model.backbone.init_cfg.checkpoint'] \
        == MISSING
    assert cfg.allow_untrained_frozen_backbone is True
    assert weight_sources(cfg, 'c.py') == []


def test_table1_config_needs_the_detectron2_r50(caches):
    cfg = Config.fromfile(project_path(CM_R50))
    (source,) = weight_sources(cfg, CM_R50)
    assert (source.key, source.url) == (
        'model.backbone.init_cfg.checkpoint',
        'open-mmlab://detectron2/resnet50_caffe')


def _grid(tmp_path, tiny_builtin, checkpoint=MISSING, **extra) -> str:
    # The tiny config's init_cfg is None: replace it, not merge into it.
    arms = {'default': {'overrides': {
        'model.backbone.init_cfg': _pretrained(checkpoint, _delete_=True)}}}
    return write_grid(tmp_path / 'g.yaml', tmp_path / 'work', tiny_builtin,
                      arms, **extra)


def test_missing_weight_refuses_the_grid_in_one_line(
        caches, tiny_builtin, tmp_path, capsys):
    grid = _grid(tmp_path, tiny_builtin)
    assert run_grid.main([grid, '--dry-run']) == 2
    err = capsys.readouterr().err.splitlines()
    cache = caches / 'torch' / 'hub' / 'checkpoints' / \
        'resnet18-0123abcd.pth'
    assert err[1] == (
        f'  - configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py: '
        f'model.backbone.init_cfg.checkpoint = {MISSING} is not in {cache}; '
        f'run tools/fetch_weights.py {grid} on a node with '
        f'internet (or --random-init-missing-weights)')
    assert len(err) == 2
    # Not even an empty work dir is left.
    assert not osp.exists(tmp_path / 'work')
    assert run_grid.main([grid, '--dry-run',
                          '--random-init-missing-weights']) == 0
    assert 'random init (' + MISSING in capsys.readouterr().out
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b'x')
    assert run_grid.main([grid, '--dry-run']) == 0
    assert 'random init' not in capsys.readouterr().out


def test_the_grid_can_name_the_cache(caches, tiny_builtin, tmp_path,
                                     capsys):
    grid = _grid(tmp_path, tiny_builtin,
                 weights_cache=str(tmp_path / 'shared'))
    assert run_grid.main([grid, '--dry-run']) == 2
    assert str(tmp_path / 'shared' / 'hub' / 'checkpoints') in \
        capsys.readouterr().err
    # The runs inherit it.
    assert os.environ['TORCH_HOME'] == str(tmp_path / 'shared')


@pytest.mark.slow
def test_a_random_init_run_trains_and_records_it(caches, tiny_builtin,
                                                 tmp_path):
    grid = _grid(tmp_path, tiny_builtin)
    assert run_grid.main([grid, '--random-init-missing-weights']) == 0
    (run_dir,) = [d for d in (tmp_path / 'work').iterdir() if d.is_dir()]
    with open(run_dir / RUN_META) as f:
        meta = json.load(f)
    assert meta['weights'] == f'random init (not in the cache: {MISSING})'
