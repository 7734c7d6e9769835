"""``--plan``'s cost estimate against the measured wall time of the runs."""
import os
import os.path as osp

import pandas as pd
import pytest
from helpers import TINY_BATCH, run_grid_cli, tiny_dataset_entry

from experiments.cost.plan_cost import Rate, estimate, probe
from experiments.grid.spec import load_grid
from experiments.plan.grid_plan import resolve

CONFIGS = {
    'mask_rcnn': 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py',
    # The probe times RetinaMask's and CenterMask's steady state (the mask
    # branch on the full post-NMS top 100: a trained model's); a few
    # iterations from scratch have no detections above 0.05 yet, so the
    # runs are put in that state too, and the comparison is of the
    # estimate's arithmetic.
    'retinamask': {
        'config': 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py',
        'overrides': {'model.train_cfg.mask.score_thr': 0.0}},
    'centermask': {
        'config': 'configs/centermask/centermask_r18-tiny_fpn_builtin.py',
        'overrides': {'model.train_cfg.mask.score_thr': 0.0}},
}
# Enough iterations that the per-iteration rate, not start-up, dominates.
ITERS = 40


def write_grid(tmp_path, models) -> str:
    import yaml
    spec = dict(name='plan_t', work_dir=str(tmp_path / 'work'),
                models=models, arms={'default': {}},
                datasets={'tiny': tiny_dataset_entry(
                    str(tmp_path / 'data'))},
                seeds=[0], overrides={'train_cfg.max_iters': ITERS,
                                      'default_hooks.checkpoint.interval':
                                      ITERS}, **TINY_BATCH)
    path = tmp_path / 'grid.yaml'
    path.write_text(yaml.safe_dump(spec))
    return str(path)


@pytest.fixture
def grid_dir(tmp_path, tiny_builtin):
    os.symlink(tiny_builtin, tmp_path / 'data')
    return tmp_path


def test_plan_trains_and_writes_nothing(grid_dir):
    grid = write_grid(grid_dir, {'mask_rcnn': CONFIGS['mask_rcnn']})
    out = run_grid_cli(grid, '--plan', '--rates',
                       str(grid_dir / 'none.csv'))
    assert out.returncode == 0, out.stderr
    assert 'no rate: run --probe' in out.stdout
    assert not osp.exists(grid_dir / 'work')


# A 40-iteration tiny run lasts 6-17 s, a third of it start-up and
# evaluation, and the same seeded run's wall time varies by up to 20% on the
# shared 2-core machine (RetinaMask 7.4 and 9.0 s in two runs in a row), a
# 4-iteration probe's estimate as much (CenterMask 7.6 and 9.9 s). One run
# therefore has to be within a factor of 1.6 (an error in the estimate's
# arithmetic -- iterations, images per process, accumulation -- is a factor
# of 2 or more); the grid's total, what --plan budgets, within 25%.
# The machine's own speed drifts too: in one fresh-clone run the Mask R-CNN
# run took 12.96 s (0.253 s an iteration) and, three minutes later on the
# idle machine, 16.33 s (0.30-0.32 s), with probes estimating 18.2 s both
# times (grid ratio 1.27 then 0.985). The estimate compared is therefore
# the mean of a probe just before the grid and one just after: the rate of
# the machine the runs ran on, which is what --plan's estimate assumes.
RUN_FACTOR = 1.6
TOTAL_TOLERANCE = 0.25


def _estimates(planned, n_train) -> dict:
    threads = os.cpu_count() or 1   # one slot: the runner gives it all
    found = {}
    for p in planned:
        rate = probe(p.cfg, p.run.config, iters=4, warmup=2,
                     threads=threads)
        assert isinstance(rate, Rate) and rate.s_per_iter > 0
        found[p.run.model] = estimate(
            p.run.label, p.cfg, p.run.config, rate, n_train['tiny'],
            p.dataset.val_images).wall_s
    return found


@pytest.mark.slow
@pytest.mark.serial   # wall time against wall time: nothing else may run
def test_estimate_of_the_grid_within_25_percent_of_actual(grid_dir):
    grid_path = write_grid(grid_dir, CONFIGS)
    grid = load_grid(grid_path)
    planned, n_train = resolve(grid, grid.expand(), str(grid_dir / 'work'),
                               devices=1)
    before = _estimates(planned, n_train)
    out = run_grid_cli(grid_path, '--slots', '1', timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    after = _estimates(planned, n_train)
    estimates = {m: (before[m] + after[m]) / 2 for m in before}
    results = pd.read_csv(grid_dir / 'work' / 'results.csv')
    actual = dict(zip(results.model, results.wall_time_s))
    assert sorted(actual) == sorted(CONFIGS)
    ratios = {m: estimates[m] / actual[m] for m in actual}
    total = sum(estimates.values()) / sum(actual.values())
    print(f'estimate / actual wall time: grid {total:.3f}, runs {ratios}; '
          f'estimates (s) {estimates} (before {before}, after {after}), '
          f'actual (s) {actual}')
    for model, ratio in ratios.items():
        assert 1 / RUN_FACTOR <= ratio <= RUN_FACTOR, (model, ratio,
                                                       estimates, actual)
    assert abs(total - 1) <= TOTAL_TOLERANCE, (total, estimates, actual)
