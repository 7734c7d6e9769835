"""Every COCO config holds every value its official config sets (issue 36).

The official values are data (``configs/official/<config>.yaml``, one table
per COCO config, transcribed with file:line); every row pins our merged
config's value: ``held`` rows to the official value, ``deliberate`` and
``unofficial`` rows to ours, with the reason. A config edit that no row
pins fails ``test_every_numeric_leaf_is_pinned``.
"""
import functools
import glob
import os.path as osp
import re

import pytest

from experiments.grid import official_values as ov
from experiments.store import PROJECT_ROOT

COCO = sorted(osp.relpath(p, PROJECT_ROOT) for p in glob.glob(
    osp.join(PROJECT_ROOT, 'configs', '*', '*_coco*.py')))


@functools.lru_cache(maxsize=None)
def _cfg(config: str):
    return ov.load_config(config)


def test_there_are_twenty_coco_configs_each_with_a_table():
    assert len(COCO) == 20
    assert [c for c in COCO if not osp.exists(ov.table_path(c))] == []
    tables = glob.glob(osp.join(ov.OFFICIAL_DIR, '*.yaml'))
    assert sorted(map(osp.basename, tables)) == sorted(
        osp.basename(ov.table_path(c)) for c in COCO)


@pytest.mark.parametrize('config', COCO, ids=osp.basename)
def test_config_holds_its_official_values(config):
    table = ov.official_table(config, _cfg(config))
    wrong = table[~table.ok]
    assert wrong.empty, '\n' + wrong[
        ['our_key', 'our_value', 'expected', 'status']].to_string()
    for row in ov.load_rows(ov.table_path(config)):
        # Every official value is cited with its line; every difference
        # says why.
        assert re.search(r'\.(py|yaml):\d', str(row.get('src'))), row
        assert ov.status(row)[0] == 'held' or ov.status(row)[1], row


@pytest.mark.parametrize('config', COCO, ids=osp.basename)
def test_every_numeric_leaf_is_pinned(config):
    """No int / float of the model, schedule, solver or data pipelines is
    outside every row (a new key needs its official value or a reason)."""
    rows = ov.load_rows(ov.table_path(config))
    assert ov.unpinned_leaves(_cfg(config), rows) == []


def test_resolve_reads_indices_selectors_and_dotted_keys():
    cfg = dict(a=[dict(type='X', v=1), dict(type='Resize', scale=(3, 4))],
               b={'.gn.bias': dict(lr=2)})
    assert ov.resolve(cfg, 'a[type=Resize].scale.1') == (4, ('a', 1, 'scale',
                                                               1))
    assert ov.resolve(cfg, "b['.gn.bias'].lr")[0] == 2
    assert ov.resolve(cfg, 'a.0.v')[0] == 1
    with pytest.raises(KeyError):
        ov.resolve(cfg, 'a[type=Flip]')


def test_same_compares_floats_with_tolerance_and_types_strictly():
    assert ov.same((1333, 800), [1333, 800])
    assert ov.same(1 / 3, 0.3333333333333333)
    assert not ov.same(0.3333, 1 / 3)
    assert not ov.same(True, 1) and not ov.same(0, None)
    assert ov.same({'a': 1, '_scope_': 'mmdet'}, {'a': 1.0})
