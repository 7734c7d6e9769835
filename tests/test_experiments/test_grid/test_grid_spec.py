import textwrap

import pytest

from experiments.grid.spec import GridSpecError, load_grid

GRID = """
name: g
models:
  a: configs/a.py
  b: {config: configs/b.py, overrides: {train_cfg.max_iters: 5}}
arms:
  default: {}
  only_b: {models: [b], overrides: {train_cfg.max_iters: 7, x.y: 1}}
datasets:
  d1: {synthetic: {num_train: 4}}
  d2: {data_root: /data/coco, train_ann: t.json, train_img: t/,
       val_ann: v.json, val_img: v/}
seeds: [0, 1]
overrides: {train_cfg.max_iters: 3, z: 2}
"""


def _grid(tmp_path, text):
    path = tmp_path / 'grid.yaml'
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_expansion_order_applicability_and_override_precedence(tmp_path):
    grid = load_grid(_grid(tmp_path, GRID))
    runs = grid.expand()
    # a: 1 arm, b: 2 arms; x 2 datasets x 2 seeds.
    assert len(runs) == (1 + 2) * 2 * 2
    assert [r.label for r in runs[:4]] == [
        'a/default/d1/seed0', 'a/default/d1/seed1', 'a/default/d2/seed0',
        'a/default/d2/seed1']
    assert {r.arm for r in runs if r.model == 'a'} == {'default'}
    by_label = {r.label: r for r in runs}
    assert by_label['a/default/d1/seed0'].overrides == {
        'train_cfg.max_iters': 3, 'z': 2}
    assert by_label['b/default/d1/seed0'].overrides['train_cfg.max_iters'] \
        == 5
    assert by_label['b/only_b/d2/seed1'].overrides == {
        'train_cfg.max_iters': 7, 'x.y': 1, 'z': 2}
    assert grid.work_dir == 'work_dirs/g'
    assert grid.datasets['d2'].val_ann == 'v.json'


@pytest.mark.parametrize('text, message', [
    (GRID + 'sedes: [1]\n', 'unknown key "sedes"'),
    (GRID.replace('only_b: {models', 'only_b: {modles'),
     'unknown key "arms.only_b.modles"'),
    (GRID.replace('b: {config', 'b: {cfg'), 'unknown key "models.b.cfg"'),
    (GRID.replace('models: [b]', 'models: [c]'),
     '"arms.only_b.models" names unknown model "c"'),
    (GRID.replace('val_ann: v.json, ', ''), 'missing "datasets.d2.val_ann"'),
    (GRID.replace('train_img: t/', 'train_img: t/, extra: 1'),
     'unknown key "datasets.d2.extra"'),
    (GRID.replace('seeds: [0, 1]', 'seeds: 3'), '"seeds" must be'),
    # [0, 0] once gave one run twice in results.csv and "2 seeds, 0.0 +- 0.0".
    (GRID.replace('seeds: [0, 1]', 'seeds: [0, 1, 0]'),
     '"seeds[2]" = 0 repeats seeds[0]'),
    (GRID.replace('seeds: [0, 1]', 'seeds: [-3]'),
     '"seeds[0]" = -3 is outside 0 .. 2**32 - 1'),
    (GRID.replace('seeds: [0, 1]', 'seeds: [1, 100000000000000000000]'),
     '"seeds[1]" = 100000000000000000000 is outside'),
    (GRID.replace('seeds: [0, 1]', 'seeds: [1e20]'), '"seeds" must be'),
    ('models: {}\ndatasets: {d: {synthetic: {}}}\n', '"models" is empty'),
    ('models: [a, b]\n', '"models" must be a mapping'),
    ('models: {a: x.py}\ndatasets: {d: {synthetic: {}}}\n:\n- [',
     'not valid YAML'),
])
def test_bad_grids_name_file_and_key(tmp_path, text, message):
    path = _grid(tmp_path, text)
    with pytest.raises(GridSpecError) as info:
        load_grid(path)
    assert message in str(info.value)
    assert path in str(info.value)


def test_missing_grid_file(tmp_path):
    with pytest.raises(GridSpecError, match='does not exist'):
        load_grid(str(tmp_path / 'none.yaml'))
