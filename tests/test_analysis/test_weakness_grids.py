"""Every comparison a weakness verdict needs has a declared grid that
plans."""
import os.path as osp

import pytest
import yaml

from analysis.published import published_table
from analysis.verdicts import load_report_grids
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


def test_declared_grids_are_the_files_they_name():
    """analysis/data/grids.yaml: each file exists and is the grid of its
    name; every grid a verdict or a paper table reads is declared."""
    grids = load_report_grids()
    for name, path in grids.items():
        assert osp.isfile(project_path(path)), path
        with open(project_path(path)) as f:
            assert yaml.safe_load(f)['name'] == name, path
    named = {side['grid'] for _, side in _sides()} | set(
        published_table().grid)
    assert named - set(grids) == set()


@pytest.mark.slow
def test_every_grid_model_and_arm_a_weakness_names_exists_and_plans(
        tiny_builtin):
    """The grid file exists, names the model and the arm, and that run's
    config resolves and builds. COCO paths are swapped for the built-in
    set (the COCO files are not here); everything else is the grid's."""
    dataset = prepare_dataset(DatasetSpec(
        name='tiny', **tiny_dataset_entry(tiny_builtin)), verbose=False)
    checked = set()
    grids = load_report_grids()
    for wid, side in _sides():
        key = (side['grid'], side['model'], side['arm'])
        if key in checked:
            continue
        assert side['grid'] in grids, f'{wid}: grid {side["grid"]} is not ' \
            f'declared in analysis/data/grids.yaml'
        path = project_path(grids[side['grid']])
        assert osp.isfile(path), f'{wid}: no grid file {path}'
        grid = load_grid(path)
        runs = [r for r in grid.expand()
                if (r.model, r.arm) == (side['model'], side['arm'])]
        assert runs, f'{wid}: {side} is not a run of {path}'
        cfg = resolve_config(runs[0], dataset, grid.path)
        assert check_model_builds(cfg, f'{wid} {key}') > 0
        checked.add(key)
    assert len(checked) >= 15
