"""mmengine's ``mmdet::`` lookups kept per process
(:mod:`experiments.config_cache`): the same configs, one reading of mmdet's
metafiles."""
import mmengine.config.utils as mmengine_config_utils
import mmengine.fileio
from mmengine.config import Config

from experiments.config_cache import MMENGINE_OWN
from experiments.store import project_path

# Each names mmdet:: bases, directly or through its own bases.
CONFIGS = ('configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
           'configs/centermask/centermask_v2-39_fpn_1x_coco.py',
           'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py')


def _parsed():
    return {c: Config.fromfile(project_path(c)).to_dict() for c in CONFIGS}


def test_configs_parse_as_with_mmengines_own_lookup(monkeypatch):
    cached = _parsed()
    assert len(MMENGINE_OWN) == 3
    with monkeypatch.context() as m:
        for (module, name), own in MMENGINE_OWN.items():
            m.setattr(module, name, own)
        assert _parsed() == cached


def test_mmdets_metafiles_are_read_once(monkeypatch):
    Config.fromfile(project_path(CONFIGS[0]))
    reads = []
    real = mmengine.fileio.load

    def counted(*args, **kwargs):
        reads.append(args[0])
        return real(*args, **kwargs)
    # Where the cache and mmengine's own lookup each find load().
    monkeypatch.setattr(mmengine.fileio, 'load', counted)
    monkeypatch.setattr(mmengine_config_utils, 'load', counted)
    assert Config.fromfile(project_path(CONFIGS[1])).model.type == \
        'CenterMask'
    assert not [r for r in reads if 'metafile' in str(r)], reads
