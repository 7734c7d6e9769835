"""``--plan``'s verdict lines (the variance model of uncertainty/) and its
answers to bad input."""
import pandas as pd
import pytest
from helpers import run_grid_cli

TABLE1 = 'experiments/grids/centermask_table1.yaml'


def test_table1_plan_costs_every_side_in_its_own_grid():
    out = run_grid_cli(TABLE1, '--plan', '--seeds', '5')
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    # W1's other side is Mask R-CNN, which lives in another grid.
    assert ('centermask_r50_1x/maskiou in centermask_table1; '
            'mask_rcnn_r50_1x/default in mask_rcnn_coco') in text
    # One line per arm, its seeds listed; COCO's absence said once.
    assert 'centermask_r50_1x/fcos/coco2017 seed 0,1,2:' in text
    assert text.count('is not here; the plan uses COCO 2017') == 1
    assert 'gap' not in text
    # An image-term floor says what design would reach the claim.
    w3 = text[text.index('  W3 '):text.index('  W11 ')]
    assert 'reachable if a pilot with saved detections' in w3
    assert 'with --seeds 5: power' in text


@pytest.mark.parametrize('args,says', [
    (('--probe', '-1'), '--probe -1: the iterations to train must be'),
    (('--pilot', 'no/such.csv'), '--pilot no/such.csv:'),
])
def test_bad_plan_input_is_one_line_before_any_plan(args, says):
    out = run_grid_cli(TABLE1, '--plan', *args)
    assert out.returncode == 2
    assert out.stdout == ''
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], out.stderr


def test_binary_pilot_names_the_file(tmp_path):
    bad = tmp_path / 'pilot.csv'
    bad.write_bytes(bytes(range(256)) * 4)
    out = run_grid_cli(TABLE1, '--plan', '--pilot', str(bad))
    assert out.returncode == 2 and out.stdout == ''
    assert f'{bad} is not a results table' in out.stderr


def test_pilot_without_the_verdicts_arms_says_which_it_used(tmp_path):
    rows = [dict(grid='pilot', model='m', arm=arm, dataset='d', seed=s,
                 status='finished', run_id=f'{arm}{s}', val_images=500,
                 mask_AP=0.30 + 0.004 * s, mask_APs=0.2 + 0.004 * s,
                 box_AP=0.35 + 0.004 * s)
            for arm in ('x', 'y') for s in range(3)]
    path = tmp_path / 'results.csv'
    pd.DataFrame(rows).to_csv(path, index=False)
    out = run_grid_cli(TABLE1, '--plan', '--pilot', str(path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'pilot arms x vs y (the pilot has not all of this verdict' \
        in out.stdout
    # 0.4 AP of spread per seed step: SD 0.4 over 4 dof, split as the
    # prior splits it (all run-wide).
    assert 'seed SD 0.40 AP (run-wide 0.40, seed x image 0.00)' \
        in out.stdout
