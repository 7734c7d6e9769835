import json
import os.path as osp

import numpy as np
import pytest
import torch
import yaml
from helpers import TINY_BATCH, tiny_dataset_entry
from helpers import TINY_OVERRIDES as TINY

from experiments import measure_cost, run_grid
from experiments.store import COST, PROJECT_ROOT, read_results_csv

LITE = 'configs/centermask/centermask-lite_v-19-slim-dw-tiny_fpn_builtin.py'


@pytest.fixture(scope='module')
def measured_grid(tiny_builtin, tmp_path_factory):
    """SE and eSE arms trained two iterations, then measured."""
    tmp = tmp_path_factory.mktemp('cost')
    grid = tmp / 'grid.yaml'
    grid.write_text(yaml.safe_dump(dict(
        **TINY_BATCH,
        name='cost', work_dir=str(tmp / 'work'), models={'lite': LITE},
        arms={a: {'overrides': {'model.backbone.attention': a}}
              for a in ('se', 'ese')},
        datasets={'tiny': tiny_dataset_entry(tiny_builtin)}, seeds=[0],
        overrides=TINY)))
    assert run_grid.main([str(grid)]) == 0
    assert measure_cost.main([str(grid), '--images', '6', '--warmup', '1',
                              '--flops-images', '2', '--rounds', '2']) == 0
    df = read_results_csv(str(tmp / 'work' / 'results.csv'))
    return str(grid), df.set_index('arm')


@pytest.mark.slow
def test_cost_is_recorded_in_run_and_table(measured_grid):
    _, df = measured_grid
    for arm in ('se', 'ese'):
        row = df.loc[arm]
        cost = json.load(open(osp.join(row.work_dir, COST)))
        # 96 px images resized by the test pipeline to its 128 px scale.
        assert cost['input_hw'] == [128.0, 128.0]
        assert cost['timed_images'] == 12 and cost['warmup_images'] == 1
        # The 4-image split was cycled: every image timed in both rounds.
        assert cost['rounds'] == 2 and len(cost['round_latency_ms']) == 2
        assert [len(r) for r in cost['per_round_ms']] == [4, 4]
        assert len(cost['per_image_ms']) == 4
        cells = [ms for r in cost['per_round_ms'] for ms in r.values()]
        assert cost['latency_ms'] == pytest.approx(float(np.median(cells)))
        assert all(ms > 0 for ms in cost['per_image_ms'].values())
        assert row.gflops == pytest.approx(cost['flops'] / 1e9)
        assert 0 < row.backbone_gflops < row.gflops
        assert row.latency_ms == pytest.approx(cost['latency_ms'])
        assert row.latency_device.startswith('cpu: ')
        assert row.latency_other_load == cost['other_cpu_load'] >= 0
        assert 0 <= cost['detections_per_image'] <= 100  # max_per_img


@pytest.mark.slow
def test_ese_minus_se_flops_is_the_attention_convs(measured_grid):
    """eSE's one C->C FC against SE's C->C/4->C, on a 1x1 pooled map.

    Only the gate convs differ between the arms, so the backbone FLOPs must
    differ by exactly their multiply-adds: weight count x 1 pixel.
    """
    _, df = measured_grid
    from experiments.cost.model_cost import build_trained_model
    macs = {}
    for arm in ('se', 'ese'):
        model, _ = build_trained_model(df.loc[arm].work_dir, 'cpu')
        macs[arm] = sum(m.weight.numel()
                        for mod in model.backbone.modules()
                        if type(mod).__name__ in ('SE', 'ESE')
                        for m in mod.modules()
                        if isinstance(m, torch.nn.Conv2d))
    assert macs['ese'] > macs['se'] > 0
    diff = (df.loc['ese'].backbone_gflops
            - df.loc['se'].backbone_gflops) * 1e9
    assert diff == pytest.approx(macs['ese'] - macs['se'], abs=0.5)


@pytest.mark.slow
def test_measured_runs_are_skipped_unless_short_of_rounds(measured_grid,
                                                          capsys):
    grid, df = measured_grid
    path = osp.join(df.loc['se'].work_dir, COST)
    before = json.load(open(path))['measured_at']
    assert measure_cost.main([grid, '--images', '2', '--warmup', '0',
                              '--rounds', '2']) == 0
    assert 'measured before on this device, skipped' in capsys.readouterr().out
    assert json.load(open(path))['measured_at'] == before
    # More rounds than were taken: measured again, every round kept.
    assert measure_cost.main([grid, '--images', '2', '--warmup', '0',
                              '--rounds', '3']) == 0
    cost = json.load(open(path))
    assert cost['rounds'] == 3 and len(cost['per_round_ms']) == 3


def test_missing_results_table_is_named(tmp_path, capsys):
    grid = tmp_path / 'g.yaml'
    grid.write_text(yaml.safe_dump(dict(
        **TINY_BATCH,
        name='g', work_dir=str(tmp_path / 'w'),
        models={'m': 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py'},
        datasets={'d': {'synthetic': {'num_train': 2, 'num_val': 2}}})))
    assert measure_cost.main([str(grid)]) == 2
    err = capsys.readouterr().err
    assert 'results.csv' in err and 'run_grid.py' in err


@pytest.mark.slow
def test_report_shows_flops_latency_and_the_speed_figure(measured_grid,
                                                         tmp_path):
    import subprocess
    import sys
    grid, df = measured_grid
    out = tmp_path / 'report'
    subprocess.run([sys.executable, 'reports/generate_report.py', '--grid',
                    grid, '--resamples', '20', '--no-other-grids', '--out',
                    str(out)], check=True, cwd=PROJECT_ROOT)
    md = (out / 'report.md').read_text()
    se_ese = md[md.index('## SE vs eSE'):md.index('## Speed vs accuracy')]
    rows = [line for line in se_ese.splitlines()
            if line.startswith('| cost')]
    assert len(rows) == 2
    for arm, line in zip(('se', 'ese'), rows):
        assert f'| {arm} ' in line and 'cpu: ' in line
        assert f'{df.loc[arm].gflops:.3f}'.rstrip('0') in line
    assert (out / 'speed_vs_accuracy.png').stat().st_size > 10_000
