"""Verdicts on synthetic result sets with a known injected effect."""
import numpy as np
import pandas as pd
import pytest

from analysis.verdicts import (judge, load_weaknesses, select_runs,
                               verdict_table)
from uncertainty.difference import from_run_values
from uncertainty.noise import Noise


def _runs(grid, model, arm, mean, n=5, sd=0.002, metric='mask_AP', seed=0,
          params=1e6, dataset='coco2017', val_images=500):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(dict(
        grid=grid, model=model, arm=arm, dataset=dataset, seed=range(n),
        status='finished', run_id=[f'{arm}{i}' for i in range(n)],
        val_images=val_images, params=params,
        **{metric: mean + rng.normal(0, sd, n)}))


W = dict(claim='a beats b', kind='greater', metric='mask_AP',
         a=dict(grid='g', model='m', arm='new'),
         b=dict(grid='g', model='m', arm='old'))


@pytest.mark.parametrize('effect,expected', [
    (0.02, 'supported'), (0.0, 'inconclusive'), (-0.02, 'contradicted')])
def test_greater_claim_follows_the_injected_effect(effect, expected):
    df = pd.concat([_runs('g', 'm', 'new', 0.35 + effect, seed=1),
                    _runs('g', 'm', 'old', 0.35, seed=2)])
    v = judge('W', W, df)
    assert v.verdict == expected
    assert v.n_seeds == '5' and v.n_images == '500'
    # No detections: the seeds' spread plus the prior's image term at 500
    # images (0.2 AP at 5000, so 0.63).
    assert v.seed_sd.endswith('(these runs, 8 dof)')
    assert v.image_sd == '0.63'
    assert 'prior at 500 images' in v.sentence


@pytest.mark.parametrize('effect,expected', [
    (0.002, 'supported'), (0.03, 'contradicted')])
def test_small_difference_uses_the_margin(effect, expected):
    w = dict(W, kind='small_difference', margin=0.01)
    df = pd.concat([_runs('g', 'm', 'new', 0.35 + effect, seed=3, sd=0.001,
                          val_images=5000),
                    _runs('g', 'm', 'old', 0.35, seed=4, sd=0.001,
                          val_images=5000)])
    assert judge('W', w, df).verdict == expected


def test_one_seed_without_detections_takes_all_noise_from_the_prior():
    df = pd.concat([_runs('g', 'm', 'new', 0.36, n=1, val_images=5000),
                    _runs('g', 'm', 'old', 0.35, n=1, val_images=5000)])
    v = judge('W', W, df)
    # +1 AP against sqrt(0.2**2 + 2 x 0.3**2) = 0.47 AP: z half-width 0.92.
    assert v.verdict == 'supported'
    assert 'seed noise from the prior' in v.sentence
    assert v.seed_sd == '0.30 (prior)'
    df = pd.concat([_runs('g', 'm', 'new', 0.355, n=1, val_images=5000),
                    _runs('g', 'm', 'old', 0.35, n=1, val_images=5000)])
    assert judge('W', W, df).verdict == 'inconclusive'


def test_image_resample_evidence_is_preferred_when_given():
    df = pd.concat([_runs('g', 'm', 'new', 0.35, n=1),
                    _runs('g', 'm', 'old', 0.35, n=1)])
    est = from_run_values([1.0, 1.1], [0.0, 0.1], 5000,
                          Noise(0.1, 0.0, 0.0, 5000, 'given'))
    v = judge('W', W, df, evidence=lambda a, b, m: est)
    assert v.verdict == 'supported' and v.effect.startswith(
        'm/new: +1.00 AP')
    assert v.n_images == '5000'


def test_params_requirement_can_overturn_an_ap_win():
    w = dict(W, params_greater=True)
    df = pd.concat([_runs('g', 'm', 'new', 0.37, seed=1, params=1e6),
                    _runs('g', 'm', 'old', 0.35, seed=2, params=2e6)])
    assert judge('W', w, df).verdict == 'contradicted'


def test_missing_runs_name_the_grid_that_produces_them():
    df = _runs('other', 'm', 'new', 0.3)
    table = verdict_table(df)
    assert list(table.id) == [f'W{i}' for i in range(1, 12)]
    assert (table.verdict == 'not run').all()
    w6 = table.set_index('id').loc['W6', 'sentence']
    assert 'experiments/grids/retinamask_mask_branch.yaml' in w6


def test_every_weakness_is_declared():
    assert len(load_weaknesses()) == 11


def test_smoke_scale_runs_never_decide():
    df = pd.concat([_runs('g', 'm', 'new', 0.40, seed=1),
                    _runs('g', 'm', 'old', 0.30, seed=2)])
    df['val_images'] = 16
    v = judge('W', W, df)
    assert v.verdict == 'inconclusive' and 'would say supported' in v.sentence


@pytest.mark.parametrize('arms', [['a', 'b', 'a', 'b', 'a'],   # a apart
                                  ['b', 'a', 'a', 'b', 'a']])  # a adjacent
def test_select_runs_gives_the_rows_a_mask_gives(arms):
    df = pd.DataFrame(dict(grid='g', model='m', arm=arms, dataset='d',
                           status=['finished'] * 4 + ['failed'],
                           seed=range(5)))
    side = dict(grid='g', model='m', arm='a')
    keep = ((df.status == 'finished') & (df.grid == 'g') & (df.model == 'm')
            & (df.arm == 'a'))
    pd.testing.assert_frame_equal(select_runs(df, side), df[keep])
