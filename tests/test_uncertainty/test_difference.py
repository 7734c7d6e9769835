"""An effect's interval from what the runs show, checked by hand."""
import math

import numpy as np
import pytest
from scipy import stats

from uncertainty.difference import (from_resamples, from_run_values,
                                    interval, seed_image_var)
from uncertainty.noise import Noise

PRIOR = Noise(0.5, 0.3, 0.0, 1000, 'test prior')


def test_seeds_without_resamples_add_the_prior_image_term():
    d = from_run_values([1.0, 3.0], [0.0, 2.0], 1000, PRIOR)
    # Pooled seed variance 2 (2 dof), c = 1/2 + 1/2, image 0.5**2.
    var = 0.25 + 2.0
    df = var ** 2 / (2.0 ** 2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(var)
    assert d.value == 1.0 and d.df == pytest.approx(df)
    assert (d.lo, d.hi) == pytest.approx((1 - half, 1 + half))
    assert d.seed_source.startswith('these runs (2 dof')


def test_one_seed_without_resamples_is_the_whole_prior_with_z():
    d = from_run_values([1.0], [0.0], 1000, PRIOR)
    half = 1.959964 * math.sqrt(0.25 + 2 * 0.09)
    assert (d.lo, d.hi) == pytest.approx((1 - half, 1 + half), abs=1e-5)
    assert d.seeds_from_prior and 'seed noise from the prior' in \
        d.components()


def test_one_seed_adds_the_run_wide_term_the_bootstrap_cannot_see():
    rng = np.random.default_rng(0)
    a = 0.4 + rng.normal(0, 0.2, (500, 1))
    b = np.zeros((500, 1))
    d = from_resamples([0.4], [0.0], a, b, 1000, PRIOR)
    boot = float(np.var(a[:, 0], ddof=1))
    assert d.image_var == pytest.approx(boot)
    assert d.seed_var == pytest.approx(2 * 0.3 ** 2)
    half = 1.959964 * math.sqrt(boot + 0.18)
    assert (d.lo, d.hi) == pytest.approx((0.4 - half, 0.4 + half), abs=1e-5)


def _arm(rng, offsets, n_resamples=4000, image=0.2, inter=0.0):
    """(resamples, seeds): a shared image term per resample plus, per
    seed, its run-wide offset (the same on every resample) and a seed x
    image term that moves with the resample."""
    shared = rng.normal(0, image, (n_resamples, 1))
    own = rng.normal(0, inter, (n_resamples, len(offsets)))
    return np.asarray(offsets) + shared + own


def test_seed_image_part_is_measured_and_not_counted_twice():
    rng = np.random.default_rng(1)
    # Pure run-wide offsets: seeds move together on every resample.
    a = _arm(rng, [0.0, 0.6, 1.2])
    assert seed_image_var(a) == pytest.approx(0.0, abs=1e-12)
    # Pure seed x image part, SD 0.3: measured as 0.09 per run.
    a = _arm(rng, [0.0, 0.0, 0.0], inter=0.3)
    b = _arm(rng, [0.0, 0.0, 0.0], inter=0.3)
    assert seed_image_var(a, b) == pytest.approx(0.09, rel=0.05)
    d = from_resamples([0.1, 0.2, 0.3], [0.0, 0.1, 0.2], a, b, 1000, PRIOR)
    c = 2 / 3
    boot = np.var(a.mean(1) - b.mean(1), ddof=1)
    assert d.image_var == pytest.approx(boot - c * seed_image_var(a, b))
    # The seeds' own spread is the seed term (0.01 pooled over 4 dof).
    assert d.seed_var == pytest.approx(c * 0.01)
    assert d.seed_source.startswith('these runs (4 dof')


def test_interval_is_z_for_known_and_t_for_estimated_seed_noise():
    lo, hi, df = interval(0.0, 1.0, 0.0, math.inf)
    assert math.isinf(df) and hi == pytest.approx(1.959964, abs=1e-5)
    lo, hi, df = interval(0.0, 0.0, 1.0, 4)
    assert df == pytest.approx(4) and hi == pytest.approx(
        stats.t.ppf(0.975, 4))
