"""Every comparison a weakness verdict needs has a grid that plans."""
import os.path as osp

import pytest
import yaml

from experiments.data.prepare import prepare_dataset
from experiments.grid.spec import DatasetSpec, load_grid
from experiments.store import PROJECT_ROOT, project_path
from experiments.grid.run_config import check_model_builds, resolve_config
from helpers import tiny_dataset_entry

WEAKNESSES = osp.join(PROJECT_ROOT, 'analysis', 'data', 'weaknesses.yaml')


def _sides():
    for wid, weakness in yaml.safe_load(open(WEAKNESSES)).items():
        for side in ('a', 'b'):
            entries = weakness[side]
            for entry in entries if isinstance(entries, list) else [entries]:
                yield wid, entry


def test_every_weakness_has_both_sides():
    ids = {wid for wid, _ in _sides()}
    assert ids == {f'W{i}' for i in range(1, 12)}


@pytest.mark.slow
def test_every_grid_model_and_arm_a_weakness_names_exists_and_plans(
        tiny_builtin):
    """The grid file exists, names the model and the arm, and that run's
    config resolves and builds. COCO paths are swapped for the built-in
    set (the COCO files are not here); everything else is the grid's."""
    dataset = prepare_dataset(DatasetSpec(
        name='tiny', **tiny_dataset_entry(tiny_builtin)), verbose=False)
    checked = set()
    for wid, side in _sides():
        key = (side['grid'], side['model'], side['arm'])
        if key in checked:
            continue
        path = project_path(f'experiments/grids/{side["grid"]}.yaml')
        assert osp.isfile(path), f'{wid}: no grid file {path}'
        grid = load_grid(path)
        runs = [r for r in grid.expand()
                if (r.model, r.arm) == (side['model'], side['arm'])]
        assert runs, f'{wid}: {side} is not a run of {path}'
        cfg = resolve_config(runs[0], dataset, grid.path)
        assert check_model_builds(cfg, f'{wid} {key}') > 0
        checked.add(key)
    assert len(checked) >= 15
